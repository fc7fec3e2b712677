"""Fast checks of the stochastic regularization layers (Dropout, SpatialDropout1D/2D/3D, GaussianNoise,
GaussianDropout, AlphaDropout).

Statistical bounds: every statistic is compared with its expectation to within 6 standard errors,
so a correct layer fails a given check with probability about 2e-9 (two-sided normal tail); the
global torch RNG is also seeded per test, so a run is reproducible.  With n = 20000 independent
draws, 6 standard errors are about 2% absolute on a drop rate of 0.3 and about 3% relative on a
standard deviation -- far tighter than a wrong scale or rate would pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from keraspec.impl import layers as L

N = 20000  # independent draws per statistical check
Z = 6.0  # bound in standard errors
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

ALL_LAYERS = [
    ("Dropout", {"rate": 0.3}, (4, 10, 6)),
    ("Dropout", {"rate": 0.3, "noise_shape": (None, 1, 6), "seed": 1}, (4, 10, 6)),
    ("SpatialDropout1D", {"rate": 0.3}, (4, 10, 6)),
    ("SpatialDropout2D", {"rate": 0.3}, (2, 5, 5, 3)),
    ("SpatialDropout2D", {"rate": 0.3, "data_format": "channels_first"}, (2, 3, 5, 5)),
    ("SpatialDropout3D", {"rate": 0.3}, (2, 3, 4, 5, 3)),
    ("GaussianNoise", {"stddev": 0.5}, (4, 10, 6)),
    ("GaussianDropout", {"rate": 0.3}, (4, 10, 6)),
    ("AlphaDropout", {"rate": 0.3}, (4, 10, 6)),
    ("AlphaDropout", {"rate": 0.3, "noise_shape": (4, 1, 6), "seed": 2}, (4, 10, 6)),
]


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)


def _x(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Values of magnitude in [0.5, 1.5] with random signs: never 0, so a dropped unit is visible."""
    g = torch.Generator().manual_seed(123)
    mag = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    return (mag * sign).to(dtype)


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float = 0.0) -> None:
    """assert_close's rule, without its per-call overhead (noticeable on large tensors)."""
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.allclose(got, want, rtol=rtol, atol=atol), f"max abs error {(got - want).abs().max().item():.3g}"


