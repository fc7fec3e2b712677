"""keraspec.impl.regularizers and keraspec.impl.constraints against Keras 3 and tf_keras."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from keraspec.conformance.tolerance import compare, tolerance
from keraspec.impl import constraints as C
from keraspec.impl import regularizers as R

SHAPES = [(64, 128), (3, 3, 16, 32)]


def weights(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Normal weights whose output slices have norms spread from well below to well above 1-2,
    so every clipping branch of the norm constraints is exercised."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape)
    w *= rng.uniform(0.01, 0.6, shape[-1])  # per-output-unit scale
    return w.astype(dtype)


def check(actual, expected, dtype: str, op_class: str, length: int, what: str) -> None:
    result = compare(np.asarray(actual), np.asarray(expected), tolerance(dtype, "cpu", op_class, length), what)
    assert result.ok, str(result)


# -- regularizers ----------------------------------------------------------------------------------
REGULARIZERS = [
    ("L1()", lambda m: m.regularizers.L1(), lambda: R.L1()),
    ("L1(0.3)", lambda m: m.regularizers.L1(0.3), lambda: R.L1(0.3)),
    ("L2()", lambda m: m.regularizers.L2(), lambda: R.L2()),
    ("L2(0.25)", lambda m: m.regularizers.L2(0.25), lambda: R.L2(0.25)),
    ("L1L2(0.01,0.02)", lambda m: m.regularizers.L1L2(0.01, 0.02), lambda: R.L1L2(0.01, 0.02)),
    ("L1L2(0,0.5)", lambda m: m.regularizers.L1L2(0.0, 0.5), lambda: R.L1L2(0.0, 0.5)),
    ("L1L2()", lambda m: m.regularizers.L1L2(), lambda: R.L1L2()),
]


@pytest.mark.parametrize("shape", SHAPES, ids=["dense", "conv2d"])
@pytest.mark.parametrize("label, make_oracle, make_ours", REGULARIZERS, ids=[r[0] for r in REGULARIZERS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_penalty_matches_keras3(label, make_oracle, make_ours, shape, dtype, keras3, tf) -> None:
    w = weights(shape, dtype)
    expected = make_oracle(keras3)(tf.constant(w)).numpy()
    actual = make_ours()(torch.from_numpy(w))
    assert actual.dim() == 0 and actual.dtype == torch.from_numpy(w).dtype
    check(actual.numpy(), expected, dtype, "reduction", w.size, label)


@pytest.mark.parametrize("label, make_oracle, make_ours", REGULARIZERS, ids=[r[0] for r in REGULARIZERS])
def test_penalty_matches_tf_keras(label, make_oracle, make_ours, tf_keras, tf) -> None:
    # float32 only: tf_keras keeps its factors as float32 numbers (see the module docstring).
    w = weights((64, 128), "float32")
    expected = make_oracle(tf_keras)(tf.constant(w)).numpy()
    check(make_ours()(torch.from_numpy(w)).numpy(), expected, "float32", "reduction", w.size, label)


@pytest.mark.parametrize("mode", ["rows", "columns"])
@pytest.mark.parametrize("shape", [(16, 48), (48, 16)])
def test_orthogonal_regularizer_matches_keras3(mode, shape, keras3, tf) -> None:
    w = weights(shape, "float32")
    expected = keras3.regularizers.OrthogonalRegularizer(0.1, mode)(tf.constant(w)).numpy()
    actual = R.OrthogonalRegularizer(0.1, mode)(torch.from_numpy(w)).numpy()
    check(actual, expected, "float32", "reduction", w.size, f"orthogonal {mode}")


REGULARIZER_NAMES = ["l1", "l2", "L1", "L2", "L1L2", "l1l2", "orthogonal_regularizer", "OrthogonalRegularizer"]


@pytest.mark.parametrize("name", REGULARIZER_NAMES)
def test_regularizer_serialize_matches_keras3(name, keras3) -> None:
    assert R.serialize(R.get(name)) == keras3.regularizers.serialize(keras3.regularizers.get(name))


def test_regularizer_configured_serialize_matches_keras3(keras3) -> None:
    K = keras3.regularizers
    for ours, theirs in [
        (R.L1(0.3), K.L1(0.3)),
        (R.L2(0.3), K.L2(0.3)),
        (R.L1L2(0.3, 0.1), K.L1L2(0.3, 0.1)),
        (R.L1L2(l1=None, l2=2), K.L1L2(l1=None, l2=2)),
        (R.OrthogonalRegularizer(0.5, "columns"), K.OrthogonalRegularizer(0.5, "columns")),
    ]:
        expected = K.serialize(theirs)
        assert R.serialize(ours) == expected
        assert R.serialize(R.get(expected)) == expected


def test_regularizer_lookup_rules(tf_keras) -> None:
    assert R.get(None) is None
    reg = R.L2(0.5)
    assert R.get(reg) is reg
    assert isinstance(R.get(R.L1), R.L1)
    # "l1_l2" is a tf_keras-only string and means L1L2(0.01, 0.01) there.
    ours = R.get("l1_l2")
    theirs = tf_keras.regularizers.get("l1_l2")
    assert (ours.l1, ours.l2) == (0.01, 0.01)
    assert (theirs.l1, theirs.l2) == pytest.approx((0.01, 0.01))
    # tf_keras dicts (new and legacy) read back.
    for config in (tf_keras.regularizers.serialize(tf_keras.regularizers.L1L2(0.5, 0.25)),
                   tf_keras.regularizers.serialize(tf_keras.regularizers.L1L2(0.5, 0.25), use_legacy_format=True)):
        got = R.get(config)
        assert isinstance(got, R.L1L2) and (got.l1, got.l2) == (0.5, 0.25)
    assert isinstance(R.get({"class_name": "L1L2", "config": {"l1": 0.0, "l2": 0.0}}), R.L1L2)
    with pytest.raises(ValueError, match="'l2'"):
        R.get("l3")
    with pytest.raises(ValueError, match="non-negative"):
        R.L1(-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        R.L2(math.inf)
    with pytest.raises(ValueError):
        R.get({"class_name": "L1", "config": {"l2": 0.1}})


def test_regularizer_differentiable_and_devices() -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            w = torch.randn(8, 8, dtype=dtype, device=device, requires_grad=True)
            for reg in (R.L1(), R.L2(), R.L1L2(0.1, 0.2), R.L1L2(), R.OrthogonalRegularizer()):
                penalty = reg(w)
                assert penalty.dtype == dtype and penalty.device.type == device and penalty.dim() == 0
                if penalty.requires_grad:
                    penalty.backward()
    w = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    R.L1L2(0.1, 0.2)(w).backward()
    torch.testing.assert_close(w.grad, 0.1 * torch.sign(w.detach()) + 0.4 * w.detach())


# -- constraints -----------------------------------------------------------------------------------
def constraint_cases(rank: int):
    """(label, keras class name, kwargs) -- defaults, and axes natural for the rank."""
    yield "max_norm", "MaxNorm", {}
    yield "non_neg", "NonNeg", {}
    yield "unit_norm", "UnitNorm", {}
    yield "min_max_norm", "MinMaxNorm", {}
    yield "MaxNorm(1.5, axis=1)", "MaxNorm", {"max_value": 1.5, "axis": 1}
    yield "MinMaxNorm(0.5, 1.5, 0.7)", "MinMaxNorm", {"min_value": 0.5, "max_value": 1.5, "rate": 0.7}
    if rank == 4:
        yield "MaxNorm(axis=[0,1,2])", "MaxNorm", {"max_value": 1.0, "axis": [0, 1, 2]}
        yield "UnitNorm(axis=[0,1,2])", "UnitNorm", {"axis": [0, 1, 2]}
        yield "MinMaxNorm(axis=[0,1,2])", "MinMaxNorm", {"min_value": 0.3, "max_value": 0.8, "axis": [0, 1, 2]}


CONSTRAINT_CASES = [
    pytest.param(shape, label, cls, kwargs, id=f"{label}-rank{len(shape)}")
    for shape in SHAPES
    for label, cls, kwargs in constraint_cases(len(shape))
]


@pytest.mark.parametrize("shape, label, cls, kwargs", CONSTRAINT_CASES)
@pytest.mark.parametrize("oracle_name, dtype", [("keras3", "float32"), ("keras3", "float64"), ("tf_keras", "float32")])
def test_constraint_matches_oracle(shape, label, cls, kwargs, oracle_name, dtype, oracle, tf) -> None:
    module = oracle(oracle_name)
    w = weights(shape, dtype)
    theirs = getattr(module.constraints, cls)(**kwargs)
    expected = np.asarray(theirs(tf.constant(w)))
    ours = C.get({"class_name": cls, "config": kwargs})
    actual = ours(torch.from_numpy(w))
    assert actual.dtype == torch.from_numpy(w).dtype and tuple(actual.shape) == shape
    axis = kwargs.get("axis", 0)
    length = math.prod(shape[a] for a in (axis if isinstance(axis, list) else [axis]))
    check(actual.numpy(), expected, dtype, "reduction", length, f"{label} [{oracle_name}]")


CONSTRAINT_NAMES = ["max_norm", "non_neg", "unit_norm", "min_max_norm", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm"]


@pytest.mark.parametrize("name", CONSTRAINT_NAMES)
def test_constraint_serialize_matches_keras3(name, keras3) -> None:
    assert C.serialize(C.get(name)) == keras3.constraints.serialize(keras3.constraints.get(name))


def test_constraint_configured_serialize_matches_keras3(keras3) -> None:
    K = keras3.constraints
    for ours, theirs in [
        (C.MaxNorm(3.0, axis=[0, 1, 2]), K.MaxNorm(3.0, axis=[0, 1, 2])),
        (C.UnitNorm(axis=1), K.UnitNorm(axis=1)),
        (C.MinMaxNorm(0.1, 2.0, 0.5, axis=-1), K.MinMaxNorm(0.1, 2.0, 0.5, axis=-1)),
    ]:
        expected = K.serialize(theirs)
        assert C.serialize(ours) == expected
        assert C.serialize(C.get(expected)) == expected


def test_constraint_lookup_rules(tf_keras) -> None:
    assert C.get(None) is None
    c = C.NonNeg()
    assert C.get(c) is c
    assert isinstance(C.get(C.UnitNorm), C.UnitNorm)
    assert isinstance(C.get("maxnorm"), C.MaxNorm)  # tf_keras's old alias
    legacy = tf_keras.constraints.serialize(tf_keras.constraints.MaxNorm(4, axis=[0, 1]), use_legacy_format=True)
    got = C.get(legacy)
    assert isinstance(got, C.MaxNorm) and (got.max_value, got.axis) == (4, [0, 1])
    with pytest.raises(ValueError, match="'max_norm'"):
        C.get("max_nrom")
    with pytest.raises(ValueError):
        C.get({"class_name": "MaxNorm", "config": {"maximum": 3}})


def test_constraint_dtypes_devices() -> None:
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            w = torch.randn(3, 3, 4, 5, dtype=dtype, device=device)
            for name in CONSTRAINT_NAMES:
                out = C.get(name)(w)
                assert out.dtype == dtype and out.device.type == device and out.shape == w.shape, name
    w = torch.randn(6, 4, dtype=torch.float64)
    norms = C.UnitNorm()(w).norm(dim=0)
    torch.testing.assert_close(norms, torch.ones(4, dtype=torch.float64), atol=1e-6, rtol=0)
    assert (C.NonNeg()(w) >= 0).all()
