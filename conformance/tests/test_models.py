"""Model-level conformance: whole Keras models loaded into the implementation, against the oracle.

* ``keras.applications`` architectures (``weights=None``, no download) at a small input size, with
  seeded random weights, saved by Keras 3 (``.keras``) and by tf_keras (``.h5``), loaded into ours
  and checked layer by layer with the divergence check (``model_check``: each layer's output on the
  oracle's inputs to it, under the tolerance policy).  A model that needs a layer class the
  implementation lacks is skipped, naming the class; the skip turns into a pass once it lands.
* Random Sequential models chained from spec layers whose shapes fit (the spec's output-shape rule
  gives each next layer's input) and random functional DAGs (branches, merges, a tensor read by
  several layers), saved in both formats at float64: every layer's output, and the gradient of the
  model's output w.r.t. its input (the whole model's rounding as one reduction over every term its
  layers sum: the policy's model of summation error).
* Fixed functional models: a nested model, a mask from Embedding(mask_zero) to a masked pooling, a
  shared layer; Keras's ``summary()`` against ours; Keras rebuilding our ``to_json``.

CI cost: one application per format by default (MobileNetV2); ``--hypothesis-profile=thorough``
adds ResNet50, DenseNet121 and EfficientNetB0.  Each application is built once per module.
These checks need the live oracle; with ``--corpus`` (replay without TensorFlow) they skip.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keraspec import spec
from keraspec.conformance.model_check import check_model
from keraspec.conformance.tolerance import compare, tolerance
from keraspec.impl.models import UnsupportedLayerError

#: name -> (keras.applications constructor arguments); the smallest input each accepts.
APPLICATIONS: dict[str, dict[str, Any]] = {
    "MobileNetV2": {"input_shape": (32, 32, 3), "alpha": 0.35},
    "ResNet50": {"input_shape": (32, 32, 3)},
    "DenseNet121": {"input_shape": (32, 32, 3)},
    "EfficientNetB0": {"input_shape": (32, 32, 3)},
}
#: The applications the CI profile checks (the others under the thorough profile).
CI_APPLICATIONS = ("MobileNetV2",)


def _thorough() -> bool:
    return settings._current_profile == "thorough"  # noqa: SLF001 - hypothesis has no public getter


@pytest.fixture(scope="module", autouse=True)
def _live_oracle(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("corpus", default=None):
        pytest.skip("model-level checks need the live oracle (not a recorded corpus)")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    pytest.importorskip("tensorflow")


def _random_weights(model: Any, seed: int) -> None:
    """Seeded weights that keep activations of unit size: kernels scaled by 1/sqrt(fan-in), scales
    and variances in [0.5, 1.5], shifts and means small (``weights=None`` models would be all
    zeros at the head and trivially agree)."""
    rng = np.random.default_rng(seed)
    values = []
    for weight in model.weights:
        name, shape = weight.path if hasattr(weight, "path") else weight.name, tuple(weight.shape)
        if re.search(r"(gamma|moving_variance|variance)(:0)?$", name):
            values.append(rng.uniform(0.5, 1.5, shape))
        elif len(shape) <= 1:
            values.append(rng.normal(0.0, 0.1, shape))
        else:
            values.append(rng.normal(0.0, 1.0, shape) / np.sqrt(max(np.prod(shape[:-1]), 1)))
    model.set_weights([v.astype(np.float32) for v in values])


@pytest.fixture(scope="module")
def application_file(tmp_path_factory: pytest.TempPathFactory):
    """``application_file(name, fmt)``: the saved application, built once per module."""
    cache: dict[tuple[str, str], Path] = {}

    def make(name: str, fmt: str) -> Path:
        if (name, fmt) not in cache:
            folder = tmp_path_factory.mktemp("applications")
            if fmt == "keras":
                import keras

                model = getattr(keras.applications, name)(weights=None, classes=10, **APPLICATIONS[name])
                path = folder / f"{name}.keras"
            else:
                import tf_keras

                model = getattr(tf_keras.applications, name)(weights=None, classes=10, **APPLICATIONS[name])
                path = folder / f"{name}.h5"
            _random_weights(model, seed=len(name))
            model.save(path)
            cache[(name, fmt)] = path
        return cache[(name, fmt)]

    return make


def _application_params() -> list[Any]:
    params = []
    for name in APPLICATIONS:
        for fmt in ("keras", "h5"):
            marks = [] if name in CI_APPLICATIONS else [pytest.mark.skipif("not _thorough()", reason="thorough profile only")]
            params.append(pytest.param(name, fmt, id=f"{name}-{fmt}", marks=marks))
    return params


@pytest.mark.parametrize("name, fmt", _application_params())
def test_application(application_file, name: str, fmt: str) -> None:
    if name not in CI_APPLICATIONS and not _thorough():
        pytest.skip("thorough profile only (--hypothesis-profile=thorough)")
    path = application_file(name, fmt)
    try:
        result = check_model(path, seed=1)
    except UnsupportedLayerError as exc:
        pytest.skip(f"keraspec.impl lacks {exc.class_name} (layer '{exc.layer_name}'), which {name} needs")
    assert result.flavor == ("keras3" if fmt == "keras" else "tf_keras")
    assert result.conforms, result.verdict() + "\n" + result.table()


@pytest.mark.parametrize("which", ["MobileNetV2", "Sequential"])
def test_summary_matches_keras(application_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    """Every row of our table is in Keras's (name, class, output shape, parameter count), the
    table has as many rows, and the three totals agree (column widths may differ)."""
    import keras

    from keraspec.impl.saving import load_model

    monkeypatch.setenv("COLUMNS", "400")  # rich cuts Keras's table at the console width (80 off a terminal)
    if which == "Sequential":
        model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                                  keras.layers.BatchNormalization(name="bn"), keras.layers.Flatten(name="flat"),
                                  keras.layers.Dense(2, name="head")], name="seq")
        path = tmp_path / "seq.keras"
        model.save(path)
    else:
        path = application_file(which, "keras")
    buffer = io.StringIO()
    keras.saving.load_model(path, compile=False).summary(line_length=250, print_fn=lambda text, **_: buffer.write(text))
    theirs = buffer.getvalue()
    ours_lines: list[str] = []
    ours = load_model(path)
    ours.summary(print_fn=ours_lines.append)
    rows = ours.summary_rows()
    for name, cls, shape, params, _ in rows:
        pattern = rf"│ {re.escape(name)} \({re.escape(cls)}\)\s*│\s*{re.escape(_shape_text(shape))}\s*│\s*{params:,}\s"
        assert re.search(pattern, theirs), f"Keras's summary has no row {name} ({cls}) {shape} {params:,}"
    assert len(rows) == len(re.findall(r"^│ \S+ \(\w+\)", theirs, flags=re.M))
    for label in ("Total params", "Trainable params", "Non-trainable params"):
        want = re.search(rf"{label}: ([\d,]+)", theirs).group(1)
        assert f"{label}: {want}" in "\n".join(ours_lines), f"{label}: Keras says {want}"


def _shape_text(shape: Any) -> str:
    inner = ", ".join("None" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


# -- random Sequential models ------------------------------------------------------------------------
#: Layers a random chain draws from, by input rank: (class name, config strategy).  Configs are
#: validated by the spec and shapes follow its output-shape rule, so the next layer fits.
def _layer_choices(rank: int) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    acts = st.sampled_from(["linear", "relu", "tanh", "sigmoid", "gelu", "softplus"])
    units = st.integers(1, 6)
    if rank == 2:
        return st.one_of(
            st.tuples(st.just("Dense"), st.fixed_dictionaries({"units": units, "activation": acts})),
            st.tuples(st.just("Activation"), st.fixed_dictionaries({"activation": acts})),
            st.tuples(st.just("LayerNormalization"), st.just({})),
            st.tuples(st.just("BatchNormalization"), st.just({})),
            st.tuples(st.just("RepeatVector"), st.fixed_dictionaries({"n": st.integers(2, 4)})),
        )
    if rank == 3:
        return st.one_of(
            st.tuples(st.just("Conv1D"), st.fixed_dictionaries({"filters": units, "kernel_size": st.integers(1, 2),
                                                                "padding": st.sampled_from(["same", "causal"]),
                                                                "activation": acts})),
            st.tuples(st.just("Dense"), st.fixed_dictionaries({"units": units})),
            st.tuples(st.just("GlobalAveragePooling1D"), st.just({})),
            st.tuples(st.just("Flatten"), st.just({})),
            st.tuples(st.just("MaxPooling1D"), st.fixed_dictionaries({"pool_size": st.just(1)})),
        )
    return st.one_of(
        st.tuples(st.just("Conv2D"), st.fixed_dictionaries({"filters": units, "kernel_size": st.integers(1, 3),
                                                            "padding": st.just("same"), "activation": acts})),
        st.tuples(st.just("DepthwiseConv2D"), st.fixed_dictionaries({"kernel_size": st.integers(1, 3), "padding": st.just("same")})),
        st.tuples(st.just("BatchNormalization"), st.just({})),
        st.tuples(st.just("ZeroPadding2D"), st.fixed_dictionaries({"padding": st.integers(0, 1)})),
        st.tuples(st.just("GlobalAveragePooling2D"), st.just({})),
        st.tuples(st.just("Flatten"), st.just({})),
    )


@st.composite
def sequential_models(draw: st.DrawFn) -> tuple[tuple[int, ...], list[tuple[str, dict[str, Any]]]]:
    rank = draw(st.sampled_from([2, 3, 4]))
    shape: tuple[Any, ...] = (None,) + tuple(draw(st.lists(st.integers(2, 5), min_size=rank - 1, max_size=rank - 1)))
    input_shape = shape
    chain = []
    for _ in range(draw(st.integers(1, 4))):
        name, config = draw(_layer_choices(len(shape)))
        spec.lookup(name).validate(config)  # raises if the spec refuses it: a bug of this strategy
        shape = tuple(spec.lookup(name).output_shape(config, shape))
        chain.append((name, config))
    return input_shape, chain


def _save_both(input_shape: tuple[Any, ...], chain: list[tuple[str, dict[str, Any]]], folder: Path, seed: int) -> list[Path]:
    import keras
    import tf_keras

    paths = []
    k3 = keras.Sequential([keras.Input(input_shape[1:], dtype="float64")]
                          + [getattr(keras.layers, n)(dtype="float64", **c) for n, c in chain])
    _random_weights(k3, seed)
    k2 = tf_keras.Sequential([tf_keras.Input(input_shape[1:], dtype="float64")]
                             + [getattr(tf_keras.layers, n)(dtype="float64", **c) for n, c in chain])
    k2.set_weights([w.astype(np.float64) for w in k3.get_weights()])
    k3.save(folder / "model.keras")
    k2.save(folder / "model.h5")
    paths += [folder / "model.keras", folder / "model.h5"]
    return paths


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(model=sequential_models(), seed=st.integers(0, 2**16))
def test_random_sequential_models(tmp_path: Path, model, seed: int) -> None:
    """Both file formats: every layer's output, and the input gradient, against the oracle."""
    input_shape, chain = model
    folder = tmp_path / f"m{seed}"
    folder.mkdir(exist_ok=True)
    x = np.random.default_rng(seed).standard_normal((2,) + tuple(input_shape[1:]))
    for path in _save_both(input_shape, chain, folder, seed):
        result = check_model(path, inputs=[x])
        assert result.conforms, f"{chain}\n{result.verdict()}\n{result.table()}"
        terms, shape = 0, tuple(input_shape)
        for name, config in chain:
            terms += spec.lookup(name).reduction_terms(config, [shape])
            shape = tuple(spec.lookup(name).output_shape(config, shape))
        _check_input_gradient(path, x, terms, str(chain))


