"""keraspec.impl's preprocessing layers (Rescaling, CenterCrop, Resizing, Normalization with a given
or an adapted mean and variance): the points the conformance suite does not pin down by itself -- each oracle's rounding of
the constants, errors naming what was wrong, devices and dtypes of the constants.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from raises_naming import raises_naming  # noqa: E402

from keraspec.impl.flavor import use_flavor  # noqa: E402
from keraspec.impl.preprocessing import CenterCrop, Normalization, Rescaling, Resizing  # noqa: E402

X64 = np.linspace(-3, 3, 2 * 4 * 3).reshape(2, 4, 3)


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_rescaling_float64_uses_float32_constants_like_both_oracles(flavor: str, oracle) -> None:
    """tf.cast reads a Python float through float32: a float64 layer multiplies by float32(0.1)."""
    keras = oracle(flavor)
    with use_flavor(flavor):
        ours = Rescaling([0.1, 0.2, 0.3], offset=0.3, dtype="float64")
        got = ours(torch.from_numpy(X64)).numpy()
    expected = np.asarray(keras.layers.Rescaling([0.1, 0.2, 0.3], offset=0.3, dtype="float64")(X64))
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, X64 * np.array([0.1, 0.2, 0.3]) + 0.3)  # not the float64 constants


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_normalization_constants_follow_each_oracle(flavor: str, oracle) -> None:
    """Keras 3 converts mean and variance to float32 first; tf_keras keeps them float64."""
    keras = oracle(flavor)
    with use_flavor(flavor):
        ours = Normalization(mean=0.1, variance=0.3, dtype="float64")
        got = ours(torch.from_numpy(X64)).numpy()
    expected = np.asarray(keras.layers.Normalization(mean=0.1, variance=0.3, dtype="float64")(X64))
    np.testing.assert_array_equal(got, expected)


def test_normalization_list_mean_aligns_with_the_last_kept_axis(keras3) -> None:
    mean, variance = [1.0, -1.0, 0.5, 2.0], [4.0, 1.0, 0.25, 0.0]
    ours = Normalization(axis=(1, 2), mean=mean, variance=variance, invert=True)
    theirs = keras3.layers.Normalization(axis=(1, 2), mean=mean, variance=variance, invert=True)
    x = X64.astype(np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(ours(torch.from_numpy(x)).numpy(), np.asarray(theirs(x)))
    assert ours.get_config()["axis"] == (1, 2)


def test_normalization_errors_name_the_parameters_and_shapes() -> None:
    with raises_naming(ValueError, "mean", "variance"):
        Normalization(mean=1.0)
    layer = Normalization(axis=3, mean=0.0, variance=1.0)
    with raises_naming(ValueError, "Normalization", "axis", "(2, 4, 3)"):
        layer(torch.zeros(2, 4, 3))
    layer = Normalization(mean=[0.0, 1.0], variance=[1.0, 1.0])
    with raises_naming(ValueError, "Normalization", "mean", "(2, 4, 3)"):
        layer(torch.zeros(2, 4, 3))


def test_rescaling_per_channel_length_must_fit_the_last_axis() -> None:
    with raises_naming(ValueError, "Rescaling", "scale", "(2, 4, 5)"):
        Rescaling([1.0, 2.0, 3.0])(torch.zeros(2, 4, 5))


def test_center_crop_crops_the_centre_rounding_down(keras3) -> None:
    x = np.arange(2 * 5 * 6 * 2, dtype=np.float32).reshape(2, 5, 6, 2)
    for height, width in [(3, 3), (2, 5), (5, 6)]:
        ours = CenterCrop(height, width)(torch.from_numpy(x)).numpy()
        np.testing.assert_array_equal(ours, np.asarray(keras3.layers.CenterCrop(height, width)(x)))
    first = CenterCrop(2, 2, data_format="channels_first")(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_array_equal(first, np.asarray(keras3.layers.CenterCrop(2, 2, data_format="channels_first")(
        x.transpose(0, 3, 1, 2))))


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_center_crop_of_a_smaller_image_resizes_like_keras(flavor: str, oracle) -> None:
    """Keras's smart_resize: the largest central window of the target's aspect ratio, bilinear;
    Keras 3 returns float32 whatever the dtype, tf_keras the compute dtype."""
    keras = oracle(flavor)
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 2)).astype(np.float16)
    with use_flavor(flavor):
        got = CenterCrop(4, 4, dtype="float16")(torch.from_numpy(x))
    want = np.asarray(keras.layers.CenterCrop(4, 4, dtype="float16")(x))
    assert got.dtype == (torch.float32 if flavor == "keras3" else torch.float16)
    np.testing.assert_array_equal(got.float().numpy(), want.astype(np.float32))


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
@pytest.mark.parametrize("method", ["bilinear", "area", "bicubic", "lanczos3", "nearest"])
def test_resizing_non_finite_cells_follow_tf(flavor: str, method: str, oracle) -> None:
    """An inf next to finite cells: 'area' with a non-integer scale has padding taps TF never sums,
    and bilinear at the image's own size is a copy in TF (no inf - inf)."""
    keras = oracle(flavor)
    x = np.random.default_rng(1).normal(size=(1, 3, 5, 1)).astype(np.float32)
    x[0, 1, 2, 0] = -np.inf
    for size in [(3, 5), (2, 3), (5, 4)]:
        with use_flavor(flavor):
            got = Resizing(*size, interpolation=method)(torch.from_numpy(x)).numpy()
        want = np.asarray(keras.layers.Resizing(*size, interpolation=method)(x))
        np.testing.assert_array_equal(got, want)


