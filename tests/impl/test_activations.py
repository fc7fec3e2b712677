"""keraspec.impl.activations against Keras 3 and tf_keras (both on TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from keraspec.conformance.tolerance import compare, tolerance
from keraspec.impl import activations as A
from keraspec.impl import flavor as flavor_module

#: The tolerance class of each activation: how many roundings/libm calls separate two correct
#: implementations.  Reductions over the last axis are scaled by its length.
OP_CLASS: dict[str, str] = {
    **{name: "transcendental" for name in A.ACTIVATIONS},
    **{
        name: "elementwise"
        for name in (
            "linear", "relu", "relu6", "leaky_relu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
            "hard_shrink", "soft_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "softsign",
        )
    },
    **{name: "reduction" for name in ("softmax", "log_softmax", "sparsemax")},
}
WIDTH = 64

CASES = [
    pytest.param(name, oracle, id=f"{name}-{oracle}")
    for name, oracles in A.ACTIVATIONS.items()
    for oracle in oracles
    if name != "threshold"  # needs two more arguments; tested on its own below
]


def make_inputs(dtype: str, seed: int = 0) -> np.ndarray:
    """Random normal(0, 3) values plus rows of large magnitudes and the regions around each kink."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, WIDTH)) * 3.0
    x[0] = np.linspace(-60.0, 60.0, WIDTH)
    big = np.array([1e4, 1e3, 300.0, 100.0, 50.0, 35.0, 34.5, 33.0, 25.0, 20.5, 19.5, 15.0, 14.0, 13.0, 9.0, 7.0])
    x[1, :32] = np.concatenate([big, -big])
    x[1, 32:] = rng.uniform(-4.0, 4.0, 32)  # around the kinks of the piecewise-linear ones
    x[2] = rng.standard_normal(WIDTH) * 1e-3  # near zero
    return x.astype(dtype)


def oracle_fn(module, name: str):
    return module.activations.get(name)


def check(actual: np.ndarray, expected: np.ndarray, dtype: str, op_class: str, what: str,
          gradient: bool = False) -> None:
    tol = tolerance(dtype, "cpu", op_class, length=WIDTH, gradient=gradient)
    result = compare(actual, expected, tol, what=what)
    assert result.ok, str(result)


# -- values against the oracles --------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf in compare()
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, oracle_name", CASES)
def test_matches_oracle(name: str, oracle_name: str, dtype: str, oracle, tf) -> None:
    module = oracle(oracle_name)
    x = make_inputs(dtype)
    expected = oracle_fn(module, name)(tf.constant(x)).numpy()
    actual = A.get(name, flavor=oracle_name)(torch.from_numpy(x))
    assert actual.dtype == torch.from_numpy(x).dtype
    check(actual.numpy(), expected, dtype, OP_CLASS[name], f"{name} [{oracle_name}, {dtype}]")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_threshold_matches_keras3(dtype: str, keras3, tf) -> None:
    x = make_inputs(dtype)
    expected = keras3.activations.threshold(tf.constant(x), 0.5, -1.0).numpy()
    actual = A.get("threshold", "keras3")(torch.from_numpy(x), 0.5, -1.0)
    check(actual.numpy(), expected, dtype, "exact", "threshold")


GRADIENT_CASES = [
    ("relu", "keras3"), ("elu", "keras3"), ("selu", "keras3"), ("gelu", "keras3"), ("silu", "keras3"),
    ("softplus", "keras3"), ("mish", "keras3"), ("sigmoid", "keras3"), ("tanh", "keras3"),
    ("hard_sigmoid", "keras3"), ("hard_sigmoid", "tf_keras"), ("hard_silu", "keras3"), ("hard_tanh", "keras3"),
    ("sparse_plus", "keras3"), ("squareplus", "keras3"), ("log_sigmoid", "keras3"), ("celu", "keras3"),
    ("glu", "keras3"), ("softmax", "keras3"), ("log_softmax", "tf_keras"), ("sparsemax", "keras3"),
    ("swish", "tf_keras"), ("leaky_relu", "tf_keras"),
]