def _check_input_gradient(path: Path, x: np.ndarray, terms: int, what: str) -> None:
    """d(sum(output * cotangent))/d input against the oracle's GradientTape, at float64: the whole
    model's rounding as one reduction over ``terms`` (every term its layers sum; the policy's model
    of summation error, doubled for the transpose by ``gradient=True``)."""
    import tensorflow as tf
    import torch

    from keraspec.conformance.model_check import load_oracle_model
    from keraspec.impl.saving import load_model

    oracle = "keras3" if path.suffix == ".keras" else "tf_keras"
    theirs = load_oracle_model(path, oracle)
    ours = load_model(path)
    cotangent = np.random.default_rng(7).standard_normal(tuple(theirs(x).shape))
    tx = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(tx)
        out = theirs(tx, training=False)
        total = tf.reduce_sum(out * tf.constant(cotangent, dtype=out.dtype))
    want = tape.gradient(total, tx).numpy()
    px = torch.tensor(x, requires_grad=True)
    (ours(px, training=False) * torch.as_tensor(cotangent)).sum().backward()
    tol = tolerance("float64", "cpu", "reduction", terms, gradient=True)
    comparison = compare(px.grad.numpy(), want, tol, "input gradient")
    assert comparison.ok, f"{path.name} {what}: {comparison}"


