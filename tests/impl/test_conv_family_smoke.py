"""Fast checks of the trickiest convolution/pooling/reshaping behaviours against both oracles (float64).

The property-based conformance suite covers every layer and parameter; these pin down the cases
that are easiest to get subtly wrong: TensorFlow's asymmetric 'same' padding with stride 2 on odd
and even sizes, where a transposed convolution's output window sits, the real-cell count of 'same'
average pooling, -inf padding in max pooling, grouped convolution, and channels_first (compared with the oracle run channels_last on transposed data,
because TensorFlow has no channels_first CPU kernels).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from keraspec import spec
from keraspec.impl import layers as L

ORACLES = ("keras3", "tf_keras")
TOL = 1e-10


def _run_pair(oracle_module, name: str, config: dict, x: np.ndarray, *, transpose_cf: bool = False):
    """(ours, oracle) outputs for the same config and the oracle's (random) weights, in float64."""
    rng = np.random.default_rng(0)
    ours = L.get(name)(**config, dtype="float64")
    cfg = dict(config)
    x_oracle = x
    activation = None
    if transpose_cf:  # oracle channels_last on transposed data; activation applied in Keras's layout
        cfg["data_format"] = "channels_last"
        activation = cfg.pop("activation", None)
        x_oracle = np.moveaxis(x, 1, -1)
    theirs = getattr(oracle_module.layers, name)(**cfg, dtype="float64")
    theirs.build((None,) + x_oracle.shape[1:])
    weights = [rng.uniform(-1.0, 1.0, size=w.shape) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.build(x.shape)
    ours.set_weights(weights)
    for got, want in zip(ours.get_weights(), weights):  # stored in torch layout, returned unchanged
        np.testing.assert_array_equal(got, want)
    y_oracle = np.asarray(theirs(x_oracle))
    if transpose_cf:
        y_oracle = np.moveaxis(y_oracle, -1, 1)
        if activation is not None:
            y_oracle = np.asarray(oracle_module.activations.get(activation)(tf_constant(y_oracle)))
    y_ours = ours(torch.tensor(x)).detach().numpy()
    return ours, theirs, y_ours, y_oracle


def tf_constant(value: np.ndarray):
    import tensorflow as tf

    return tf.constant(value)


def _assert_close(y_ours: np.ndarray, y_oracle: np.ndarray) -> None:
    assert y_ours.shape == y_oracle.shape
    assert np.max(np.abs(y_ours - y_oracle)) < TOL


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("size", [(7, 8), (8, 7), (5, 5)])
@pytest.mark.parametrize("kernel", [3, 4, (2, 5)])
def test_conv2d_same_padding_stride2_is_asymmetric(oracle, oracle_name, size, kernel):
    x = np.random.default_rng(1).standard_normal((2, *size, 3))
    config = {"filters": 4, "kernel_size": kernel, "strides": 2, "padding": "same"}
    ours, theirs, y_ours, y_oracle = _run_pair(oracle(oracle_name), "Conv2D", config, x)
    _assert_close(y_ours, y_oracle)
    assert ours.compute_output_shape((None, *size, 3)) == tuple(theirs.compute_output_shape((None, *size, 3)))


@pytest.mark.parametrize("oracle_name", ORACLES)
def test_conv1d_causal_dilated_and_none_dims(oracle, oracle_name):
    x = np.random.default_rng(2).standard_normal((2, 9, 3))
    config = {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "causal", "activation": "tanh"}
    ours, theirs, y_ours, y_oracle = _run_pair(oracle(oracle_name), "Conv1D", config, x)
    _assert_close(y_ours, y_oracle)
    assert ours.compute_output_shape((None, None, 3)) == (None, None, 2)


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name,groups,channels", [("Conv1D", 3, 6), ("Conv2D", 2, 4), ("Conv3D", 2, 2)])
def test_grouped_convolution(oracle, oracle_name, name, groups, channels):
    rank = int(name[4])
    x = np.random.default_rng(3).standard_normal((2, *(5,) * rank, channels))
    config = {"filters": 2 * groups, "kernel_size": 2, "groups": groups, "padding": "same"}
    _, _, y_ours, y_oracle = _run_pair(oracle(oracle_name), name, config, x)
    _assert_close(y_ours, y_oracle)


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("config", [
    {"kernel_size": 3, "strides": 2, "padding": "same"},                          # crop (1, 0): asymmetric
    {"kernel_size": 4, "strides": 2, "padding": "same"},                          # crop (1, 1): symmetric
    {"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1},
    {"kernel_size": (2, 4), "strides": (3, 2), "padding": "same", "output_padding": (2, 1)},
    {"kernel_size": 2, "strides": 3, "padding": "valid"},                         # stride > kernel: bias-only tail
    {"kernel_size": 3, "strides": (2, 3), "padding": "valid", "output_padding": (1, 2)},
])
def test_conv2d_transpose_output_window(oracle, oracle_name, config):
    x = np.random.default_rng(8).standard_normal((2, 4, 5, 3))
    ours, theirs, y_ours, y_oracle = _run_pair(oracle(oracle_name), "Conv2DTranspose", dict(config, filters=2), x)
    _assert_close(y_ours, y_oracle)
    assert ours.compute_output_shape((None, 4, 5, 3)) == tuple(theirs.compute_output_shape((None, 4, 5, 3)))


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name,config", [
    ("Conv2D", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "softmax"}),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}),
    ("Conv3D", {"filters": 3, "kernel_size": 2, "padding": "same"}),  # keras3 native CF Conv3D mis-adds the bias
    ("MaxPooling2D", {"pool_size": 3, "strides": 2, "padding": "same"}),
    ("AveragePooling2D", {"pool_size": 2, "padding": "same", "strides": 1}),
])
def test_channels_first_matches_transposed_oracle(oracle, oracle_name, name, config):
    rank = int(name[4]) if name.startswith("Conv") else int(name[-2])
    x = np.random.default_rng(4).standard_normal((2, 3, *(3, 5, 3)[:rank]))
    config = dict(config, data_format="channels_first")
    ours, _, y_ours, y_oracle = _run_pair(oracle(oracle_name), name, config, x, transpose_cf=True)
    _assert_close(y_ours, y_oracle)
    assert tuple(ours.compute_output_shape(x.shape)) == y_oracle.shape


