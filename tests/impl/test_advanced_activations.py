"""The advanced activation layers: a wrong config names the parameter and the rule it breaks, and
each flavour's own semantics (argument names, masked softmax, float32 arguments) hold without an
oracle to compare with (the conformance suite compares them with the oracles)."""

from __future__ import annotations

import sys
from pathlib import Path

import math

import numpy as np
import pytest
import torch

from keraspec.impl import layers as L
from keraspec.impl.flavor import use_flavor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raises_naming import raises_naming as _raises  # noqa: E402




# -- bad configs: the parameter and the rule ----------------------------------------------------------
@pytest.mark.parametrize("layer, config, exc, fragments", [
    ("LeakyReLU", {"negative_slope": -0.1}, ValueError, ("'negative_slope'", "negative_slope.min", ">= 0")),
    ("LeakyReLU", {"negative_slope": None}, TypeError, ("'negative_slope'", "negative_slope.type")),
    ("LeakyReLU", {"negative_slope": "0.3"}, TypeError, ("'negative_slope'", "negative_slope.type")),
    # Keras 3 takes the deprecated alpha as negative_slope, so it refuses a negative one too.
    ("LeakyReLU", {"alpha": -1.0}, ValueError, ("'alpha'", "'negative_slope'", "negative_slope.min")),
    ("ReLU", {"max_value": -1.0}, ValueError, ("'max_value'", "max_value.min")),
    ("ReLU", {"negative_slope": -0.5}, ValueError, ("'negative_slope'", "negative_slope.min")),
    ("ReLU", {"threshold": -0.5}, ValueError, ("'threshold'", "threshold.min")),
    ("ReLU", {"threshold": None}, TypeError, ("'threshold'", "threshold.type")),
    ("ReLU", {"negative_slope": None}, TypeError, ("'negative_slope'", "negative_slope.type")),
    ("ThresholdedReLU", {"theta": -1.0}, ValueError, ("'theta'", "theta.min")),
    ("ThresholdedReLU", {"theta": None}, TypeError, ("'theta'", "theta.type")),
    ("ELU", {"alpha": None}, TypeError, ("'alpha'", "alpha.type")),
    ("PReLU", {"shared_axes": 0}, ValueError, ("'shared_axes'", "shared_axes.min")),
    ("PReLU", {"shared_axes": [1, -1]}, ValueError, ("'shared_axes'", "shared_axes.min")),
    ("PReLU", {"shared_axes": [1.5]}, TypeError, ("'shared_axes'", "shared_axes.type")),
    ("PReLU", {"alpha_initializer": "no_such_initializer"}, ValueError, ("no_such_initializer",)),
    ("Softmax", {"axis": "last"}, TypeError, ("'axis'", "axis.type")),
    ("Softmax", {"axis": [1, 2.0]}, TypeError, ("'axis'", "axis.type")),
    # robust_masking is tf_keras's; Keras 3's Softmax does not take it.
    ("Softmax", {"robust_masking": True}, TypeError, ("robust_masking",)),
    ("LeakyReLU", {"slope": 0.1}, TypeError, ("slope",)),
])
def test_bad_config_names_parameter_and_rule(layer, config, exc, fragments):
    with _raises(exc, *fragments):
        getattr(L, layer)(**config)


@pytest.mark.parametrize("layer, config, exc, fragments", [
    ("ThresholdedReLU", {"theta": -0.5}, ValueError, ("'theta'", "theta.min")),
    ("Softmax", {"robust_masking": "yes"}, TypeError, ("'robust_masking'", "robust_masking.type")),
    ("ReLU", {"threshold": -1.0}, ValueError, ("'threshold'", "threshold.min")),
])
def test_bad_config_under_tf_keras(layer, config, exc, fragments):
    with use_flavor("tf_keras"), _raises(exc, *fragments):
        getattr(L, layer)(**config)