def _within(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= Z * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize(("name", "config", "shape"), ALL_LAYERS, ids=lambda v: str(v))
def test_inference_is_identity(name, config, shape):
    layer = L.get(name)(**config)
    x = _x(shape)
    assert layer(x) is x
    assert layer(x, training=False) is x


@pytest.mark.parametrize(("name", "config", "shape"), ALL_LAYERS, ids=lambda v: str(v))
def test_training_changes_the_input_and_keeps_the_shape(name, config, shape):
    x = _x(shape)
    y = L.get(name)(**config)(x, training=True)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert not torch.equal(y, x)


@pytest.mark.parametrize(("name", "config", "shape"), [
    ("Dropout", {"rate": 0.0}, (3, 4)),
    ("Dropout", {"rate": 0, "noise_shape": (1, 4), "seed": 1}, (3, 4)),
    ("SpatialDropout1D", {"rate": 0.0}, (2, 3, 4)),
    ("SpatialDropout3D", {"rate": 0.0}, (2, 3, 4, 2, 2)),
    ("GaussianNoise", {"stddev": 0.0}, (3, 4)),
    ("GaussianDropout", {"rate": 0.0}, (3, 4)),
    ("AlphaDropout", {"rate": 0.0}, (3, 4)),
], ids=lambda v: str(v))
def test_zero_rate_in_training_returns_the_input(name, config, shape):
    x = _x(shape)
    assert L.get(name)(**config)(x, training=True) is x


@pytest.mark.parametrize("seed", [None, 7], ids=["global_rng", "seeded"])
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_fraction_and_kept_values(rate, seed):
    x = _x((N,))
    y = L.Dropout(rate, seed=seed)(x, training=True)
    dropped = y == 0
    assert _within(int(dropped.sum()), N, rate), f"dropped {dropped.float().mean():.4f}, rate {rate}"
    _close(y[~dropped], x[~dropped] / (1 - rate), rtol=1e-6, atol=0)


def test_dropout_noise_shape_broadcasts():
    batch, steps, channels = 500, 3, 40  # 20000 draws, each shared by 3 steps
    x = _x((batch, steps, channels))
    layer = L.Dropout(0.4, noise_shape=(None, 1, channels), seed=3)
    y = layer(x, training=True)
    dropped = y == 0
    assert (dropped == dropped[:, :1, :]).all(), "the drop must be shared along the axis where noise_shape is 1"
    assert _within(int(dropped[:, 0, :].sum()), batch * channels, 0.4)
    _close(y[~dropped], x[~dropped] / 0.6, rtol=1e-6, atol=0)
    # A shorter noise_shape broadcasts from the right, as in TensorFlow: (channels,) shares each
    # channel's draw across batch and steps.
    y = L.Dropout(0.5, noise_shape=(channels,), seed=4)(x, training=True)
    assert ((y == 0) == (y == 0)[:1, :1, :]).all()


def test_dropout_noise_shape_that_does_not_broadcast_is_rejected():
    with pytest.raises(ValueError, match="noise_shape"):
        L.Dropout(0.5, noise_shape=(2, 2, 4))(_x((2, 3, 4)), training=True)


@pytest.mark.parametrize(("name", "data_format", "shape", "channel_axis"), [
    ("SpatialDropout1D", None, (200, 3, 100), 2),
    ("SpatialDropout2D", "channels_last", (200, 2, 3, 100), 3),
    ("SpatialDropout2D", "channels_first", (200, 100, 3, 2), 1),
    ("SpatialDropout3D", "channels_last", (200, 2, 1, 2, 100), 4),
    ("SpatialDropout3D", "channels_first", (200, 100, 1, 2, 2), 1),
])
def test_spatial_dropout_drops_whole_channels(name, data_format, shape, channel_axis):
    config = {"rate": 0.3, "seed": 11}
    if data_format is not None:
        config["data_format"] = data_format
    x = _x(shape)
    y = L.get(name)(**config)(x, training=True)
    dropped = y == 0
    spatial = tuple(a for a in range(1, len(shape)) if a != channel_axis)
    whole = dropped.all(dim=spatial)
    assert (whole == dropped.any(dim=spatial)).all(), "a channel is either dropped everywhere or nowhere"
    assert _within(int(whole.sum()), whole.numel(), 0.3)  # 200 * 100 = 20000 (sample, channel) draws
    _close(y[~dropped], x[~dropped] / 0.7, rtol=1e-6, atol=0)


def test_spatial_dropout_checks_the_rank():
    with pytest.raises(ValueError, match=r"SpatialDropout2D.*\(2, 3, 4\)"):
        L.SpatialDropout2D(0.5)(_x((2, 3, 4)))


@pytest.mark.parametrize("stddev", [0.1, 1.0])
def test_gaussian_noise_statistics(stddev):
    # mean: standard error stddev / sqrt(N); std: standard error ~ stddev / sqrt(2 N) -> 6 SE is 3%.
    x = _x((N,), torch.float64)
    noise = L.GaussianNoise(stddev, dtype="float64")(x, training=True) - x
    assert abs(noise.mean().item()) <= Z * stddev / math.sqrt(N)
    assert abs(noise.std().item() / stddev - 1) <= Z / math.sqrt(2 * (N - 1))


@pytest.mark.parametrize("rate", [0.2, 0.6])
def test_gaussian_dropout_statistics(rate):
    x = _x((N,), torch.float64)
    factor = L.GaussianDropout(rate, seed=5, dtype="float64")(x, training=True) / x
    sigma = math.sqrt(rate / (1 - rate))
    assert abs(factor.mean().item() - 1) <= Z * sigma / math.sqrt(N)
    assert abs(factor.std().item() / sigma - 1) <= Z / math.sqrt(2 * (N - 1))


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_alpha_dropout_values_and_fraction(rate):
    x = _x((N,), torch.float64)
    y = L.AlphaDropout(rate, seed=6, dtype="float64")(x, training=True)
    alpha_p = -_SELU_ALPHA * _SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    dropped = torch.isclose(y, torch.tensor(a * alpha_p + b, dtype=y.dtype), rtol=0, atol=1e-12)
    assert _within(int(dropped.sum()), N, rate)
    _close(y[~dropped], a * x[~dropped] + b, rtol=1e-12, atol=1e-12)


def test_alpha_dropout_keeps_zero_mean_unit_variance():
    # For standard-normal inputs the output keeps mean 0 (SE 1/sqrt(N) -> 6 SE = 0.042) and variance 1
    # (the mixture's kurtosis is below 5, so SE(var) < sqrt(4 / N) = 0.014 -> 6 SE < 0.085).
    x = torch.randn(N, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    y = L.AlphaDropout(0.3, seed=8, dtype="float64")(x, training=True)
    assert abs(y.mean().item()) <= Z / math.sqrt(N)
    assert abs(y.var().item() - 1) <= Z * math.sqrt(4 / N)


@pytest.mark.parametrize(("name", "config", "shape"), ALL_LAYERS, ids=lambda v: str(v))
def test_same_seed_same_output(name, config, shape):
    x = _x(shape)
    config = {**config, "seed": 1234}
    a = L.get(name)(**config)(x, training=True)
    b = L.get(name)(**config)(x, training=True)
    assert torch.equal(a, b)
    layer = L.get(name)(**config)
    first, second = layer(x, training=True), layer(x, training=True)
    assert not torch.equal(first, second), "successive calls of one seeded layer draw afresh"
    assert not torch.equal(L.get(name)(**{**config, "seed": 4321})(x, training=True), a)


def test_global_rng_when_unseeded():
    x = _x((100,))
    torch.manual_seed(42)
    a = L.Dropout(0.5)(x, training=True)
    torch.manual_seed(42)
    b = L.Dropout(0.5)(x, training=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize(("name", "config"), [
    ("Dropout", {"rate": 0.5, "noise_shape": (None, 1, 6), "seed": 3}),
    ("AlphaDropout", {"rate": 0.5, "seed": 3}),
    ("GaussianDropout", {"rate": 0.5, "seed": 3}),
])
def test_gradient_is_the_drawn_factor(name, config):
    x = _x((4, 5, 6), torch.float64).requires_grad_(True)
    y = L.get(name)(**config, dtype="float64")(x, training=True)
    y.sum().backward()
    # The same seed draws the same noise on an input of ones, which shows the factor per element.
    factor = L.get(name)(**config, dtype="float64")(torch.ones_like(x), training=True).detach()
    if name == "AlphaDropout":  # d(a * x + b)/dx = a where kept, 0 where dropped (set to a * alpha' + b)
        rate, alpha_p = config["rate"], -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        kept = ~torch.isclose(factor, torch.tensor(a * alpha_p + b, dtype=factor.dtype), rtol=0, atol=1e-12)
        expected = torch.where(kept, torch.tensor(a, dtype=factor.dtype), 0.0)
    else:
        expected = factor
    _close(x.grad, expected.expand_as(x), rtol=1e-12, atol=1e-12)


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        L.GaussianDropout(-0.1)
    with pytest.raises(ValueError, match="stddev"):
        L.GaussianNoise(1.5)
    with pytest.raises(TypeError, match="seed"):
        L.AlphaDropout(0.5, seed="3")
    with pytest.raises(ValueError, match="data_format"):
        L.SpatialDropout2D(0.5, data_format="nchw")
    with pytest.raises(TypeError):
        L.SpatialDropout1D(0.5, trainable=False)  # Keras 3's SpatialDropout takes no trainable either


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize(("name", "config", "shape"), ALL_LAYERS, ids=lambda v: str(v))
def test_other_dtypes(name, config, shape, dtype):
    x = _x(shape, getattr(torch, dtype))
    y = L.get(name)(**config, dtype=dtype)(x, training=True)
    assert y.dtype == x.dtype and torch.isfinite(y).all() and not torch.equal(y, x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize(("name", "config", "shape"), ALL_LAYERS, ids=lambda v: str(v))
def test_cuda(name, config, shape):
    x = _x(shape).cuda()
    config = {**config, "seed": 99}
    a = L.get(name)(**config).to("cuda")(x, training=True)
    b = L.get(name)(**config).to("cuda")(x, training=True)
    assert a.device == x.device and torch.equal(a, b)
    assert L.get(name)(**config).to("cuda")(x) is x


# -- get_config against Keras 3 --------------------------------------------------------------------
CONFIGS = [
    ("Dropout", {"rate": 0.25}),
    ("Dropout", {"rate": 0.5, "noise_shape": (None, 1, 8), "seed": 3}),
    ("SpatialDropout1D", {"rate": 0.25, "seed": 1}),
    ("SpatialDropout2D", {"rate": 0.25}),
    ("SpatialDropout2D", {"rate": 0.25, "data_format": "channels_first", "seed": 2}),
    ("SpatialDropout3D", {"rate": 0.25, "data_format": "channels_last"}),
    ("GaussianNoise", {"stddev": 0.3, "seed": 4}),
    ("GaussianDropout", {"rate": 0.1}),
    ("AlphaDropout", {"rate": 0.2, "noise_shape": (2, 1, 8), "seed": 5}),
]


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=lambda v: str(v))
def test_get_config_equals_keras3(keras3, name, config):
    for dtype in ("float32", "float64"):
        theirs = getattr(keras3.layers, name)(**config, name="the_layer", dtype=dtype).get_config()
        ours = L.get(name)(**config, name="the_layer", dtype=dtype).get_config()
        assert ours == theirs
        again = L.get(name).from_config(ours).get_config()
        assert again == ours


def test_get_config_matches_keras3_noise_shape_as_list(keras3):
    theirs = keras3.layers.Dropout(0.5, noise_shape=[None, 1, 8], name="d").get_config()
    ours = L.Dropout(0.5, noise_shape=[None, 1, 8], name="d").get_config()
    assert ours == theirs
    assert np.array_equal(np.array(ours["noise_shape"], dtype=object), np.array((None, 1, 8), dtype=object))