@pytest.mark.parametrize("oracle_name", ORACLES)
@pytest.mark.parametrize("name,pool,strides,size", [
    ("AveragePooling2D", 3, 2, (6, 7)),  # padding (0, 1) rows, (1, 1) cols: asymmetric path
    ("AveragePooling2D", 3, 1, (4, 4)),  # symmetric path (count_include_pad=False)
    ("AveragePooling1D", 4, 3, (8,)),    # 1D asymmetric path
    ("MaxPooling2D", 2, 2, (5, 5)),      # padding (0, 1): -inf cells after
    ("MaxPooling1D", 3, 2, (6,)),
])
def test_same_pooling(oracle, oracle_name, name, pool, strides, size):
    # All-negative inputs: a zero-padded max pool (the classic bug) would output zeros at the edges.
    x = -np.abs(np.random.default_rng(5).standard_normal((2, *size, 3))) - 0.5
    config = {"pool_size": pool, "strides": strides, "padding": "same"}
    ours, theirs, y_ours, y_oracle = _run_pair(oracle(oracle_name), name, config, x)
    _assert_close(y_ours, y_oracle)
    assert (y_ours < 0).all()
    assert ours.compute_output_shape((None, *size, 3)) == tuple(theirs.compute_output_shape((None, *size, 3)))


def test_same_average_pooling_divides_by_real_cells():
    # Ones in, ones out: every window's sum equals its count of real (non-padded) cells.
    layer = L.AveragePooling2D(pool_size=3, strides=2, padding="same", dtype="float64")
    y = layer(torch.ones((1, 6, 7, 1), dtype=torch.float64))
    assert torch.equal(y, torch.ones_like(y))


@pytest.mark.parametrize("oracle_name", ORACLES)
def test_global_average_pooling_1d_with_mask(oracle, oracle_name, tf):
    x = np.random.default_rng(6).standard_normal((2, 5, 3))
    mask = np.array([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=bool)
    theirs = getattr(oracle(oracle_name).layers, "GlobalAveragePooling1D")(dtype="float64")
    want = np.asarray(theirs(tf.constant(x), mask=tf.constant(mask)))
    got = L.GlobalAveragePooling1D(dtype="float64")(torch.tensor(x), mask=torch.tensor(mask)).numpy()
    assert np.max(np.abs(got - want)) < TOL


@pytest.mark.parametrize("oracle_name", ORACLES)
def test_bilinear_upsampling_matches_tf_resize_in_float32(oracle, oracle_name):
    x = np.random.default_rng(7).standard_normal((2, 3, 5, 2)).astype(np.float32)
    theirs = getattr(oracle(oracle_name).layers, "UpSampling2D")(size=(3, 2), interpolation="bilinear")
    ours = L.UpSampling2D(size=(3, 2), interpolation="bilinear")
    np.testing.assert_array_equal(ours(torch.tensor(x)).numpy(), np.asarray(theirs(x)))


@pytest.mark.parametrize("name,config", [
    ("Conv2D", {"filters": 3, "kernel_size": (2, 3), "strides": 2, "padding": "same", "groups": 1}),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "padding": "causal", "data_format": "channels_first"}),
    ("MaxPooling3D", {"pool_size": 2}),
    ("AveragePooling1D", {"pool_size": 3, "strides": None}),
    ("GlobalMaxPooling2D", {"keepdims": True}),
    ("ZeroPadding2D", {"padding": (1, 2)}),
    ("Cropping1D", {"cropping": 2}),
    ("UpSampling2D", {"size": 3, "interpolation": "bilinear"}),
    ("Conv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2, "output_padding": 1}),
])
def test_get_config_equals_keras3(keras3, name, config):
    ours = L.get(name)(**config).get_config()
    theirs = getattr(keras3.layers, name)(**config).get_config()
    for key in ("name", "dtype"):
        ours.pop(key), theirs.pop(key)
    norm = lambda c: {k: list(v) if isinstance(v, tuple) else v for k, v in c.items()}  # noqa: E731
    assert norm(ours) == norm(theirs)


def test_errors_name_the_layer_parameters_and_shapes():
    with pytest.raises(ValueError, match=r"strides.*dilation_rate"):
        spec.lookup("Conv2D").validate({"filters": 8, "kernel_size": 3, "strides": 2, "dilation_rate": 2})
    with pytest.raises(ValueError, match=r"strides.*dilation_rate"):
        L.Conv2D(8, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"Conv2D.*groups.*\(1, 5, 5, 3\)"):
        L.Conv2D(4, 3, groups=2)(torch.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"Conv2D.*ndim=4.*ndim=3.*\(1, 5, 3\)"):
        L.Conv2D(4, 3)(torch.zeros((1, 5, 3)))
    layer = L.Conv2D(4, 3)
    layer(torch.zeros((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"conv2d.*axis -1.*size 3, found 2"):
        layer(torch.zeros((1, 5, 5, 2)))
    with pytest.raises(ValueError, match=r"padding"):
        L.Conv3D(4, 3, padding="causal")
    with pytest.raises(ValueError, match=r"output_padding.*strides"):
        L.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"pool_size"):
        L.MaxPooling2D(pool_size=4)(torch.zeros((1, 3, 5, 1)))