def test_prelu_shared_axis_beyond_the_input_is_refused_at_build():
    layer = L.PReLU(shared_axes=[1, 3])
    with _raises(ValueError, "shared_axes", "shared_axes_in_input"):
        layer.build((None, 4, 5))


def test_prelu_refuses_an_input_alpha_does_not_fit():
    shared = L.PReLU(shared_axes=1)
    shared.build((None, 4, 5))
    with _raises(ValueError, "PReLU", "(2, 4, 6)"):
        shared(torch.zeros(2, 4, 6))  # the unshared axis 2 is fixed once built
    assert shared(torch.zeros(2, 7, 5)).shape == (2, 7, 5)  # the shared axis 1 is free
    plain = L.PReLU()
    plain.build((None, 4, 5))
    with _raises(ValueError, "PReLU", "(2, 4, 6)"):
        plain(torch.zeros(2, 4, 6))  # no shared axes: the input must broadcast with alpha
    with _raises(ValueError, "ndim=3"):
        plain(torch.zeros(2, 4, 5, 1))


def test_softmax_refuses_an_axis_or_mask_that_does_not_fit():
    x = torch.zeros(2, 3, 4)
    with _raises(ValueError, "axis 3", "(2, 3, 4)"):
        L.Softmax(axis=3)(x)
    with _raises(ValueError, "axis -4", "(2, 3, 4)"):
        L.Softmax(axis=[1, -4])(x)
    with _raises(ValueError, "mask", "(2, 3)"):
        L.Softmax()(x, mask=torch.ones(2, 3, dtype=torch.bool))  # (batch, time): not broadcastable
    with use_flavor("tf_keras"), _raises(ValueError, "1D", "(3,)"):
        L.Softmax()(torch.zeros(3))
    assert L.Softmax()(torch.zeros(3)).shape == (3,)  # Keras 3 takes a rank-1 input


# -- each flavour's semantics ------------------------------------------------------------------------
def test_leaky_relu_defaults_and_names_per_flavour():
    x = torch.tensor([-2.0, 0.0, 3.0])
    keras3 = L.LeakyReLU()
    assert keras3.get_config()["negative_slope"] == 0.3 and "alpha" not in keras3.get_config()
    assert torch.equal(keras3(x), torch.tensor([-2.0 * np.float32(0.3), 0.0, 3.0]))  # not the 0.2 of "leaky_relu"
    with pytest.warns(UserWarning, match="alpha"):
        assert L.LeakyReLU(alpha=0.5).get_config()["negative_slope"] == 0.5
    with use_flavor("tf_keras"):
        tf_keras = L.LeakyReLU()
        config = tf_keras.get_config()
        assert config["alpha"] == 0.3 and "negative_slope" not in config
        negative = L.LeakyReLU(alpha=-0.5)  # tf_keras checks only for None
        assert torch.equal(negative(x), torch.tensor([1.0, 0.0, 3.0]))
        assert type(negative).from_config(negative.get_config()).alpha == -0.5


def test_float64_arguments_are_float32_in_tf_keras():
    x = torch.tensor([-1.0], dtype=torch.float64)
    f32 = float(np.float32(0.3))
    elu = math.exp(-1.0) - 1.0
    keras3 = L.ELU(alpha=0.3, dtype="float64")(x).item()
    with use_flavor("tf_keras"):
        tf_keras = L.ELU(alpha=0.3, dtype="float64")(x).item()
    assert keras3 == pytest.approx(0.3 * elu, rel=1e-15) and tf_keras == pytest.approx(f32 * elu, rel=1e-15)
    assert keras3 != tf_keras  # 0.3 against float32(0.3): ~1e-8 apart, far above float64 rounding
    with use_flavor("tf_keras"):
        assert L.ReLU(negative_slope=0.3, max_value=1.0, dtype="float64")(x).item() == -f32
    assert L.ReLU(negative_slope=0.3, max_value=1.0, dtype="float64")(x).item() == -0.3
    # The leaky_relu op's slope is a float32 attribute in both oracles.
    assert L.LeakyReLU(negative_slope=0.3, dtype="float64")(x).item() == -f32