def test_resizing_keras3_saturates_half_precision(oracle) -> None:
    """Keras 3 saturates TF's float32 result to float16 (an overshoot past 65504 gives 65504);
    tf_keras casts it (inf)."""
    x = np.array([[60000.0, -60000.0], [-60000.0, 60000.0]], np.float32).reshape(1, 2, 2, 1)
    for flavor, top in (("keras3", 65504.0), ("tf_keras", np.inf)):
        with use_flavor(flavor):
            assert Resizing(5, 5, dtype="float32")(torch.from_numpy(x)).dtype == torch.float32
            got = Resizing(5, 5, interpolation="bicubic", dtype="mixed_float16")(torch.from_numpy(x)).float().numpy()
        keras = oracle(flavor)
        want = np.asarray(keras.layers.Resizing(5, 5, interpolation="bicubic", dtype="mixed_float16")(x))
        np.testing.assert_array_equal(got, want.astype(np.float32))
        assert got.max() == top


def test_resizing_errors_name_the_layer_and_parameters() -> None:
    with raises_naming(ValueError, "Resizing", "antialias"):
        Resizing(2, 2, antialias=True)
    with raises_naming(ValueError, "Resizing", "gaussian"):
        Resizing(2, 2, interpolation="gaussian")(torch.zeros(1, 2, 2, 1))
    with raises_naming(ValueError, "Resizing", "(2, 2, 1, 1, 1)"):
        Resizing(2, 2)(torch.zeros(2, 2, 1, 1, 1))
    with use_flavor("tf_keras"), raises_naming(TypeError, "Resizing", "pad_to_aspect_ratio"):
        Resizing(2, 2, pad_to_aspect_ratio=True)


def test_center_crop_under_tf_keras_has_no_data_format() -> None:
    with use_flavor("tf_keras"):
        assert "data_format" not in CenterCrop(2, 2).get_config()
        with raises_naming(TypeError, "CenterCrop", "data_format"):
            CenterCrop(2, 2, data_format="channels_first")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "mixed_float16"])
def test_constants_are_made_in_the_compute_dtype(dtype: str) -> None:
    for layer in (Rescaling(0.5, 1.0, dtype=dtype), Normalization(mean=0.5, variance=2.0, dtype=dtype)):
        out = layer(torch.ones(2, 3))
        assert out.dtype == layer._compute_dtype
        assert all(b.dtype == layer._compute_dtype for b in layer.buffers())
        assert layer.state_dict() == {}  # the constants are not state


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_constants_follow_the_layer_to_cuda() -> None:
    layer = Normalization(mean=[0.0, 1.0, 2.0], variance=[1.0, 4.0, 9.0])
    layer(torch.ones(2, 3))
    layer.to("cuda")
    out = layer(torch.ones(2, 3, device="cuda"))
    torch.testing.assert_close(out.cpu(), torch.tensor([[1.0, 0.0, -1 / 3]] * 2))


def test_adapted_normalization_state_comes_as_weights() -> None:
    """mean=None / variance=None: weights mean, variance (kept axes' shape) and count, as saved files hold them."""
    with use_flavor("keras3"):
        layer = Normalization(axis=-1)
        layer.build((None, 4, 3))
        assert layer.weight_names == ["mean", "variance", "count"]
        assert [w.dtype for w in layer.get_weights()] == [np.float32, np.float32, np.int32]
        layer.set_weights([np.array([1.0, 2.0, 3.0]), np.array([4.0, 0.0, 1.0]), np.array(5)])
        out = layer(torch.ones(2, 4, 3)).numpy()
    np.testing.assert_allclose(out[0, 0], [0.0, -1.0 / 1e-7, -2.0], rtol=1e-6)
    with use_flavor("tf_keras"):
        layer = Normalization(axis=None, dtype="mixed_float16")
        layer.build((None, 4, 3))
        # tf_keras stores them in the compute dtype, count as int64.
        assert [w.dtype for w in layer.get_weights()] == [np.float16, np.float16, np.int64]
        assert [w.shape for w in layer.get_weights()] == [(), (), ()]


def test_efficientnet_with_adapted_normalization_loads_and_matches_keras(oracle, tmp_path: Path) -> None:
    """EfficientNetB0 holds an adapted Normalization (mean=None): it loads, and its output on a random
    float32 input matches Keras 3's loading of the same file.

    Compared end to end (conformance.model_check's per-layer walk passes Dropout's recorded
    ``training`` twice; reported).  The error of a chain of layers grows with its depth, so the
    policy's ``recurrence`` class over the model's layer count is the bound."""
    keras = oracle("keras3")
    from keraspec.conformance.tolerance import compare, tolerance
    from keraspec.impl.saving import load_model

    path = tmp_path / "e.keras"
    keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None, classes=10).save(path)
    ours = load_model(path)
    theirs = keras.saving.load_model(path)
    x = np.random.default_rng(3).uniform(0.0, 255.0, (2, 32, 32, 3)).astype(np.float32)
    with use_flavor("keras3"), torch.no_grad():
        got = ours(torch.from_numpy(x), training=False).numpy()
    want = np.asarray(theirs(x, training=False))
    assert got.shape == want.shape == (2, 10)
    result = compare(got, want, tolerance("float32", op_class="recurrence", length=len(theirs.layers)))
    assert result.ok, result.detail
