"""keraspec.impl.models without an oracle: graphs, weights, configs, masks, summary, errors.

Expected values come from the math of the layers (a Dense is x @ kernel + bias), never from
running the model under test a second way."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from keraspec.impl import layers as L
from keraspec.impl import models
from keraspec.impl.models import Input, Model, Sequential, apply, model_from_json


def _dense(units: int, name: str, **kw) -> L.Dense:
    return L.Dense(units, name=name, **kw)


def _set_known_weights(model: Model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    return weights


def test_sequential_from_input_shape_computes_the_chain():
    model = Sequential([Input((4,)), _dense(3, "a"), _dense(2, "b", activation="relu")])
    k1, b1, k2, b2 = _set_known_weights(model)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    expected = np.maximum((x @ k1 + b1) @ k2 + b2, 0)
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-6)
    assert [layer.name for layer in model.layers] == ["a", "b"]
    assert model.count_params() == 4 * 3 + 3 + 3 * 2 + 2


def test_sequential_add_pop_and_lazy_build():
    model = Sequential(name="s")
    model.add(_dense(3, "a"))
    model.add(_dense(2, "b"))
    assert model.pop().name == "b"
    out = model(torch.ones(2, 7))  # built by the first call
    assert tuple(out.shape) == (2, 3)
    assert model.input_shape == (None, 7)
    with pytest.raises(ValueError, match="unique names"):
        model.add(_dense(1, "a"))


def test_functional_multi_input_multi_output_and_shared_layer():
    a, b = Input((3,), name="a"), Input((3,), name="b")
    shared = _dense(2, "shared")
    ya, yb = apply(shared, a), apply(shared, b)
    total = apply(L.Add(name="sum"), [ya, yb])
    model = Model([a, b], [total, ya], name="m")
    kernel, bias = _set_known_weights(model)
    xa, xb = np.ones((1, 3), np.float32), np.full((1, 3), 2.0, np.float32)
    out_sum, out_a = model.predict([xa, xb])
    np.testing.assert_allclose(out_a, xa @ kernel + bias, rtol=1e-6)
    np.testing.assert_allclose(out_sum, xa @ kernel + xb @ kernel + 2 * bias, rtol=1e-5)
    assert model.get_layer("shared") is shared
    assert len(model.get_weights()) == 2  # a shared layer's weights count once
    assert model.input_names == ["a", "b"]


def test_nested_model_is_a_layer():
    inner_in = Input((4,))
    inner = Model(inner_in, apply(_dense(2, "inner_dense"), inner_in), name="inner")
    x = Input((4,))
    outer = Model(x, apply(_dense(1, "head"), apply(inner, x)), name="outer")
    k1, b1, k2, b2 = _set_known_weights(outer)
    data = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(outer.predict(data), (data @ k1 + b1) @ k2 + b2, rtol=1e-5)


def test_masks_propagate_like_keras():
    tokens = Input((5,), dtype="int32")
    emb = apply(L.Embedding(10, 3, mask_zero=True, name="emb"), tokens)
    pooled = apply(L.GlobalAveragePooling1D(name="pool"), emb)
    model = Model(tokens, pooled)
    (table,) = _set_known_weights(model)
    ids = np.array([[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]], np.int32)
    expected = np.stack([table[[1, 2]].mean(0), table[[3]].mean(0)])  # masked steps are left out
    np.testing.assert_allclose(model.predict(ids), expected, rtol=1e-6)


def test_config_and_json_round_trip_keep_structure_and_weights():
    x = Input((6,), name="x")
    h = apply(_dense(4, "h", activation="tanh"), x)
    y = apply(L.Concatenate(name="cat"), [h, x])
    model = Model(x, apply(_dense(2, "y"), y), name="rt")
    weights = _set_known_weights(model)
    clone = model_from_json(model.to_json())
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    clone.set_weights(weights)
    data = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(data), model.predict(data))
    config = json.loads(model.to_json())
    assert config["class_name"] == "Functional"
    seq = Sequential([Input((3,)), _dense(2, "d")], name="seq")
    seq_clone = model_from_json(seq.to_json())
    assert isinstance(seq_clone, Sequential) and seq_clone.input_shape == (None, 3)


def test_summary_lists_layers_shapes_and_counts():
    model = Sequential([Input((4,)), _dense(3, "a"), L.BatchNormalization(name="bn")], name="sum_me")
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "sum_me"' in text
    assert "a (Dense)" in text and "(None, 3)" in text
    assert "Total params: 27" in text  # 15 (Dense) + 12 (4 x 3 BatchNormalization weights)
    assert "Trainable params: 21" in text and "Non-trainable params: 6" in text


def test_weights_set_weights_wrong_count_is_clear():
    model = Sequential([Input((2,)), _dense(1, "a")])
    with pytest.raises(ValueError, match="expects 2 arrays, got 1"):
        model.set_weights([np.zeros((2, 1))])


def test_unknown_layer_class_and_bad_value_name_the_layer():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 3], "name": "in"}},
        {"class_name": "NoSuchLayer", "config": {"name": "mystery"}}]}}
    with pytest.raises(models.UnsupportedLayerError, match="'NoSuchLayer'.*'mystery'"):
        models.model_from_config(config)
    config["config"]["layers"][1] = {"class_name": "Dense", "config": {"name": "bad", "units": 0}}
    with pytest.raises(models.ModelConfigError, match="layer 'bad' \\(Dense\\).*units"):
        models.model_from_config(config)
    config["config"]["layers"][1] = {"class_name": "Dense", "config": {"name": "q", "units": 2, "lora_rank": 4}}
    with pytest.raises(models.ModelConfigError, match="layer 'q'.*'lora_rank' = 4"):
        models.model_from_config(config)


def test_lambda_refused_in_safe_mode():
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Lambda", "config": {"name": "lam", "function": {"class_name": "__lambda__", "config": {"code": "AAAA"}}}}]}}
    with pytest.raises(models.UnsafeConfigError, match="'lam'.*safe_mode"):
        models.model_from_config(config)
    with pytest.raises(models.ModelConfigError) as trusted:  # trusted: past the check, to the layer's own loader
        models.model_from_config(config, safe_mode=False)
    assert not isinstance(trusted.value, models.UnsafeConfigError) and "lam" in str(trusted.value)
    keras2 = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Lambda", "config": {"name": "lam2", "function": ["4wEAAAAA", None, None], "function_type": "lambda"}}]}}
    with pytest.raises(models.UnsafeConfigError, match="'lam2'"):
        models.model_from_config(keras2, flavor="tf_keras")


def test_flavor_is_recorded_and_used():
    config = json.loads(Sequential([Input((2,)), L.Activation("hard_sigmoid", name="hs")]).to_json())
    keras2 = models.model_from_config(config, flavor="tf_keras")
    keras3 = models.model_from_config(config, flavor="keras3")
    assert keras2.flavor == "tf_keras" and keras3.flavor == "keras3"
    x = torch.tensor([[1.0, -1.0]])
    np.testing.assert_allclose(keras2(x).numpy(), [[0.7, 0.3]], rtol=1e-6)  # clip(0.2 x + 0.5, 0, 1)
    np.testing.assert_allclose(keras3(x).numpy(), [[4 / 6, 2 / 6]], rtol=1e-6)  # relu6(x + 3) / 6
