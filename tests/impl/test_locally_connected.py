"""LocallyConnected1D/2D: what the conformance suite does not reach.

* Errors the strategies cannot draw: an unknown spatial size or channel count at build (every
  drawn input is concrete), 'causal' padding, and a once-built layer given an input whose size
  would leave its weights unchanged (the suite only feeds sizes that would resize them).
* Every implementation x data_format x padding combination against tf_keras in one go (the CI
  profile draws six cases per target, and channels_first comes up in about one draw in eight),
  with even kernels and strides, where tf_keras's own 'same' window (k // 2 cells before, not
  TensorFlow's padding) and its channels_first bias reshape show.
* Kernel constraints on the Keras-layout kernel (the optimizer-side projection), including the
  unconnected entries of implementation 2's dense kernel.
* The tf_keras flavour is used whatever flavour is in force (these layers exist only in tf_keras).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from keraspec.impl import layers as L
from keraspec.impl.flavor import use_flavor

# -- errors (no TensorFlow needed) ------------------------------------------------------------


def test_same_padding_needs_implementation_2_or_3():
    with pytest.raises(ValueError, match=r"same_needs_implementation_2_or_3.*padding, implementation"):
        L.LocallyConnected2D(2, 3, padding="same")
    L.LocallyConnected2D(2, 3, padding="same", implementation=3)  # fine


@pytest.mark.parametrize("config, rule", [
    ({"filters": 0}, "filters_positive"),
    ({"filters": -1}, "filters.min"),
    ({"implementation": 0}, "implementation.min"),
    ({"implementation": 4}, "implementation.max"),
    ({"padding": "causal", "implementation": 2}, "padding.choices"),
    ({"strides": 0}, "strides.min"),
])
def test_config_errors_name_the_rule(config, rule):
    with pytest.raises(ValueError, match=rf"\[rule: {rule};"):
        L.LocallyConnected1D(**{"filters": 2, "kernel_size": 2, **config})


@pytest.mark.parametrize("name, shape", [
    ("LocallyConnected1D", (None, None, 3)),  # unknown length
    ("LocallyConnected1D", (None, 4, None)),  # unknown channels
    ("LocallyConnected2D", (None, 4, None, 3)),
])
def test_build_needs_a_fully_defined_input(name, shape):
    layer = L.get(name)(2, 2, implementation=2)
    with pytest.raises(ValueError, match=r"input_fully_defined") as info:
        layer.build(shape)
    assert str(shape) in str(info.value)
    # compute_output_shape still propagates unknown sizes, as tf_keras's does.
    unknown = (None, None, 3) if name.endswith("1D") else (None, None, 5, 3)
    assert L.get(name)(2, 2).compute_output_shape(unknown)[1] is None


def test_valid_kernel_must_fit():
    with pytest.raises(ValueError, match=r"kernel_fits_input.*kernel_size, padding") as info:
        L.LocallyConnected2D(2, (2, 5))(torch.zeros(1, 4, 4, 1))
    assert "(1, 4, 4, 1)" in str(info.value)


def test_built_layer_refuses_another_size_even_when_the_weights_would_fit():
    # kernel 2, stride 2: lengths 4 and 5 both give 2 outputs, so the weights have the same shape;
    # tf_keras's implementation 1 would silently use the first 4 steps of a length-5 input.
    layer = L.LocallyConnected1D(3, 2, strides=2)
    layer(torch.zeros(2, 4, 1))
    with pytest.raises(ValueError, match=r"locally_connected1d.*\(2, 5, 1\)"):
        layer(torch.zeros(2, 5, 1))
    assert tuple(layer(torch.zeros(7, 4, 1)).shape) == (7, 2, 3)  # the batch size may change


# -- against tf_keras -------------------------------------------------------------------------

COMBOS = [(name, impl, fmt, pad)
          for name, impl, fmt, pad in itertools.product(("LocallyConnected1D", "LocallyConnected2D"), (1, 2, 3),
                                                        ("channels_last", "channels_first"), ("valid", "same"))
          if not (impl == 1 and pad == "same")]


def _pair(tf_keras, name, config, input_shape, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    theirs = getattr(tf_keras.layers, name)(**config, dtype=dtype)
    theirs.build((None, *input_shape[1:]))
    weights = [rng.uniform(-1.0, 1.0, w.shape).astype(dtype) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = L.get(name)(**config, dtype=dtype)
    ours.build(input_shape)
    ours.set_weights(weights)
    return ours, theirs, weights, rng.standard_normal(input_shape)


@pytest.mark.parametrize("name, implementation, data_format, padding", COMBOS)
def test_every_mode_matches_tf_keras(tf_keras, name, implementation, data_format, padding):
    rank = 1 if name.endswith("1D") else 2
    spatial, channels = (7, 6)[:rank], 3
    shape = (2, *spatial, channels) if data_format == "channels_last" else (2, channels, *spatial)
    config = {"filters": 4, "kernel_size": (4, 2)[:rank], "strides": (2, 3)[:rank], "padding": padding,
              "data_format": data_format, "implementation": implementation, "activation": "tanh",
              "kernel_regularizer": "l2"}
    ours, theirs, weights, x = _pair(tf_keras, name, config, shape)
    for got, want in zip(ours.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    y_ours = ours(torch.tensor(x)).detach().numpy()
    y_theirs = np.asarray(theirs(x))
    assert y_ours.shape == y_theirs.shape
    np.testing.assert_allclose(y_ours, y_theirs, rtol=0, atol=1e-12)
    # The l2 penalty covers every stored kernel entry (implementation 2's unconnected ones too).
    np.testing.assert_allclose([float(v) for v in ours.losses], [float(v) for v in theirs.losses], rtol=1e-12)


@pytest.mark.parametrize("implementation, constraint", [
    (2, {"class_name": "MaxNorm", "config": {"max_value": 0.5}}), (3, "non_neg"), (1, "unit_norm")])
def test_kernel_constraint_projects_the_keras_kernel(tf_keras, implementation, constraint):
    config = {"filters": 2, "kernel_size": 3, "padding": "same" if implementation > 1 else "valid",
              "implementation": implementation, "kernel_constraint": constraint}
    # float32: tf_keras's NonNeg casts its mask to floatx and fails on a float64 kernel.
    ours, theirs, weights, _ = _pair(tf_keras, "LocallyConnected1D", config, (1, 5, 2), dtype="float32")
    ours.apply_constraints()
    want = np.asarray(theirs.kernel_constraint(theirs.kernel))
    np.testing.assert_allclose(ours.get_weights()[0], want, rtol=1e-6, atol=1e-7)
    assert not np.allclose(want, weights[0])  # the projection did change the kernel


def test_tf_keras_flavour_whatever_the_flavour_in_force(tf_keras):
    with use_flavor("keras3"):  # hard_sigmoid and swish's name differ between the two Keras
        config = {"filters": 2, "kernel_size": 2, "activation": "hard_sigmoid"}
        ours, theirs, _, x = _pair(tf_keras, "LocallyConnected1D", config, (2, 5, 3))
        np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(), np.asarray(theirs(x)), rtol=0, atol=1e-12)
        assert L.LocallyConnected1D(2, 2, activation="swish").get_config()["activation"] == "swish"
