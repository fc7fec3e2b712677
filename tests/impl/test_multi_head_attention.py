"""keraspec.impl's MultiHeadAttention: each oracle's masking (Keras 3's fused and einsum paths, tf_keras's
additive mask), the float32-rounded scale of Keras 3, weight order, config round trips and errors that
name the layer and the shapes or parameter."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from raises_naming import raises_naming  # noqa: E402

from keraspec.impl.attention import MultiHeadAttention  # noqa: E402
from keraspec.impl.flavor import use_flavor  # noqa: E402

QUERY_MASK = np.array([[True, True, False, True], [False, False, False, False]])  # a fully masked row
VALUE_MASK = np.array([[True, False, True, True, True, True], [True, True, True, False, False, True]])


def _oracle(flavor: str, request: pytest.FixtureRequest):
    return request.getfixturevalue("keras3" if flavor == "keras3" else "tf_keras")


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
@pytest.mark.parametrize("scores", [False, True], ids=["fused", "scores"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_the_oracles_with_masks(flavor: str, scores: bool, causal: bool, dtype: str, tf, request) -> None:
    """Query and value masks (a fully masked query row: uniform in Keras 3's fused path, zeros in its
    einsum path, the additive -1e9 in tf_keras), causal masks and returned scores, three inputs."""
    keras = _oracle(flavor, request)
    rng = np.random.default_rng(0)
    q, v, k = (rng.standard_normal(s).astype(dtype) for s in ((2, 4, 5), (2, 6, 7), (2, 6, 3)))
    theirs = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=(2,), dtype=dtype)
    theirs(tf.constant(q), tf.constant(v), key=tf.constant(k))
    weights = [rng.standard_normal(w.shape).astype(dtype) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    qt, vt, kt = tf.constant(q), tf.constant(v), tf.constant(k)
    qt._keras_mask, vt._keras_mask = tf.constant(QUERY_MASK), tf.constant(VALUE_MASK)
    want = theirs(qt, vt, key=kt, return_attention_scores=scores, use_causal_mask=causal)
    with use_flavor(flavor):
        ours = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=(2,), dtype=dtype)
        ours.build([q.shape, v.shape, k.shape])
        ours.set_weights(weights)
        qq, vv, kk = torch.tensor(q), torch.tensor(v), torch.tensor(k)
        qq._keras_mask, vv._keras_mask = torch.tensor(QUERY_MASK), torch.tensor(VALUE_MASK)
        got = ours(qq, value=vv, key=kk, return_attention_scores=scores, use_causal_mask=causal)
    wants, gots = (want, got) if scores else ((want,), (got,))
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for w, g in zip(wants, gots):
        np.testing.assert_allclose(g.detach().numpy(), np.asarray(w), rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(gots[0]._keras_mask.numpy(), QUERY_MASK)


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
def test_weight_order_and_shapes(flavor: str, tf, request) -> None:
    """query, key, value, attention_output: kernel then bias each, Keras's shapes."""
    keras = _oracle(flavor, request)
    theirs = keras.layers.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=5, output_shape=4)
    theirs(tf.zeros((1, 2, 6)), tf.zeros((1, 3, 7)))
    with use_flavor(flavor):
        ours = MultiHeadAttention(num_heads=3, key_dim=2, value_dim=5, output_shape=4)
        ours.build([(1, 2, 6), (1, 3, 7)])
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    assert [w.name.split("/")[-1].split(":")[0] for w in theirs.weights] == ours.weight_names


def test_config_round_trip_tf_keras_rebuilds() -> None:
    """tf_keras's config carries the built input shapes and from_config rebuilds the layer from them."""
    with use_flavor("tf_keras"):
        layer = MultiHeadAttention(num_heads=2, key_dim=2)
        assert layer.get_config()["query_shape"] is None
        layer.build([(1, 3, 4), (1, 5, 4)])
        clone = MultiHeadAttention.from_config(layer.get_config())
    assert clone.built and [w.shape for w in clone.get_weights()] == [w.shape for w in layer.get_weights()]


def test_keras3_scale_is_float32_rounded() -> None:
    """Keras 3 tf.casts the Python scale (a float32 tensor first), tf_keras multiplies by the float."""
    with use_flavor("keras3"):
        k3 = MultiHeadAttention(num_heads=1, key_dim=3, dtype="float64")
    with use_flavor("tf_keras"):
        k2 = MultiHeadAttention(num_heads=1, key_dim=3, dtype="float64")
    assert k3._scale == float(np.float32(1 / np.sqrt(3))) and k2._scale == 1 / np.sqrt(3)


def test_errors_name_the_layer_and_shapes() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=2, name="mha")
    with raises_naming(ValueError, "mha", "(1, 3, 4)", "(1, 2, 4)"):
        layer.build([(1, 2, 4), (1, 3, 4), (1, 2, 4)])
    with raises_naming(ValueError, "mha", "use_gate"):
        MultiHeadAttention(num_heads=2, key_dim=2, use_gate=True, name="mha")
    with raises_naming(TypeError, "num_heads"):
        MultiHeadAttention(num_heads=2.0, key_dim=2)
    layer = MultiHeadAttention(num_heads=2, key_dim=2, name="mha")
    layer.build([(1, 2, 4), (1, 3, 4)])
    with raises_naming(ValueError, "mha", "set_weights expects 8"):
        layer.set_weights([])
    with raises_naming(ValueError, "mha", "(1, 2, 4)"):
        layer(torch.zeros(1, 2, 4))


@pytest.mark.parametrize("scores", [False, True], ids=["fused", "scores"])
def test_group_query_attention_matches_keras3(scores: bool, keras3, tf) -> None:
    """Two query heads per key/value head (np.repeat order), masks and a causal mask."""
    from keraspec.impl.attention import GroupQueryAttention

    rng = np.random.default_rng(1)
    q, v = (rng.standard_normal(s).astype("float32") for s in ((2, 4, 6), (2, 6, 6)))
    theirs = keras3.layers.GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2)
    theirs(tf.constant(q), tf.constant(v))
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(weights)
    qt, vt = tf.constant(q), tf.constant(v)
    qt._keras_mask, vt._keras_mask = tf.constant(QUERY_MASK), tf.constant(VALUE_MASK)
    want = theirs(qt, vt, return_attention_scores=scores, use_causal_mask=True)
    with use_flavor("keras3"):
        ours = GroupQueryAttention(head_dim=3, num_query_heads=4, num_key_value_heads=2)
        ours.build([q.shape, v.shape])
        ours.set_weights(weights)
        qq, vv = torch.tensor(q), torch.tensor(v)
        qq._keras_mask, vv._keras_mask = torch.tensor(QUERY_MASK), torch.tensor(VALUE_MASK)
        got = ours(qq, value=vv, return_attention_scores=scores, use_causal_mask=True)
    for w, g in zip(want if scores else (want,), got if scores else (got,)):
        np.testing.assert_allclose(g.detach().numpy(), np.asarray(w), rtol=1e-5, atol=1e-5)


def test_group_query_attention_heads_must_divide() -> None:
    from keraspec.impl.attention import GroupQueryAttention

    with raises_naming(ValueError, "num_query_heads", "num_key_value_heads"):
        GroupQueryAttention(head_dim=2, num_query_heads=3, num_key_value_heads=2)
