"""keraspec.impl.initializers against Keras 3 and tf_keras.

Random initializers cannot match the oracle draw for draw (different generators), so they are
compared in distribution.

Statistical tolerance: for ``n`` independent draws with standard deviation ``sigma`` the sample
mean has standard error ``sigma / sqrt(n)`` and the sample standard deviation has standard error
``sigma * sqrt((kurtosis - 1) / (4 n))``, which is at most ``sigma / sqrt(2 n)`` for every
distribution used here (normal: kurtosis 3; normal truncated at 2 sigma: 2.36; uniform: 1.8).
Ours and the oracle's are independent, so their difference has sqrt(2) times that error.  Each
check allows 6 standard errors: a false alarm has probability ~2e-9 per check, while a wrong
fan, scale or truncation constant (>= 10% in std for these sizes) is far outside it.  The draws
are seeded, so the test is deterministic anyway.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from keraspec.conformance.tolerance import tolerance
from keraspec.impl import initializers as I

SHAPES = [(64, 128), (3, 3, 16, 32)]
RANDOM = {
    "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform",
    "truncated_normal": "TruncatedNormal",
    "variance_scaling": "VarianceScaling",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal",
}
N_SE = 6.0


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    rf = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * rf, shape[-1] * rf


def expected_std(name: str, shape: tuple[int, ...]) -> float:
    """The standard deviation each initializer is specified to produce, from first principles."""
    fan_in, fan_out = fans(shape)
    if name == "random_normal":
        return 0.05
    if name == "random_uniform":
        return 0.1 / math.sqrt(12.0)
    if name == "truncated_normal":
        return 0.05 * 0.87962566103423978  # std of N(0, 0.05) truncated at 2 sigma
    if name == "orthogonal":
        rows, cols = math.prod(shape[:-1]), shape[-1]
        return math.sqrt(1.0 / max(rows, cols))  # sum of squares = min(rows, cols) exactly
    scale = {"he_uniform": 2.0, "he_normal": 2.0}.get(name, 1.0)
    n = (fan_in + fan_out) / 2.0 if name.startswith("glorot") else fan_in
    return math.sqrt(scale / n)


def oracle_initializer(module, name: str, seed: int):
    if name in RANDOM:
        return module.initializers.get({"class_name": RANDOM[name], "config": {"seed": seed}})
    return module.initializers.get(name)


@pytest.mark.parametrize("shape", SHAPES, ids=["dense", "conv2d"])
@pytest.mark.parametrize("name", sorted(RANDOM))
@pytest.mark.parametrize("oracle_name", ["keras3", "tf_keras"])
def test_random_distribution_matches_oracle(name: str, shape: tuple[int, ...], oracle_name: str, oracle) -> None:
    module = oracle(oracle_name)
    ours = I.get(name)(shape, torch.float32, "cpu", generator=torch.Generator().manual_seed(1234)).double().numpy()
    theirs = np.asarray(oracle_initializer(module, name, seed=4321)(shape, dtype="float32"), dtype=np.float64)
    assert ours.shape == theirs.shape == shape
    n = ours.size
    sigma = expected_std(name, shape)
    se_mean, se_std = sigma / math.sqrt(n), sigma / math.sqrt(2 * n)
    assert abs(ours.mean() - theirs.mean()) <= N_SE * math.sqrt(2) * se_mean, (ours.mean(), theirs.mean())
    assert abs(ours.std() - theirs.std()) <= N_SE * math.sqrt(2) * se_std, (ours.std(), theirs.std(), sigma)
    assert abs(ours.std() - sigma) <= N_SE * se_std, (ours.std(), sigma)
    # Support: uniform within +-limit, truncated normal within 2 pre-truncation stddevs.
    if name.endswith("uniform"):
        limit = 0.05 if name == "random_uniform" else sigma * math.sqrt(3.0)
        assert np.abs(ours).max() <= limit * (1 + 1e-6)
    elif name in ("truncated_normal", "variance_scaling", "glorot_normal", "he_normal", "lecun_normal"):
        pre = 0.05 if name == "truncated_normal" else sigma / 0.87962566103423978
        assert np.abs(ours).max() <= 2.0 * pre * (1 + 1e-6)


@pytest.mark.parametrize("oracle_name", ["keras3", "tf_keras"])
def test_constant_initializers_exact(oracle_name: str, oracle) -> None:
    module = oracle(oracle_name)
    cases = [
        (I.Zeros(), module.initializers.Zeros(), (3, 3, 4, 5)),
        (I.Ones(), module.initializers.Ones(), (7, 2)),
        (I.Constant(3.5), module.initializers.Constant(3.5), (4, 6)),
        (I.Identity(), module.initializers.Identity(), (5, 7)),
        (I.Identity(gain=2.5), module.initializers.Identity(gain=2.5), (6, 3)),
    ]
    for ours, theirs, shape in cases:
        for dtype, tdtype in (("float32", torch.float32), ("float64", torch.float64)):
            expected = np.asarray(theirs(shape, dtype=dtype))
            actual = ours(shape, tdtype, "cpu").numpy()
            assert actual.dtype == expected.dtype
            np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("gain", [1.0, 2.0])
@pytest.mark.parametrize("shape", [(64, 128), (128, 64), (3, 3, 16, 32), (16, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_orthogonal_is_orthogonal(shape: tuple[int, ...], gain: float, dtype: torch.dtype) -> None:
    w = I.Orthogonal(gain=gain)(shape, dtype, "cpu", generator=torch.Generator().manual_seed(0))
    assert tuple(w.shape) == shape and w.dtype == dtype
    m = w.reshape(-1, shape[-1]).double()
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T
    size = min(rows, cols)
    tol = tolerance(str(dtype).removeprefix("torch."), "cpu", "reduction", length=max(rows, cols))
    torch.testing.assert_close(gram, gain**2 * torch.eye(size, dtype=torch.float64), atol=gain**2 * tol.atol, rtol=0)


def test_truncated_normal_constant_is_the_truncated_std() -> None:
    """0.8796... is the std of a standard normal truncated to [-2, 2]."""
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)  # pdf at 2
    mass = math.erf(2 / math.sqrt(2))
    assert math.sqrt(1 - 2 * 2 * phi / mass) == pytest.approx(I.TRUNCATED_NORMAL_STDDEV_CORRECTION, rel=1e-12)


@pytest.mark.parametrize(
    "shape, axes",
    [((), None), ((7,), None), ((5, 9), None), ((3, 16, 8), None), ((3, 3, 16, 32), None),
     ((2, 3, 4, 5, 6), None), ((4, 5, 6), ((0,), (1, 2)))],
)
def test_compute_fans_matches_keras(shape, axes, keras3) -> None:
    from keras.src.initializers.random_initializers import compute_fans

    kwargs = {} if axes is None else {"input_axes": axes[0], "output_axes": axes[1]}
    assert I.compute_fans(shape, **kwargs) == compute_fans(shape, **kwargs)


# -- serialization ---------------------------------------------------------------------------------
NAMES = sorted(RANDOM) + ["zeros", "ones", "identity", "normal", "uniform", "zero", "one", "IdentityInitializer",
                          "OrthogonalInitializer", "GlorotUniform", "HeNormal"]


@pytest.mark.parametrize("name", NAMES)
def test_serialize_matches_keras3(name: str, keras3) -> None:
    assert I.serialize(I.get(name)) == keras3.initializers.serialize(keras3.initializers.get(name))


def test_serialize_configured_matches_keras3(keras3) -> None:
    K = keras3.initializers
    pairs = [
        (I.Constant(), K.Constant()),
        (I.Constant(3), K.Constant(3)),
        (I.get("constant"), K.Constant()),  # Keras 3.15 cannot build "constant" from the string
        (I.RandomNormal(0.1, 0.2, seed=5), K.RandomNormal(0.1, 0.2, seed=5)),
        (I.RandomUniform(-1.0, 2.0), K.RandomUniform(-1.0, 2.0)),
        (I.VarianceScaling(2.0, "fan_out", "uniform", seed=3), K.VarianceScaling(2.0, "fan_out", "uniform", seed=3)),
        (I.VarianceScaling(distribution="normal"), K.VarianceScaling(distribution="normal")),
        (I.VarianceScaling(distribution="untruncated_normal", input_axes=[0], output_axes=[1]),
         K.VarianceScaling(distribution="untruncated_normal", input_axes=[0], output_axes=[1])),
        (I.Orthogonal(gain=2.0, seed=1), K.Orthogonal(gain=2.0, seed=1)),
        (I.GlorotNormal(seed=9), K.GlorotNormal(seed=9)),
        (I.Identity(gain=3.0), K.Identity(gain=3.0)),
    ]
    for ours, theirs in pairs:
        expected = K.serialize(theirs)
        assert I.serialize(ours) == expected
        # ... and what Keras wrote reads back to the same thing.
        assert I.serialize(I.get(expected)) == expected


def test_reads_tf_keras_dicts(tf_keras) -> None:
    K2 = tf_keras.initializers
    for theirs in (K2.GlorotUniform(seed=2), K2.RandomNormal(0.5, 2.0), K2.Constant(0), K2.Identity(gain=2.0),
                   K2.VarianceScaling(scale=3.0, mode="fan_avg", distribution="uniform"), K2.Orthogonal(gain=0.5)):
        for config in (K2.serialize(theirs), K2.serialize(theirs, use_legacy_format=True)):
            ours = I.get(config)
            assert type(ours).__name__ == type(theirs).__name__
            for key, value in theirs.get_config().items():
                assert getattr(ours, key if key != "seed" else "_init_seed") == value, (config, key)
    assert isinstance(I.get({"class_name": "GlorotUniformV2", "config": {"seed": None, "dtype": "float32"}}),
                      I.GlorotUniform)


# -- lookup rules (no oracle needed) ---------------------------------------------------------------
def test_get_rules() -> None:
    assert I.get(None) is None
    init = I.HeNormal()
    assert I.get(init) is init
    assert isinstance(I.get(I.Ones), I.Ones)
    assert I.get("constant").value == 0.0
    fn = lambda shape, dtype=None, device=None: torch.zeros(shape)  # noqa: E731
    assert I.get(fn) is fn
    value = torch.arange(6.0).reshape(2, 3)
    from_value = I.get(value)
    torch.testing.assert_close(from_value((2, 3), torch.float64), value.double())
    with pytest.raises(ValueError, match="Expected `shape`"):
        from_value((3, 2))


def test_unknown_names() -> None:
    with pytest.raises(ValueError, match="glorot_unifrom.*'glorot_uniform'"):
        I.get("glorot_unifrom")
    with pytest.raises(ValueError, match="Unknown initializer"):
        I.get({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError):
        I.VarianceScaling(mode="fan_sideways")
    with pytest.raises(ValueError):
        I.VarianceScaling(scale=0.0)
    with pytest.raises(ValueError, match="2D"):
        I.Identity()((2, 3, 4))
    with pytest.raises(ValueError, match="two-dimensional"):
        I.Orthogonal()((5,))


def test_seeding() -> None:
    seeded = I.GlorotUniform(seed=3)
    torch.testing.assert_close(seeded((8, 8)), seeded((8, 8)))  # Keras: a seeded initializer repeats
    a = I.HeNormal()((8, 8), generator=torch.Generator().manual_seed(1))
    b = I.HeNormal()((8, 8), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert not torch.equal(I.HeNormal()((8, 8)), I.HeNormal()((8, 8)))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes_and_devices(dtype: torch.dtype, device: str) -> None:
    for name in NAMES + ["constant"]:
        shape = (6, 6) if "dentity" in name else (3, 3, 4, 8)
        w = I.get(name)(shape, dtype, device)
        assert w.dtype == dtype and w.device.type == device and tuple(w.shape) == shape, name
        assert torch.isfinite(w).all(), name
    # A CPU generator still works for a weight on another device.
    w = I.GlorotUniform()((4, 4), dtype, device, generator=torch.Generator().manual_seed(0))
    assert w.device.type == device
    assert I.RandomUniform(0, 5)((100,), torch.int64, device).dtype == torch.int64