# -- random functional models -------------------------------------------------------------------------
#: Width-preserving single-input layers and the merge layers of a random functional graph.
UNARY = ("Dense", "LayerNormalization", "BatchNormalization", "Activation")
MERGES = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")


@st.composite
def functional_graphs(draw: st.DrawFn) -> tuple[int, list[tuple[str, dict[str, Any], list[int]]]]:
    """A DAG over one (None, width) input: each op reads earlier tensors; a Concatenate is followed by
    a Dense back to the width; every tensor no op reads is an output (concatenated)."""
    width = draw(st.integers(2, 5))
    ops: list[tuple[str, dict[str, Any], list[int]]] = []
    count = 1  # tensor 0 is the input
    readable = [0]  # the tensors of the input's width (a Concatenate's output is read by its Dense only)
    for _ in range(draw(st.integers(1, 5))):
        if len(readable) > 1 and draw(st.booleans()):
            name = draw(st.sampled_from(MERGES))
            arity = 2 if name == "Subtract" else draw(st.integers(2, min(3, len(readable))))
            reads = draw(st.lists(st.sampled_from(readable), min_size=arity, max_size=arity, unique=True))
            ops.append((name, {}, reads))
            count += 1
            if name == "Concatenate":
                ops.append(("Dense", {"units": width}, [count - 1]))
                count += 1
        else:
            name = draw(st.sampled_from(UNARY))
            act = draw(st.sampled_from(["linear", "relu", "tanh", "sigmoid"]))
            config = {"units": width, "activation": act} if name == "Dense" else {"activation": act} if name == "Activation" else {}
            ops.append((name, config, [draw(st.sampled_from(readable))]))
            count += 1
        readable.append(count - 1)
    return width, ops