def test_relu_threshold_boundary_and_gradients():
    x = torch.tensor([0.5, 0.5 + 2**-20, 0.0, -1.0], requires_grad=True)
    y = L.ReLU(threshold=0.5, negative_slope=0.25)(x)
    assert y.tolist() == [0.0, 0.5 + 2**-20, -0.125, -0.375]
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.tolist() == [0.0, 1.0, 0.25, 0.25]  # zero gradient exactly at the threshold
    # With only a slope ReLU is leaky_relu, whose gradient at 0 is the slope; with a max_value it is
    # relu(x) - slope * relu(-x), whose gradient at 0 is 0.
    z = torch.zeros(1, requires_grad=True)
    assert torch.autograd.grad(L.ReLU(negative_slope=0.25)(z).sum(), z)[0].item() == 0.25
    assert torch.autograd.grad(L.ReLU(negative_slope=0.25, max_value=2.0)(z).sum(), z)[0].item() == 0.0
    assert torch.autograd.grad(L.PReLU(alpha_initializer="ones")(z.reshape(1, 1)).sum(), z)[0].item() == 0.0


def test_thresholded_relu_boundary():
    x = torch.tensor([[1.0, 1.0 + 2**-20, 0.5, -2.0]])
    assert L.ThresholdedReLU()(x).tolist() == [[0.0, 1.0 + 2**-20, 0.0, -0.0]]


def test_prelu_weight_shape_and_sharing():
    layer = L.PReLU(shared_axes=[1, 2], alpha_initializer="ones")
    layer.build((None, 4, 5, 3))
    assert layer.weight_names == ["alpha"] and [w.shape for w in layer.get_weights()] == [(1, 1, 3)]
    assert layer.get_config()["shared_axes"] in ([1, 2], (1, 2))
    assert L.PReLU(shared_axes=2).shared_axes == (2,)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_fully_masked_softmax_row_per_flavour(dtype):
    """Keras 3 zeroes masked outputs (a fully masked row is 0); tf_keras keeps them: softmax(x + L),
    uniform where x + L rounds to L, softmax(x) in float64; robust_masking gives uniform."""
    x = torch.tensor([[[1.0, 2.0, 3.0], [0.5, 0.1, -4.0]]])
    mask = torch.tensor([[[True, False, True], [False, False, False]]])
    torch_dtype = getattr(torch, dtype)
    keras3 = L.Softmax(dtype=dtype)(x, mask=mask)
    assert keras3[0, 1].tolist() == [0.0, 0.0, 0.0] and keras3[0, 0, 1].item() == 0.0
    assert keras3._keras_mask is mask
    with use_flavor("tf_keras"):
        plain = L.Softmax(dtype=dtype)(x, mask=mask)
        robust = L.Softmax(robust_masking=True, dtype=dtype)(x, mask=mask)
    uniform = torch.full((3,), 1 / 3, dtype=torch_dtype)
    want = torch.softmax(x[0, 1].to(torch_dtype), dim=0) if dtype == "float64" else uniform
    assert torch.allclose(plain[0, 1], want, rtol=1e-6 if dtype == "float64" else 1e-3)
    assert torch.allclose(robust[0, 1], uniform)
    assert plain[0, 0, 1].item() == 0.0  # exp(-1e9): the masked position of a live row vanishes anyway


def test_softmax_over_several_axes_and_config():
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    y = L.Softmax(axis=[1, 2], dtype="float64")(x)
    assert torch.allclose(y.sum(dim=(1, 2)), torch.ones(2, dtype=torch.float64))
    assert L.Softmax(axis=[1, 2]).get_config()["axis"] == [1, 2]
    assert "robust_masking" not in L.Softmax().get_config()
    with use_flavor("tf_keras"):
        assert "robust_masking" not in L.Softmax().get_config()  # tf_keras writes it only when True
        assert L.Softmax(robust_masking=True).get_config()["robust_masking"] is True