@pytest.mark.parametrize("name, oracle_name", GRADIENT_CASES, ids=[f"{n}-{o}" for n, o in GRADIENT_CASES])
def test_gradient_matches_oracle(name: str, oracle_name: str, oracle, tf) -> None:
    """d/dx sum(f(x) * g) for a random cotangent g, in float64, away from the kinks."""
    module = oracle(oracle_name)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, WIDTH)) * 3.0
    fn = A.get(name, oracle_name)
    xt = torch.from_numpy(x).requires_grad_(True)
    y = fn(xt)
    g = rng.standard_normal(tuple(y.shape))
    (y * torch.from_numpy(g)).sum().backward()

    xtf = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xtf)
        loss = tf.reduce_sum(oracle_fn(module, name)(xtf) * tf.constant(g))
    expected = tape.gradient(loss, xtf).numpy()
    check(xt.grad.numpy(), expected, "float64", OP_CLASS[name], f"grad {name} [{oracle_name}]", gradient=True)


# -- the flavour differences -----------------------------------------------------------------------
def test_hard_sigmoid_flavors_differ() -> None:
    x = torch.tensor([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    k3 = A.get("hard_sigmoid", "keras3")(x)
    k2 = A.get("hard_sigmoid", "tf_keras")(x)
    torch.testing.assert_close(k3, torch.clamp(x / 6 + 0.5, 0, 1))
    torch.testing.assert_close(k2, torch.tensor([0.0, 0.0, 0.3, 0.5, 0.7, 1.0, 1.0]))


def test_softmax_rank1(keras3, tf_keras, tf) -> None:
    x = np.array([1.0, 2.0, 3.0], dtype="float32")
    expected = keras3.activations.softmax(tf.constant(x)).numpy()
    np.testing.assert_allclose(A.get("softmax", "keras3")(torch.from_numpy(x)).numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="1D"):
        tf_keras.activations.softmax(tf.constant(x))
    with pytest.raises(ValueError, match="1D"):
        A.get("softmax", "tf_keras")(torch.from_numpy(x))


def test_sparsemax_mirrors_keras_threshold(keras3, tf) -> None:
    """Keras 3.15's sparsemax threshold sums every supported cumsum (see the docstring)."""
    x = np.array([[1.0, 0.9, 0.0], [3.0, 1.0, 0.5]], dtype="float32")
    expected = keras3.activations.sparsemax(tf.constant(x)).numpy()
    np.testing.assert_allclose(A.sparsemax(torch.from_numpy(x)).numpy(), expected, atol=1e-6)


def test_differences_documented() -> None:
    assert set(A.DIFFERENCES) >= {"hard_sigmoid", "softmax", "swish"}
    for name in A.DIFFERENCES:
        assert A.ACTIVATIONS[name] == ("keras3", "tf_keras"), name


# -- the tables against the oracles' own ---------------------------------------------------------
def test_names_match_keras3(keras3) -> None:
    from keras.src.activations import ALL_OBJECTS_DICT

    ours = {name for name, oracles in A.ACTIVATIONS.items() if "keras3" in oracles}
    assert ours == set(ALL_OBJECTS_DICT)


def test_names_match_tf_keras(tf_keras) -> None:
    ours = {name for name, oracles in A.ACTIVATIONS.items() if "tf_keras" in oracles}
    for name in ours:
        assert callable(tf_keras.activations.get(name)), name
    for name in set(A.ACTIVATIONS) - ours:
        with pytest.raises(ValueError):
            tf_keras.activations.get(name)


@pytest.mark.parametrize("oracle_name", ["keras3", "tf_keras"])
def test_serialize_matches_layer_config(oracle_name: str, oracle) -> None:
    module = oracle(oracle_name)
    names = [None] + [n for n, o in A.ACTIVATIONS.items() if oracle_name in o and n != "threshold"]
    for name in names:
        expected = module.layers.Activation(name).get_config()["activation"]
        assert A.serialize(name, flavor=oracle_name) == expected, name
        assert A.serialize(A.get(name, oracle_name), flavor=oracle_name) == expected, name


def test_serialize_and_get_dict(keras3) -> None:
    for name in ("relu", "swish", "hard_sigmoid"):
        config = keras3.activations.serialize(keras3.activations.get(name))
        assert A.serialize(name, "keras3") == config
        full = keras3.saving.serialize_keras_object(keras3.activations.get(name))
        assert isinstance(full, dict)
        assert A.get(full, "keras3") is A.get(name, "keras3")
    # Keras's own functions serialize by name.
    assert A.serialize(keras3.activations.relu, "keras3") == "relu"


# -- lookup rules (no oracle needed) ---------------------------------------------------------------
def test_get_basics() -> None:
    assert A.get(None) is A.linear
    x = torch.randn(3)
    assert A.linear(x) is x
    f = lambda t: t * 2  # noqa: E731
    assert A.get(f) is f
    assert A.get("swish", "keras3") is A.get("silu", "keras3")
    assert A.get({"module": "keras.activations", "class_name": "function", "config": "relu",
                  "registered_name": "relu"}) is A.relu


def test_unknown_name_suggests() -> None:
    with pytest.raises(ValueError, match="rleu.*'relu'"):
        A.get("rleu")
    with pytest.raises(ValueError, match="Unknown activation"):
        A.serialize("not_an_activation")
    with pytest.raises(ValueError):
        A.serialize(lambda t: t)


def test_other_oracle_only() -> None:
    with pytest.raises(ValueError, match="only in keras3"):
        A.get("celu", flavor="tf_keras")
    assert A.get("celu", flavor="keras3") is A.celu


def test_flavor_machinery() -> None:
    assert flavor_module.get_flavor() == "keras3"
    assert A.get("hard_sigmoid") is A.hard_sigmoid
    with A.flavor("tf_keras"):
        assert A.get_flavor() == "tf_keras"
        assert A.get("hard_sigmoid") is not A.hard_sigmoid
        assert A.serialize("silu") == "swish"
        with flavor_module.use_flavor("keras3"):
            assert A.serialize("swish") == "silu"
        assert A.get_flavor() == "tf_keras"
    assert A.get_flavor() == "keras3"
    A.set_flavor("tf_keras")
    try:
        assert flavor_module.get_flavor() == "tf_keras"
    finally:
        A.set_flavor("keras3")
    with pytest.raises(ValueError, match="keras3"):
        A.set_flavor("keras2")
    with pytest.raises(ValueError):
        A.get("relu", flavor="jax")


# -- dtypes and devices ----------------------------------------------------------------------------
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
LOW_PRECISION = {"float16": torch.float16, "bfloat16": torch.bfloat16}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("flavor_name", ["keras3", "tf_keras"])
def test_dtypes_devices_and_autograd(flavor_name: str, dtype_name: str, device: str) -> None:
    """Every activation keeps dtype and device, is differentiable, and in 16-bit agrees with the
    float32 result on the same (rounded) inputs within that dtype's tolerance."""
    dtype = getattr(torch, dtype_name)
    x32 = torch.from_numpy(make_inputs("float32"))[2:].to(device)  # moderate magnitudes
    x = x32.to(dtype)
    for name, oracles in A.ACTIVATIONS.items():
        if flavor_name not in oracles or name == "threshold":
            continue
        fn = A.get(name, flavor_name)
        xg = x.clone().requires_grad_(True)
        y = fn(xg)
        assert y.dtype == dtype and y.device.type == device, name
        y.float().sum().backward()
        assert xg.grad is not None and xg.grad.dtype == dtype, name
        if dtype_name in LOW_PRECISION or device != "cpu":
            reference = fn(x.to(torch.float32)).detach().double().cpu().numpy()
            tol = tolerance(dtype_name if dtype_name in LOW_PRECISION else "float32", device, OP_CLASS[name], WIDTH)
            result = compare(y.detach().double().cpu().numpy(), reference, tol, what=f"{name} {dtype_name} {device}")
            assert result.ok, str(result)
