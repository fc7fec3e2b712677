"""The divergence check: does a whole Keras model match in keraspec, and where does it first not?

``check_model(path)`` loads one Keras file into keraspec.impl and into the oracle (which loads its
own file, with Keras's loader), feeds both the same inputs, and compares every layer's output in
the graph's topological order.

Two errors are measured per layer:

* **local** -- our layer run on the *oracle's* inputs to that layer, against the oracle's output:
  the layer's own error, judged by the one tolerance policy (``tolerance.tolerance`` with the
  layer's spec numerics class and reduction length, as the harness does).  A layer whose local
  comparison fails *diverges*; the first one in topological order is the answer.
* **chained** -- our whole model's output of that layer against the oracle's: how rounding grows
  along the graph.  Reported (table and chart), not judged: the tolerance policy has no rule for
  error compounded over many layers, and a chained error is explained by the local ones.

The model conforms when no layer diverges (and every layer could be compared).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keraspec.spec import UnknownLayerError

from .tolerance import Comparison, compare, tolerance

if TYPE_CHECKING:
    import torch

#: The oracle that reads each flavour's files.
ORACLE_OF_FLAVOR = {"keras3": "keras3", "tf_keras": "tf_keras"}
#: Input dtypes ``--dtype`` accepts (floating inputs are drawn in it; layers cast to their policy).
INPUT_DTYPES = ("float16", "bfloat16", "float32", "float64")
#: Rows of drawn inputs when the model's input leaves the batch size free.
DEFAULT_BATCH = 2


class ModelCheckInputError(ValueError):
    """Bad input to the check (a shape that does not fit, an npz without the model's inputs):
    reported as one line, exit status 2."""


@dataclass
class LayerRow:
    """One layer's comparison."""

    index: int
    name: str
    class_name: str
    op_class: str
    output_shape: tuple[int, ...] | None
    config: dict[str, Any]
    local: Comparison | None = None
    chained_abs: float | None = None
    chained_rel: float | None = None
    note: str = ""
    #: A nested model: judged by the rows of its own layers, which follow it.
    nested: bool = False

    @property
    def status(self) -> str:
        if self.nested:
            return "nested"
        if self.local is None:
            return "skipped"
        return "passed" if self.local.ok else "failed"


@dataclass
class ModelCheck:
    """The whole check: per-layer rows in topological order and the first divergence."""

    path: str
    oracle: str
    oracle_version: str
    flavor: str
    model_name: str
    input_shapes: list[tuple[int, ...]]
    dtype: str
    seed: int | None
    rows: list[LayerRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def first_divergence(self) -> LayerRow | None:
        return next((r for r in self.rows if r.status == "failed"), None)

    @property
    def skipped(self) -> list[LayerRow]:
        return [r for r in self.rows if r.status == "skipped" and r.class_name != "InputLayer"]

    @property
    def conforms(self) -> bool:
        return self.first_divergence is None and not self.skipped

    def table(self) -> str:
        """The per-layer table as text (what the CLI prints)."""
        headers = ["#", "layer (type)", "output shape", "numerics", "local max abs err", "tolerance", "chained max abs err", "status"]
        lines = [[str(r.index), f"{r.name} ({r.class_name})", _shape(r.output_shape), r.op_class,
                  _err(r.local.max_abs_err) if r.local else "-",
                  f"atol={r.local.tolerance.atol:.3g} rtol={r.local.tolerance.rtol:.3g}" if r.local else "-",
                  _err(r.chained_abs), r.status + (f" ({r.note})" if r.note else "")] for r in self.rows]
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
        out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
        out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
        return "\n".join(out)

    def verdict(self) -> str:
        first = self.first_divergence
        if first is not None:
            return (f"DIVERGES at layer {first.index} '{first.name}' ({first.class_name}): {first.local.detail}\n"
                    f"  config: {first.config}")
        if self.skipped:
            names = ", ".join(f"'{r.name}' ({r.note})" for r in self.skipped[:5])
            return f"INCOMPLETE: {len(self.skipped)} layer(s) could not be compared: {names}"
        return f"CONFORMS: {len(self.rows)} layers agree with {self.oracle} {self.oracle_version}"


def _shape(shape: Any) -> str:
    return "-" if shape is None else "(" + ", ".join(str(s) for s in shape) + ")"


def _err(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


# -- inputs ---------------------------------------------------------------------------------------
def draw_inputs(model: Any, input_shapes: Sequence[Sequence[int | None]] | None, dtype: str,
                seed: int) -> list[np.ndarray]:
    """Seeded inputs for every model input: standard normal floats, or integer ids below the
    smallest ``input_dim`` of the Embeddings that read an integer input."""
    rng = np.random.default_rng(seed)
    declared = [tuple(model.get_layer(ref[0]).batch_shape) for ref in model._input_refs]
    if input_shapes is not None and len(input_shapes) != len(declared):
        raise ModelCheckInputError(f"--input-shape gives {len(input_shapes)} shape(s), the model has "
                                   f"{len(declared)} input(s) {model.input_names}")
    arrays = []
    for i, (ref, shape) in enumerate(zip(model._input_refs, declared)):
        wanted = tuple(input_shapes[i]) if input_shapes is not None else shape
        shape = _fit_shape(ref[0], shape, wanted)
        layer_dtype = str(model.get_layer(ref[0]).dtype)
        if "int" in layer_dtype:
            arrays.append(rng.integers(0, _index_high(model, ref[0]), size=shape).astype(layer_dtype))
        else:
            arrays.append(rng.standard_normal(shape).astype(np.float32).astype(_numpy_dtype(dtype)))
    return arrays


def _numpy_dtype(dtype: str) -> Any:
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def _fit_shape(name: str, declared: tuple[int | None, ...], wanted: tuple[int | None, ...]) -> tuple[int, ...]:
    if len(wanted) == len(declared) - 1:  # a shape without the batch axis
        wanted = (None,) + tuple(wanted)
    if len(wanted) != len(declared):
        raise ModelCheckInputError(f"input '{name}' has shape {_shape(declared)}; --input-shape {_shape(wanted)} "
                                   "has another rank")
    shape = []
    for axis, (d, w) in enumerate(zip(declared, wanted)):
        if d is not None and w is not None and int(d) != int(w):
            raise ModelCheckInputError(f"input '{name}' has shape {_shape(declared)}; --input-shape gives {w} "
                                       f"for axis {axis}, which the model fixes at {d}")
        size = w if w is not None else d
        if size is None:
            if axis == 0:
                size = DEFAULT_BATCH
            else:
                raise ModelCheckInputError(f"input '{name}' leaves axis {axis} free {_shape(declared)}; give its size "
                                           "with --input-shape")
        shape.append(int(size))
    return tuple(shape)


def _index_high(model: Any, input_name: str) -> int:
    highs = [int(node.layer.input_dim) for node in model._nodes
             if type(node.layer).__name__ == "Embedding" and input_name in {r[0] for r in node.references()}]
    return min(highs) if highs else 2


# -- the oracle ------------------------------------------------------------------------------------
def load_oracle_model(path: Path, oracle: str) -> Any:
    """The oracle's own model from the file (compile=False; safe_mode on where Keras has it)."""
    from . import oracle as oracle_module

    adapter = oracle_module.get(oracle)
    try:
        if oracle == "keras3":
            return adapter.module.saving.load_model(str(path), compile=False, safe_mode=True)
        return adapter.module.models.load_model(str(path), compile=False)
    except Exception as exc:  # the oracle's loader raises anything; it is reported as one line
        raise ModelCheckInputError(f"{oracle} cannot load {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None


def _graph_node_outputs(oracle_model: Any, oracle_name: str, layer: Any) -> list[Any]:
    """The output tensor(s) of each call of ``layer`` that belongs to ``oracle_model``'s graph, in
    order: the node numbering of the model's config, which ours follows."""
    nodes = list(getattr(layer, "_inbound_nodes", []))
    if oracle_name == "keras3":
        in_graph = getattr(oracle_model, "_nodes", None)  # Keras 3's node keys: f"{id(operation)}_ib-{index}"
        kept = [n for i, n in enumerate(nodes) if in_graph is None or f"{id(layer)}_ib-{i}" in in_graph]
        return [n.output_tensors if len(n.output_tensors) != 1 else n.output_tensors[0] for n in kept]
    in_graph = getattr(oracle_model, "_network_nodes", None)
    kept = [i for i in range(len(nodes)) if in_graph is None or f"{layer.name}_ib-{i}" in in_graph]
    return [layer.get_output_at(i) for i in kept]


def oracle_layer_outputs(oracle_model: Any, oracle_name: str,
                         inputs: list[np.ndarray]) -> dict[tuple[str, int], list[np.ndarray]]:
    """Every call's output, by (layer name, node index), from one run of the oracle."""
    from . import oracle as oracle_module

    module = oracle_module.get(oracle_name).module
    keys, tensors = [], []
    # Keras 3's functional graph also holds operations (keras.ops nodes) besides its layers.
    for layer in getattr(oracle_model, "_operations", None) or oracle_model.layers:
        try:
            outputs = _graph_node_outputs(oracle_model, oracle_name, layer)
        except (AttributeError, ValueError, RuntimeError):
            continue  # no symbolic output: the layer's row says the oracle gives none
        for index, out in enumerate(outputs):
            keys.append((layer.name, index))
            tensors.append(out)
    flat = [t for out in tensors for t in (out if isinstance(out, (list, tuple)) else [out])]
    probe = module.Model(oracle_model.inputs, flat)
    with warnings.catch_warnings():  # Keras 3 warns that one array is not the one-element list it declared
        warnings.simplefilter("ignore", UserWarning)
        values = probe(inputs if len(inputs) > 1 else inputs[0], training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    result: dict[tuple[str, int], list[np.ndarray]] = {}
    position = 0
    for key, out in zip(keys, tensors):
        count = len(out) if isinstance(out, (list, tuple)) else 1
        result[key] = [np.asarray(v) for v in values[position:position + count]]
        position += count
    return result


# -- the check ------------------------------------------------------------------------------------
def check_model(path: Any, oracle: str | None = None, input_shapes: Sequence[Sequence[int | None]] | None = None,
                dtype: str = "float32", inputs: Sequence[np.ndarray] | None = None, seed: int = 0,
                alter: Callable[[Any], None] | None = None) -> ModelCheck:
    """Compare ``path`` loaded into keraspec.impl with the oracle, layer by layer.

    ``oracle`` defaults to the file's flavour (keras3 for .keras, tf_keras for a tf_keras .h5);
    ``inputs`` (one array per model input) replaces the seeded draw; ``alter`` is applied to our
    model after loading (a test's deliberate divergence)."""
    from keraspec.impl import saving

    started = time.perf_counter()
    path = Path(path)
    if dtype not in INPUT_DTYPES:
        raise ModelCheckInputError(f"--dtype {dtype!r} is not one of {', '.join(INPUT_DTYPES)}")
    ours = saving.load_model(path)
    oracle = oracle or ORACLE_OF_FLAVOR[ours.flavor]
    if alter is not None:
        alter(ours)
    if inputs is None:
        arrays = draw_inputs(ours, input_shapes, dtype, seed)
    else:
        arrays = [np.asarray(a) for a in inputs]
        if len(arrays) != len(ours._input_refs):
            raise ModelCheckInputError(f"--inputs gives {len(arrays)} array(s), the model has {len(ours._input_refs)} "
                                       f"input(s) {ours.input_names}")
        for ref, array in zip(ours._input_refs, arrays):
            _fit_shape(ref[0], tuple(ours.get_layer(ref[0]).batch_shape), array.shape)
    from . import oracle as oracle_module

    adapter = oracle_module.get(oracle)
    oracle_model = load_oracle_model(path, oracle)
    result = ModelCheck(str(path), oracle, adapter.version, ours.flavor, ours.name,
                        [tuple(a.shape) for a in arrays], dtype, seed if inputs is None else None)
    _compare_graph(ours, oracle_model, oracle, arrays, dtype, result.rows)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


class _NotComparable(Exception):
    pass


def _compare_graph(ours: Any, oracle_model: Any, oracle: str, arrays: list[np.ndarray], dtype: str,
                   rows: list[LayerRow], prefix: str = "") -> None:
    """Append a row per layer of ``ours`` run on ``arrays`` (and of its nested models, run on the
    oracle's inputs to them, named ``outer/inner``) to ``rows``."""
    import torch

    from keraspec.impl.base import from_numpy
    from keraspec.impl.models import Model

    expected = oracle_layer_outputs(oracle_model, oracle, arrays)
    for ref, array in zip(ours._input_refs, arrays):
        # An input layer outputs what it is fed (Keras's Sequential does not list its InputLayer).
        expected.setdefault((ref[0], ref[1]), [array])
    order: list[Any] = []
    with torch.no_grad():
        chained = ours.run_nodes([from_numpy(np.array(a)) for a in arrays], training=False,
                                 on_node=lambda node, _inputs, _out: order.append(node))
    input_names = {ref[0] for ref in ours._input_refs}
    for node in order:
        layer = node.layer
        row = LayerRow(len(rows), prefix + layer.name, ours.keras_class_of(layer), _op_class(layer), None, _config(layer))
        rows.append(row)
        outs = [chained[(layer.name, node.index, i)] for i in range(_output_count(chained, layer.name, node.index))]
        if outs:
            row.output_shape = tuple(outs[0].shape)
        if node.index > 0:
            row.name += f" (call {node.index})"  # a shared layer's later call: its own row
        want = expected.get((layer.name, node.index))
        if want is None:
            row.note = "the oracle gives no single output for it"
            continue
        row.chained_abs, row.chained_rel = _chained_error(outs, want)
        if layer.name in input_names:
            # An input is data movement: bitwise equal (integer ids compared as float64, exactly).
            exact_dtype = _tol_dtype(layer, oracle, dtype) if outs[0].is_floating_point() else "float64"
            row.local = compare(_np(outs[0]), want[0], tolerance(exact_dtype, op_class="exact"), "input")
            continue
        if isinstance(layer, Model):
            try:
                inner_inputs = [expected[(r[0], r[1])][r[2]] for r in node.references()]
            except (KeyError, IndexError):
                row.note = "the oracle gives no value for an input of this nested model"
                continue
            row.nested = True
            row.note = "a nested model: its layers follow, run on the oracle's inputs to it"
            _compare_graph(layer, oracle_model.get_layer(layer.name), oracle, inner_inputs, dtype, rows,
                           f"{prefix}{layer.name}/")
            continue
        try:
            row.local = _local(ours, layer, node, expected, chained, oracle, want)
        except _NotComparable as exc:
            row.note = str(exc)


def _output_count(values: Mapping[tuple[str, int, int], Any], name: str, node_index: int) -> int:
    count = 0
    while (name, node_index, count) in values:
        count += 1
    return count


def _np(tensor: torch.Tensor) -> np.ndarray:
    from keraspec.impl.base import to_numpy

    return to_numpy(tensor)


def _chained_error(outs: list[torch.Tensor], want: list[np.ndarray]) -> tuple[float | None, float | None]:
    abs_err = rel_err = 0.0
    for got, exp in zip(outs, want):
        a, e = _np(got).astype(np.float64), np.asarray(exp, dtype=np.float64)
        if a.shape != e.shape:
            return math.inf, math.inf
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isnan(a) & np.isnan(e), 0.0, np.abs(a - e))
        if diff.size:
            abs_err = max(abs_err, float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))))
            rel_err = max(rel_err, float(np.max(diff / np.maximum(np.abs(e), 1e-30))))
    return abs_err, rel_err


def _spec_of(layer: Any) -> Any:
    try:
        return type(layer).spec()
    except (KeyError, UnknownLayerError):
        return None


def _op_class(layer: Any) -> str:
    spec = _spec_of(layer)
    return spec.op_class if spec is not None else getattr(layer, "op_class", "-")


def _config(layer: Any) -> dict[str, Any]:
    try:
        config = layer.get_config()
    except Exception:  # a config that cannot be serialized still names the layer
        return {"name": layer.name}
    if isinstance(config, dict) and "layers" in config:
        return {"name": layer.name, "layers": len(config["layers"])}
    return {k: v for k, v in config.items() if k not in ("dtype", "trainable")}


def _tol_dtype(layer: Any, oracle: str, dtype: str) -> str:
    spec = _spec_of(layer)
    policy = getattr(layer, "dtype_policy", None)
    name = policy.name if policy is not None else dtype
    if spec is None:
        return name
    return spec.oracle_compute_dtype(layer._config, oracle, name)


def _magnitude_scale(arrays: list[np.ndarray]) -> float:
    """The size of the terms: the smallest power of two at or above the inputs' largest finite
    magnitude (never below 1), as the harness scales its tolerance with the input magnitude."""
    largest = 0.0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        finite = a[np.isfinite(a)]
        if finite.size:
            largest = max(largest, float(np.abs(finite).max()))
    return float(2.0 ** math.ceil(math.log2(largest))) if largest > 1.0 else 1.0


def _local(model: Any, layer: Any, node: Any, expected: Mapping[tuple[str, int], list[np.ndarray]],
           chained: Mapping[tuple[str, int, int], torch.Tensor], oracle: str, want: list[np.ndarray]) -> Comparison:
    """Our layer on the oracle's inputs to it (with our masks, which are exact), vs the oracle."""
    import torch

    from keraspec.impl.base import from_numpy
    from keraspec.impl.models import Model, _map_refs

    if isinstance(layer, Model):
        raise _NotComparable("a nested model: compared by its chained error only; check it on its own")
    spec = _spec_of(layer)
    if spec is None and getattr(layer, "op_class", None) is None:
        raise _NotComparable("no spec entry, so no numerics class for the tolerance")

    def oracle_input(ref: tuple[str, int, int]) -> torch.Tensor:
        values = expected.get((ref[0], ref[1]))
        if values is None or ref[2] >= len(values):
            raise _NotComparable(f"the oracle gives no value for its input {ref[0]}")
        tensor = from_numpy(np.array(values[ref[2]]))  # a writable copy: the oracle's arrays are read-only
        mask = getattr(chained[ref], "_keras_mask", None)
        if mask is not None:
            tensor._keras_mask = mask
        return tensor

    layer_in = _map_refs(node.inputs, oracle_input)
    flat_in = layer_in if isinstance(layer_in, list) else [layer_in]
    from keraspec.impl.flavor import use_flavor

    with torch.no_grad(), use_flavor(model.flavor):
        # Inference whatever the saved node says (a Dropout node records training=...): the oracle's run is inference.
        call_kwargs = {k: _map_refs(v, oracle_input) for k, v in node.kwargs.items() if v is not None and k != "training"}
        out = layer(layer_in, training=False, **call_kwargs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    input_shapes = [tuple(t.shape) for t in _flatten(flat_in)]
    scale = _magnitude_scale([np.asarray(t) for t in _flatten(flat_in) if t.is_floating_point()])
    policy = layer.dtype_policy.name
    if spec is None:  # a Keras op node (exact logic) has no spec entry but its own op class
        tol = tolerance(policy, "cpu", layer.op_class, 1, scale=scale)
    else:
        length = spec.reduction_terms(layer._config, input_shapes)
        tol = tolerance(spec.oracle_compute_dtype(layer._config, oracle, policy), "cpu", spec.op_class, length, scale=scale)
    worst: Comparison | None = None
    for i, (got, exp) in enumerate(zip(outs, want)):
        comparison = compare(_np(got), exp, tol, f"output {i}" if len(outs) > 1 else "output")
        if worst is None or (not comparison.ok and worst.ok) or comparison.max_abs_err > worst.max_abs_err and comparison.ok == worst.ok:
            worst = comparison
    if worst is None:
        raise _NotComparable("no output to compare")
    return worst


def _flatten(values: Any) -> list[torch.Tensor]:
    import torch

    if isinstance(values, torch.Tensor):
        return [values]
    if isinstance(values, (list, tuple)):
        return [t for v in values for t in _flatten(v)]
    return []  # a constant operand of an op


def read_npz_inputs(path: Any, names: Sequence[str]) -> list[np.ndarray]:
    """Inputs from an .npz: arrays named like the model's inputs, or ``arr_0``, ``arr_1``, ... in order
    (``allow_pickle=False``: an object array is refused)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.keys())
            if all(n in keys for n in names):
                return [data[n] for n in names]
            positional = [f"arr_{i}" for i in range(len(names))]
            if all(k in keys for k in positional):
                return [data[k] for k in positional]
            raise ModelCheckInputError(f"--inputs {path}: holds {keys}; give arrays named {list(names)} "
                                       f"(or {positional})")
    except ModelCheckInputError:
        raise
    except FileNotFoundError:
        raise ModelCheckInputError(f"--inputs {path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ModelCheckInputError(f"--inputs {path}: not a readable .npz ({' '.join(str(exc).split())[:200]})") from None


# -- the command line ------------------------------------------------------------------------------
def add_arguments(subparsers: Any) -> Any:
    """``keraspec check-model FILE [--input-shape ...] [--dtype ...] [--inputs data.npz] [--out page.html]
    [--oracle keras3|tf_keras] [--seed N]``."""
    from keraspec.spec import ORACLES

    p = subparsers.add_parser(
        "check-model", help="load a Keras model file into keraspec.impl and the oracle; find the first layer that diverges",
        epilog="Exit status: 0 when every layer agrees with the oracle under the tolerance policy; 1 when a layer "
               "diverges (or cannot be compared); 2 for bad input (an unreadable file, a layer class keraspec lacks, "
               "a shape or .npz that does not fit the model, no oracle installed), one line naming it.")
    p.add_argument("file", help="a Keras 3 .keras archive or a tf_keras .h5 model")
    p.add_argument("--input-shape", help="input shape(s) with the batch axis, e.g. '(2, 32, 32, 3)'; a list for "
                                         "several inputs; fills the axes the model leaves free")
    p.add_argument("--dtype", default="float32", choices=INPUT_DTYPES, help="dtype of the drawn float inputs")
    p.add_argument("--inputs", help="an .npz with one array per model input (named like the inputs, or arr_0, ...)")
    p.add_argument("--out", help="write the HTML page here (default: no page)")
    p.add_argument("--oracle", choices=ORACLES, help="default: the file's flavour (keras3 for .keras, tf_keras for "
                                                     "a tf_keras .h5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn inputs")
    p.set_defaults(func=run_cli)
    return p


def run_cli(args: Any) -> int:
    """``keraspec check-model``: bad input is a BadInput (one line, status 2); the verdict is 0 or 1."""
    from keraspec.spec.cli import BadInput, one_line, parse_shape

    path = Path(args.file)
    if not path.is_file():
        raise BadInput(f"{args.file}: {'is a folder' if path.is_dir() else 'no such file'}; give a .keras or .h5 model file")
    shapes = None
    if args.input_shape is not None:
        parsed = parse_shape(args.input_shape)
        shapes = parsed if isinstance(parsed, list) else [parsed]
    out = Path(args.out) if args.out else None
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise BadInput(f"--out {args.out}: {'is a folder' if out.is_dir() else 'its folder does not exist'}; "
                       "give the path of an .html file")
    from keraspec.impl.models import ModelConfigError
    from keraspec.impl.saving import ModelFileError

    from .oracle import OracleUnavailable

    try:
        inputs = None
        if args.inputs is not None:
            from keraspec.impl.saving import load_model

            model = load_model(path)
            inputs = read_npz_inputs(args.inputs, model.input_names)
        result = check_model(path, oracle=args.oracle, input_shapes=shapes, dtype=args.dtype, inputs=inputs,
                             seed=args.seed)
    except (ModelFileError, ModelConfigError, ModelCheckInputError, OracleUnavailable) as exc:
        raise BadInput(one_line(str(exc))) from None
    print(f"{result.path}: model '{result.model_name}' ({result.flavor}) vs {result.oracle} {result.oracle_version}, "
          f"inputs {', '.join(_shape(s) for s in result.input_shapes)} {result.dtype}, {result.seconds} s")
    print(result.table())
    print(result.verdict())
    if out is not None:
        from keraspec.reports.model_page import write_page

        try:
            write_page(result, out)
        except OSError as exc:
            raise BadInput(f"--out {args.out}: cannot be written ({exc.strerror or exc})") from None
        print(f"page: {out}")
    return 0 if result.conforms else 1


__all__ = ["LayerRow", "ModelCheck", "ModelCheckInputError", "check_model", "draw_inputs", "read_npz_inputs", "add_arguments", "run_cli"]
