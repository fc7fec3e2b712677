"""The normalization layers: a wrong config names the parameter and the rule it breaks, a wrong input
names the layer and the shapes, and each flavour's own semantics hold -- checked against formulas
written out here (numpy), or against the live oracle where the conformance suite cannot reach
(training with a mask, Keras 3's deprecated rms_scaling, tf_keras's multi-axis weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import warnings

import numpy as np
import pytest
import torch

from keraspec.impl import layers as L
from keraspec.impl.flavor import use_flavor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raises_naming import raises_naming as _raises  # noqa: E402




def _make(flavor: str, name: str, **config):
    with use_flavor(flavor):
        return getattr(L, name)(**config)


# -- bad configs: the parameter and the rule ----------------------------------------------------------
@pytest.mark.parametrize("flavor, layer, config, exc, fragments", [
    ("keras3", "BatchNormalization", {"momentum": "0.9"}, TypeError, ("'momentum'", "momentum.type")),
    ("keras3", "BatchNormalization", {"epsilon": None}, TypeError, ("'epsilon'", "epsilon.type")),
    ("keras3", "BatchNormalization", {"axis": "last"}, TypeError, ("'axis'", "axis.type")),
    # Keras 3 takes one int axis (int(axis)); a list is tf_keras's.
    ("keras3", "BatchNormalization", {"axis": [1, 2]}, TypeError, ("'axis'", "axis.type")),
    ("tf_keras", "BatchNormalization", {"axis": [1, 2.0]}, TypeError, ("'axis'", "axis.type")),
    ("keras3", "BatchNormalization", {"fused": True}, TypeError, ("fused", "unknown_argument")),
    ("keras3", "BatchNormalization", {"virtual_batch_size": 2}, TypeError, ("virtual_batch_size",)),
    ("tf_keras", "BatchNormalization", {"virtual_batch_size": 0}, ValueError,
     ("'virtual_batch_size'", "virtual_batch_size.min")),
    ("tf_keras", "BatchNormalization", {"fused": True, "renorm": True}, ValueError, ("'fused'", "renorm")),
    ("tf_keras", "BatchNormalization", {"fused": True, "synchronized": True}, ValueError, ("'fused'", "'synchronized'")),
    ("tf_keras", "BatchNormalization", {"fused": True, "axis": 2}, ValueError, ("'fused'", "axis")),
    ("tf_keras", "BatchNormalization", {"fused": True, "dtype": "float64"}, ValueError, ("'fused'", "float64")),
    ("keras3", "BatchNormalization", {"renorm": True, "renorm_clipping": {"rmax": 2.0, "rmean": 1.0}}, ValueError,
     ("'renorm_clipping'", "rmean")),
    ("keras3", "BatchNormalization", {"renorm": True, "renorm_clipping": {"rmax": 0.5, "rmin": 2.0}}, ValueError,
     ("'renorm_clipping'", "rmin")),
    ("keras3", "BatchNormalization", {"renorm": True, "renorm_clipping": {"dmax": -1.0}}, ValueError,
     ("'renorm_clipping'", "dmax")),
    ("keras3", "BatchNormalization", {"gamma_initializer": "no_such_initializer"}, ValueError, ("no_such_initializer",)),
    ("keras3", "BatchNormalization", {"center": None}, TypeError, ("'center'", "center.type")),
    ("keras3", "LayerNormalization", {"axis": 1.5}, TypeError, ("'axis'", "axis.type")),
    ("keras3", "LayerNormalization", {"scale": "no"}, TypeError, ("'scale'", "scale.type")),
    ("tf_keras", "LayerNormalization", {"rms_scaling": True}, TypeError, ("rms_scaling",)),
    ("keras3", "UnitNormalization", {"axis": "x"}, TypeError, ("'axis'", "axis.type")),
    ("keras3", "GroupNormalization", {"groups": 0}, ValueError, ("groups", "groups_nonzero")),
    ("keras3", "GroupNormalization", {"groups": -2}, ValueError, ("'groups'", "groups.min")),
    ("keras3", "GroupNormalization", {"groups": "3"}, TypeError, ("'groups'", "groups.type")),
    ("keras3", "GroupNormalization", {"axis": [1]}, TypeError, ("'axis'", "axis.type")),
    ("keras3", "RMSNormalization", {"epsilon": "1e-6"}, TypeError, ("'epsilon'", "epsilon.type")),
    ("keras3", "BatchNormalization", {"unknown": 1}, TypeError, ("unknown",)),
])
def test_bad_config_names_parameter_and_rule(flavor, layer, config, exc, fragments):
    with _raises(exc, *fragments):
        _make(flavor, layer, **config)


@pytest.mark.parametrize("flavor, layer, config, shape, fragments", [
    ("keras3", "BatchNormalization", {"axis": 3}, (None, 4, 5), ("axis", "axis_in_input", "(None, 4, 5)")),
    ("tf_keras", "BatchNormalization", {"axis": [1, -2]}, (None, 4, 5), ("axis", "axis_unique", "(None, 4, 5)")),
    ("keras3", "LayerNormalization", {"axis": -4}, (None, 4, 5), ("axis", "axis_in_input", "(None, 4, 5)")),
    ("keras3", "UnitNormalization", {"axis": [1, 3]}, (None, 4, 5), ("axis", "(None, 4, 5)")),
    ("keras3", "RMSNormalization", {"axis": 2}, (None, 4), ("axis", "(None, 4)")),
    ("keras3", "GroupNormalization", {"groups": 3}, (None, 5, 4), ("groups", "groups_divide_channels", "(None, 5, 4)")),
    ("tf_keras", "GroupNormalization", {"groups": 8}, (None, 5, 4), ("groups", "cannot be more", "(None, 5, 4)")),
    # tf_keras's fused kernel takes axis 1 or 3 of a rank-4 input only (fused=None chooses it for rank 4).
    ("tf_keras", "BatchNormalization", {"axis": -4}, (None, 3, 4, 5), ("axis", "fused", "(None, 3, 4, 5)")),
    ("keras3", "BatchNormalization", {"axis": 0}, (None, 3), ("axis", "undefined", "(None, 3)")),
])
def test_bad_axis_for_the_input_names_parameter_rule_and_shape(flavor, layer, config, shape, fragments):
    layer = _make(flavor, layer, **config)
    with _raises(ValueError, *fragments):
        layer.build(shape)


# -- wrong inputs: the layer and the shapes --------------------------------------------------------------
@pytest.mark.parametrize("flavor, layer, config, built, given", [
    ("keras3", "BatchNormalization", {}, (2, 3, 4), (2, 3, 5)),
    ("tf_keras", "BatchNormalization", {}, (2, 3, 4), (2, 3, 4, 1)),
    ("tf_keras", "BatchNormalization", {"axis": 1}, (2, 3, 4, 4), (2, 5, 4, 4)),
    ("keras3", "GroupNormalization", {"groups": 2}, (2, 3, 4), (2, 3, 6)),
    ("keras3", "LayerNormalization", {}, (2, 3, 4), (2, 3, 5)),
    ("tf_keras", "LayerNormalization", {"axis": [1, 2]}, (2, 3, 4, 5), (2, 3, 2, 5)),
    ("keras3", "RMSNormalization", {}, (2, 3, 4), (2, 3, 5)),
])
def test_wrong_input_names_layer_and_shape(flavor, layer, config, built, given):
    layer = _make(flavor, layer, **config)
    layer(torch.randn(built))
    with _raises(ValueError, layer.name, str(given)):
        layer(torch.randn(given))


def test_a_weight_of_size_one_broadcasts_as_in_keras():
    # tf_keras (and Keras 3 with a positive last axis) multiply by gamma as it is: size 1 broadcasts.
    for flavor, axis in (("tf_keras", -1), ("keras3", 2)):
        layer = _make(flavor, "LayerNormalization", axis=axis, scale=False)
        layer(torch.randn(2, 3, 1))
        assert layer(torch.randn(2, 3, 4)).shape == (2, 3, 4)
    # Keras 3 reshapes gamma to the input's sizes for axis=-1: the new size is refused.
    layer = _make("keras3", "LayerNormalization", axis=-1)
    layer(torch.randn(2, 3, 1))
    with _raises(ValueError, layer.name, "(2, 3, 4)"):
        layer(torch.randn(2, 3, 4))


# -- BatchNormalization semantics ---------------------------------------------------------------------
def _bn(flavor: str, shape, **config):
    layer = _make(flavor, "BatchNormalization", **config)
    layer.build(shape)
    return layer


def test_momentum_is_the_decay_of_the_moving_statistics():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    for flavor in ("keras3", "tf_keras"):
        layer = _bn(flavor, (None, 3), momentum=0.9)
        layer(torch.tensor(x), training=True)
        mean, var = x.mean(0), x.var(0)  # the biased variance
        np.testing.assert_allclose(layer.get_weights()[2], 0.9 * 0 + 0.1 * mean, rtol=1e-6)
        np.testing.assert_allclose(layer.get_weights()[3], 0.9 * 1 + 0.1 * var, rtol=1e-6)


def test_tf_keras_fused_moving_variance_is_unbiased():
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 4)).astype(np.float32)
    for axis, fused in ((-1, True), (1, True), (2, False)):
        n = x.size // x.shape[axis]
        layer = _bn("tf_keras", (None, 3, 3, 4), momentum=0.5, axis=axis) if fused else \
            _bn("tf_keras", (None, 3, 3, 4), momentum=0.5, axis=axis, fused=False)
        assert bool(layer._fused) is fused
        y = layer(torch.tensor(x), training=True)
        dims = tuple(i for i in range(4) if i != axis % 4)
        var = x.var(axis=dims)
        want = 0.5 + 0.5 * var * (n / (n - 1) if fused else 1.0)
        np.testing.assert_allclose(layer.get_weights()[3], want, rtol=1e-5)
        # Normalised with the biased variance either way.
        shape = [1, 1, 1, 1]
        shape[axis % 4] = x.shape[axis]
        z = (x - x.mean(axis=dims).reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-3)
        np.testing.assert_allclose(y.detach().numpy(), z, rtol=1e-4, atol=1e-5)
    # Keras 3 folds in the biased variance on the same input.
    layer = _bn("keras3", (None, 3, 3, 4), momentum=0.5)
    layer(torch.tensor(x), training=True)
    np.testing.assert_allclose(layer.get_weights()[3], 0.5 + 0.5 * x.var(axis=(0, 1, 2)), rtol=1e-5)


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
@pytest.mark.parametrize("shape", [(1, 3), (1, 1, 1, 3)])
def test_batch_of_one_in_training_has_zero_variance(flavor, shape):
    layer = _bn(flavor, (None, *shape[1:]), momentum=0.5, beta_initializer="ones")
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    y = layer(x, training=True)
    # (x - mean) = 0, then + beta; tf_keras computes x * inv + (beta - mean * inv) with inv = 1/sqrt(1e-3),
    # so the zero is a cancellation of float32 terms |x| * inv in size: a few of their ulps.
    terms = float(x.abs().max()) / np.sqrt(1e-3)
    np.testing.assert_allclose(y.detach().numpy(), np.ones(shape), rtol=0, atol=4 * np.finfo(np.float32).eps * max(terms, 1.0))
    np.testing.assert_allclose(layer.get_weights()[3], np.full(3, 0.5), atol=1e-7)  # 0.5 * 1 + 0.5 * 0


def test_synchronized_on_one_device_uses_the_cross_replica_formula():
    x = (np.random.default_rng(2).standard_normal((3, 4)) + 1000).astype(np.float32)
    for flavor in ("keras3", "tf_keras"):
        layer = _bn(flavor, (None, 4), synchronized=True, momentum=0.0)
        layer(torch.tensor(x), training=True)
        e_x, e_x2 = x.sum(0) / np.float32(3), (x * x).sum(0) / np.float32(3)
        want = np.maximum(e_x2 - e_x * e_x, 0)  # float32, as TensorFlow computes it
        np.testing.assert_allclose(layer.get_weights()[3], want, rtol=0, atol=float(np.spacing(e_x2.max())) * 4)


def test_a_frozen_batch_norm_runs_in_inference():
    x = torch.randn(4, 3)
    for flavor in ("keras3", "tf_keras"):
        layer = _bn(flavor, (None, 3), trainable=False)
        before = layer.get_weights()
        y = layer(x, training=True)
        np.testing.assert_allclose(y.detach().numpy(), x.numpy() / np.sqrt(1 + 1e-3), rtol=1e-6)
        for a, b in zip(before, layer.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_weight_names_order_and_dtypes():
    for flavor in ("keras3", "tf_keras"):
        layer = _bn(flavor, (None, 3), renorm=True)
        assert layer.weight_names == ["gamma", "beta", "moving_mean", "moving_variance", "moving_stddev",
                                      "renorm_mean", "renorm_stddev"]
        assert [p.requires_grad for p in layer.keras_weights()] == [True, True] + [False] * 5
    # tf_keras raises the weights of a float16 / bfloat16 batch norm to float32; Keras 3 keeps the dtype.
    assert {w.dtype for w in _bn("tf_keras", (None, 3), dtype="float16").get_weights()} == {np.dtype("float32")}
    assert {w.dtype for w in _bn("keras3", (None, 3), dtype="float16").get_weights()} == {np.dtype("float16")}
    assert _bn("tf_keras", (None, 3), dtype="mixed_float16")(torch.randn(2, 3)).dtype == torch.float16


def test_tf_keras_multi_axis_and_virtual_batch_weights():
    layer = _bn("tf_keras", (None, 4, 5, 6), axis=[1, 3])
    assert [w.shape for w in layer.get_weights()] == [(1, 4, 1, 6)] * 4
    layer = _bn("tf_keras", (None, 6), virtual_batch_size=1)
    assert [w.shape for w in layer.get_weights()] == [(1, 1, 6)] * 4
    # Each sample is its own virtual batch: the statistics are its own (one element: variance 0).
    x = torch.randn(3, 6)
    np.testing.assert_allclose(layer(x, training=True).detach().numpy(), np.zeros((3, 6)), atol=1e-6)


def test_renorm_starts_from_the_square_root_of_the_variance_initializer():
    layer = _bn("keras3", (None, 3), renorm=True, moving_variance_initializer="ones")
    np.testing.assert_array_equal(layer.get_weights()[4], np.ones(3))
    np.testing.assert_array_equal(layer.get_weights()[6], np.ones(3))
    assert layer.get_config()["renorm_clipping"] == {}  # both oracles report `renorm_clipping or {}`


def test_renorm_clips_the_correction():
    # renorm_stddev 1 and renorm_mean 0 at the start: r = batch_std, d = batch_mean, clipped.
    x = (np.random.default_rng(3).standard_normal((8, 2)) * 5 + 3).astype(np.float32)
    layer = _bn("keras3", (None, 2), renorm=True, renorm_clipping={"rmax": 1.5, "dmax": 0.5}, epsilon=0.0)
    y = layer(torch.tensor(x), training=True).detach().numpy()
    mean, std = x.mean(0), x.std(0)
    r, d = np.minimum(std, 1.5), np.clip(mean, -0.5, 0.5)
    np.testing.assert_allclose(y, (x - mean) / std * r + d, rtol=1e-5, atol=1e-5)


# -- masks in training: against the oracles, which the conformance suite runs in inference only ------
@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_masked_training_statistics_match_the_oracle(flavor, oracle):
    mod = oracle(flavor)
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)
    mask = rng.random((3, 5)) > 0.4
    theirs = mod.layers.BatchNormalization(momentum=0.5)
    t = tf.constant(x)
    y_theirs = np.asarray(theirs(t, training=True, mask=tf.constant(mask)))
    ours = _bn(flavor, (None, 5, 4), momentum=0.5)
    y_ours = ours(torch.tensor(x), training=True, mask=torch.tensor(mask)).detach().numpy()
    np.testing.assert_allclose(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # ... and the statistics are the masked ones.
    w = mask[..., None].astype(np.float64)
    masked_mean = (x * w).sum((0, 1)) / w.sum((0, 1))
    np.testing.assert_allclose(ours.get_weights()[2], 0.5 * masked_mean, rtol=1e-5)


def test_tf_keras_fused_path_ignores_the_mask():
    x = torch.randn(2, 3, 3, 4)
    mask = torch.rand(2, 3, 3) > 0.5
    a = _bn("tf_keras", (None, 3, 3, 4))
    b = _bn("tf_keras", (None, 3, 3, 4))
    np.testing.assert_array_equal(a(x, training=True, mask=mask).detach().numpy(), b(x, training=True).detach().numpy())


def test_tf_keras_group_norm_takes_masked_statistics():
    x = np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32)
    mask = np.random.default_rng(6).random((2, 3, 4)) > 0.3
    layer = _make("tf_keras", "GroupNormalization", groups=1, center=False, scale=False, epsilon=0.0)
    y = layer(torch.tensor(x), mask=torch.tensor(mask)).detach().numpy()
    w = mask.astype(np.float64)
    mean = (x * w).sum((1, 2), keepdims=True) / w.sum((1, 2), keepdims=True)
    var = (w * (x - mean) ** 2).sum((1, 2), keepdims=True) / w.sum((1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var), rtol=1e-4, atol=1e-5)
    # Keras 3 ignores the mask.
    layer = _make("keras3", "GroupNormalization", groups=1, center=False, scale=False, epsilon=0.0)
    np.testing.assert_allclose(layer(torch.tensor(x), mask=torch.tensor(mask)).detach().numpy(),
                               (x - x.mean((1, 2), keepdims=True)) / x.std((1, 2), keepdims=True), rtol=1e-4, atol=1e-5)


# -- LayerNormalization, UnitNormalization, RMSNormalization -------------------------------------------
def test_layer_norm_over_several_axes():
    x = np.random.default_rng(7).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for flavor in ("keras3", "tf_keras"):
        layer = _make(flavor, "LayerNormalization", axis=[1, 2], epsilon=1e-6)
        y = layer(torch.tensor(x)).detach().numpy()
        mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
        np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-6), rtol=1e-4, atol=1e-5)
        assert layer.get_weights()[0].shape == (3, 4)


def test_keras3_rms_scaling_matches_the_oracle(oracle):
    keras = oracle("keras3")
    x = np.random.default_rng(8).standard_normal((2, 3, 4)).astype(np.float32) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = keras.layers.LayerNormalization(rms_scaling=True)
        ours = _make("keras3", "LayerNormalization", rms_scaling=True)
    theirs.build((None, 3, 4))
    ours.build((None, 3, 4))
    gamma = np.random.default_rng(9).uniform(-1, 1, 4).astype(np.float32)
    theirs.set_weights([gamma])
    ours.set_weights([gamma])
    assert ours.weight_names == ["gamma"]
    np.testing.assert_allclose(ours(torch.tensor(x)).detach().numpy(), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    assert ours.get_config()["rms_scaling"] is True


def test_unit_norm_of_a_zero_row():
    x = torch.zeros(1, 2, 3)
    assert torch.equal(_make("keras3", "UnitNormalization")(x), x)  # x * min(rsqrt(0), 1e12) = 0
    assert torch.equal(_make("tf_keras", "UnitNormalization")(x), x)  # x * rsqrt(max(0, 1e-12)) = 0
    # In float16 tf_keras's 1e-12 rounds to 0: 0 * rsqrt(0) = 0 * inf is NaN.
    assert torch.isnan(_make("tf_keras", "UnitNormalization", dtype="float16")(x)).all()
    # ... and Keras 3's 1 / 1e-12 to inf: min(inf, inf) * 0 is NaN too.
    assert torch.isnan(_make("keras3", "UnitNormalization", dtype="float16")(x)).all()


def test_rms_norm_reshapes_the_scale_onto_a_non_trailing_axis():
    # Keras 3 multiplies by the scale as it is (right for trailing axes only); ours puts it on its axis.
    x = np.random.default_rng(10).standard_normal((2, 3, 4)).astype(np.float32)
    layer = _make("keras3", "RMSNormalization", axis=1, epsilon=0.0)
    layer.build((None, 3, 4))
    scale = np.array([1.0, 2.0, 3.0], np.float32)
    layer.set_weights([scale])
    want = x / np.sqrt((x ** 2).mean(1, keepdims=True)) * scale.reshape(1, 3, 1)
    np.testing.assert_allclose(layer(torch.tensor(x)).detach().numpy(), want, rtol=1e-5)


def test_gradients_of_rsqrt_follow_tensorflow_at_a_zero_sum():
    # TensorFlow's Rsqrt gradient is 0 where the incoming gradient is 0 (no 0 * inf = NaN): the
    # gradient of Keras 3's UnitNormalization at a zero row is min(rsqrt(0), 1e12) = 1e12.
    x = torch.zeros(1, 3, requires_grad=True)
    _make("keras3", "UnitNormalization")(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((1, 3), 1e12), rtol=1e-6)


def test_config_round_trip_and_flavour_parameters():
    for flavor in ("keras3", "tf_keras"):
        layer = _make(flavor, "BatchNormalization", axis=1, momentum=0.5)
        config = layer.get_config()
        assert ("fused" in config) == (flavor == "tf_keras")
        with use_flavor(flavor):
            again = type(layer).from_config(config)
        assert again.get_config() == config


@pytest.mark.parametrize("config, shape", [
    ({"axis": [1, 3]}, (2, 3, 4, 5)),  # weights of the input's rank, (1, 3, 1, 5)
    ({"axis": [-2, -1], "momentum": 0.5}, (3, 4, 5)),
    ({"virtual_batch_size": 2, "momentum": 0.5}, (4, 3)),  # samples 0, 2 and 1, 3 form the virtual batches
    ({"virtual_batch_size": 2, "axis": 1}, (4, 3, 2)),
    ({"fused": True, "axis": 1, "momentum": 0.0}, (2, 3, 2, 2)),
    ({"renorm": True, "renorm_clipping": {"rmax": 1.2, "rmin": 0.9, "dmax": 0.1}, "renorm_momentum": 0.5}, (6, 4)),
])
def test_tf_keras_configs_the_suite_does_not_draw_match_the_oracle(config, shape, oracle):
    """tf_keras's list axes of two or more axes and virtual batches that do not divide every drawn batch
    (the spec draws neither, see its axis and virtual_batch_size notes), against the live oracle."""
    tf_keras = oracle("tf_keras")
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(np.float32)
    theirs = tf_keras.layers.BatchNormalization(**config)
    theirs.build((None, *shape[1:]))
    weights = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours = _bn("tf_keras", (None, *shape[1:]), **config)
    ours.set_weights(weights)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    for training in (False, True):
        np.testing.assert_allclose(ours(torch.tensor(x), training=training).detach().numpy(),
                                   np.asarray(theirs(x, training=training)), rtol=2e-5, atol=2e-6)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