def _build_graph(K: Any, width: int, ops: list[tuple[str, dict[str, Any], list[int]]]) -> Any:
    x = K.Input((width,), dtype="float64", name="x")
    tensors = [x]
    for name, config, reads in ops:
        layer = getattr(K.layers, name)(dtype="float64", **config)
        inputs = [tensors[i] for i in reads]
        tensors.append(layer(inputs if name in MERGES else inputs[0]))
    read = {i for _, _, reads in ops for i in reads}
    leaves = [t for i, t in enumerate(tensors) if i not in read and i > 0]
    out = leaves[0] if len(leaves) == 1 else K.layers.Concatenate(dtype="float64", name="outputs")(leaves)
    return K.Model(x, out)


def _graph_terms(width: int, ops: list[tuple[str, dict[str, Any], list[int]]]) -> int:
    """Every term the graph's layers sum, from the spec's reduction lengths."""
    widths = [width]
    terms = 0
    for name, config, reads in ops:
        shapes = [(None, widths[i]) for i in reads]
        terms += spec.lookup(name).reduction_terms(config, shapes)
        widths.append(sum(widths[i] for i in reads) if name == "Concatenate" else width)
    return terms


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(graph=functional_graphs(), seed=st.integers(0, 2**16))
def test_random_functional_models(tmp_path: Path, graph, seed: int) -> None:
    """Random DAGs (branches, merges, several uses of one tensor), both file formats: every layer's
    output and the input gradient against the oracle."""
    import keras
    import tf_keras

    width, ops = graph
    folder = tmp_path / f"g{seed}"
    folder.mkdir(exist_ok=True)
    k3 = _build_graph(keras, width, ops)
    _random_weights(k3, seed)
    k2 = _build_graph(tf_keras, width, ops)
    k2.set_weights(k3.get_weights())
    k3.save(folder / "model.keras")
    k2.save(folder / "model.h5")
    x = np.random.default_rng(seed).standard_normal((3, width))
    for path in (folder / "model.keras", folder / "model.h5"):
        result = check_model(path, inputs=[x])
        assert result.conforms, f"{ops}\n{result.verdict()}\n{result.table()}"
        _check_input_gradient(path, x, _graph_terms(width, ops), str(ops))


