"""keraspec.impl.saving: Keras files in, clear errors for damaged ones.

The files are written here the way Keras writes them (zip + config.json + model.weights.h5 with
layers/<snake_case class>/vars/<i>; tf_keras's HDF5 with model_config and weight_names), and
checked against real Keras files where the oracles are installed."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from keraspec.impl import layers as L
from keraspec.impl import saving
from keraspec.impl.models import Input, Sequential, UnsupportedLayerError

RNG = np.random.default_rng(0)
KERNEL = RNG.standard_normal((4, 3)).astype(np.float32)
BIAS = RNG.standard_normal(3).astype(np.float32)


def _model() -> Sequential:
    return Sequential([Input((4,)), L.Dense(3, name="d", activation="relu")], name="tiny")


def _write_keras(path: Path, config: dict, weights: dict[str, list[np.ndarray]]) -> Path:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.create_group("layers")
        for group, values in weights.items():
            vars_group = h5.create_group(f"layers/{group}/vars")
            for i, value in enumerate(values):
                vars_group.create_dataset(str(i), data=value)
        h5.create_group("vars")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("model.weights.h5", buffer.getvalue())
    return path


def _write_h5(path: Path, config: dict, layer_weights: dict[str, dict[str, np.ndarray]], keras_version: str = "2.21.0") -> Path:
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"] = keras_version
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["model_config"] = json.dumps(config)
        group = h5.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in layer_weights]
        for layer, weights in layer_weights.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = [f"{layer}/{w}:0".encode() for w in weights]
            for w, value in weights.items():
                g.create_dataset(f"{layer}/{w}:0", data=value)
    return path


@pytest.fixture
def keras_file(tmp_path: Path) -> Path:
    return _write_keras(tmp_path / "m.keras", json.loads(_model().to_json()), {"dense": [KERNEL, BIAS]})


def test_load_keras_archive_reads_config_and_weights(keras_file: Path):
    model = saving.load_model(keras_file)
    assert model.flavor == "keras3" and [l.name for l in model.layers] == ["d"]
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), np.maximum(x @ KERNEL + BIAS, 0), rtol=1e-5, atol=1e-6)


def test_load_legacy_h5_uses_tf_keras_flavor(tmp_path: Path):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "hard_sigmoid",
                                           "batch_input_shape": [None, 4], "dtype": "float32"}}]}}
    path = _write_h5(tmp_path / "m.h5", config, {"d": {"kernel": KERNEL, "bias": BIAS}})
    model = saving.load_model(path)
    assert model.flavor == "tf_keras"
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), np.clip(0.2 * (x @ KERNEL + BIAS) + 0.5, 0, 1), rtol=1e-5, atol=1e-6)


def test_load_weights_of_both_kinds(tmp_path: Path, keras_file: Path):
    model = _model()
    saving.load_weights(model, keras_file)
    np.testing.assert_array_equal(model.get_weights()[0], KERNEL)
    model = _model()
    saving.load_weights(model, _write_h5(tmp_path / "w.h5", {"class_name": "Sequential", "config": {}},
                                         {"d": {"kernel": KERNEL, "bias": BIAS}}))
    np.testing.assert_array_equal(model.get_weights()[1], BIAS)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "no_weights", "bad_json", "bad_h5"])
def test_damaged_files_give_one_clear_error(tmp_path: Path, keras_file: Path, damage: str):
    path = tmp_path / "broken.keras"
    data = keras_file.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a model at all")
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        with zipfile.ZipFile(keras_file) as src, zipfile.ZipFile(path, "w") as dst:
            for item in src.namelist():
                content = src.read(item)
                if damage == "no_weights" and item == "model.weights.h5":
                    continue
                if damage == "bad_json" and item == "config.json":
                    content = content[:20]
                if damage == "bad_h5" and item == "model.weights.h5":
                    content = content[: len(content) // 3]
                dst.writestr(item, content)
    with pytest.raises(saving.ModelFileError) as info:
        saving.load_model(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_weight_count_mismatch_names_the_layer(tmp_path: Path):
    path = _write_keras(tmp_path / "m.keras", json.loads(_model().to_json()), {"dense": [KERNEL]})
    with pytest.raises(saving.ModelFileError, match="layer 'd' expects 2 weight"):
        saving.load_model(path)


def test_missing_layer_class_is_named(tmp_path: Path):
    config = json.loads(_model().to_json())
    config["config"]["layers"][1]["class_name"] = "TextVectorization"
    path = _write_keras(tmp_path / "m.keras", config, {})
    with pytest.raises(UnsupportedLayerError, match="'TextVectorization' \\(layer 'd'\\)"):
        saving.load_model(path)


def test_real_keras_files_load(tmp_path: Path, keras3, tf_keras):
    """A Keras 3 .keras and .weights.h5 and a tf_keras .h5, written by Keras itself."""
    k3 = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(3, activation="relu", name="d"),
                            keras3.layers.BatchNormalization(name="bn")])
    k2 = tf_keras.Sequential([tf_keras.layers.Dense(3, activation="relu", name="d", input_shape=(4,)),
                              tf_keras.layers.BatchNormalization(name="bn")])
    weights = [KERNEL, BIAS] + [RNG.uniform(0.5, 1.5, 3).astype(np.float32) for _ in range(4)]
    k3.set_weights(weights)
    k2.set_weights(weights)
    k3.save(tmp_path / "k3.keras")
    k3.save_weights(tmp_path / "k3.weights.h5")
    k2.save(tmp_path / "k2.h5")
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    for path, oracle_model in ((tmp_path / "k3.keras", k3), (tmp_path / "k2.h5", k2)):
        ours = saving.load_model(path)
        for got, want in zip(ours.get_weights(), oracle_model.get_weights()):
            np.testing.assert_array_equal(got, want)
    fresh = saving.load_model(tmp_path / "k3.keras")
    fresh.set_weights([np.zeros_like(w) for w in weights])
    saving.load_weights(fresh, tmp_path / "k3.weights.h5")
    for got, want in zip(fresh.get_weights(), weights):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("damage", ["truncate", "no_config", "no_weights_group"])
def test_damaged_h5_gives_one_clear_error(tmp_path: Path, damage: str):
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"name": "d", "units": 3, "batch_input_shape": [None, 4]}}]}}
    path = _write_h5(tmp_path / "m.h5", config, {"d": {"kernel": KERNEL, "bias": BIAS}})
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    else:
        with h5py.File(path, "a") as h5:
            if damage == "no_config":
                del h5.attrs["model_config"]
            else:
                del h5["model_weights"]
    with pytest.raises(saving.ModelFileError) as info:
        saving.load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