# -- masks and nested models, through both file formats -----------------------------------------------
def _functional(K: Any, kind: str) -> Any:
    if kind == "nested":
        inner = K.Sequential([K.Input((4,)), K.layers.Dense(3, activation="tanh", name="in_dense"),
                              K.layers.BatchNormalization(name="in_bn")], name="inner")
        x = K.Input((4,), name="x")
        y = inner(x)
        return K.Model(x, [K.layers.Dense(2, name="head")(y), y], name="outer")
    if kind == "masked":  # Embedding(mask_zero) -> Dense -> masked average: the mask must reach the pooling
        ids = K.Input((6,), dtype="int32", name="ids")
        h = K.layers.Embedding(7, 3, mask_zero=True, name="emb")(ids)
        h = K.layers.Dense(4, activation="relu", name="dense")(h)
        return K.Model(ids, K.layers.GlobalAveragePooling1D(name="pool")(h), name="masked")
    # two branches of one input, merged, with a layer shared by both
    x = K.Input((5,), name="x")
    shared = K.layers.Dense(5, name="shared")
    a = K.layers.Dense(5, activation="relu", name="a")(x)
    b = K.layers.LayerNormalization(name="b")(shared(x))
    c = shared(a)
    merged = K.layers.Concatenate(name="cat")([K.layers.Add(name="add")([a, b, c]), K.layers.Multiply(name="mul")([a, b])])
    return K.Model(x, K.layers.Dense(3, name="out")(merged), name="branches")


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("kind", ["nested", "masked", "branches"])
def test_functional_models(tmp_path: Path, kind: str, fmt: str) -> None:
    import keras
    import tf_keras

    model = _functional(keras if fmt == "keras" else tf_keras, kind)
    _random_weights(model, seed=3)
    path = tmp_path / f"{kind}.{fmt}"
    model.save(path)
    inputs = None
    if kind == "masked":
        inputs = [np.array([[1, 2, 3, 0, 0, 0], [4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 5]], np.int32)]
    result = check_model(path, inputs=inputs, seed=2)
    assert result.conforms, result.verdict() + "\n" + result.table()
    names = {row.name for row in result.rows}
    if kind == "nested":  # the nested model's own layers were compared, one by one
        assert {"inner/in_dense", "inner/in_bn"} <= names
    if kind == "branches":  # each call of the shared layer has its row
        assert {"shared", "shared (call 1)"} <= names


def test_keras_reads_our_json(application_file) -> None:
    """Our ``to_json`` of a loaded model is a Keras 3 model config: Keras rebuilds the same layers,
    with the same configs (compared as the harness compares them) and takes our weights."""
    import keras

    from keraspec.conformance.harness import normalize_config
    from keraspec.impl.saving import load_model

    path = application_file("MobileNetV2", "keras")
    ours = load_model(path)
    original = keras.saving.load_model(path, compile=False)
    rebuilt = keras.models.model_from_json(ours.to_json())
    rebuilt.set_weights(ours.get_weights())
    assert [l.name for l in rebuilt.layers] == [l.name for l in original.layers]
    for mine, theirs in zip(rebuilt.layers, original.layers):
        assert normalize_config(mine.get_config()) == normalize_config(theirs.get_config()), mine.name
    for got, want in zip(rebuilt.get_weights(), original.get_weights()):
        np.testing.assert_array_equal(got, want)
