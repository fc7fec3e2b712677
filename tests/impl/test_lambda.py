"""keraspec.impl's Lambda: a torch function wrapped as a Keras layer.

Lambda has no spec entry (an oracle cannot run a torch function), so it is compared here with a
Keras Lambda whose function computes the same thing in Keras ops, on the same input: outputs,
output shapes, masks and configs.  Serialization is safe by default: a Python lambda is refused
unless the caller opts in, a named function is loaded from the caller's custom_objects only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from raises_naming import raises_naming  # noqa: E402

from keraspec.impl.lambda_layer import Lambda  # noqa: E402

RNG = np.random.default_rng(7)
X = RNG.standard_normal((3, 4, 5)).astype(np.float32)


def affine(x: torch.Tensor, scale: float = 2.0, shift: float = 1.0) -> torch.Tensor:
    return x * scale + shift


def first_half(x: torch.Tensor) -> torch.Tensor:
    return x[..., : x.shape[-1] // 2]


# (our function, its Keras 3 equivalent given the keras module, Lambda kwargs for both)
CASES = {
    "x*2+1": (lambda x: x * 2 + 1, lambda keras: (lambda x: x * 2 + 1), {}),
    "named-with-arguments": (affine, lambda keras: (lambda x, scale, shift: x * scale + shift),
                             {"arguments": {"scale": -0.5, "shift": 3.0}}),
    "reduce-mean": (lambda x: x.mean(dim=1), lambda keras: (lambda x: keras.ops.mean(x, axis=1)), {}),
    "softplus": (torch.nn.functional.softplus, lambda keras: keras.ops.softplus, {}),
    "slice-with-output-shape": (first_half, lambda keras: (lambda x: x[..., :2]), {"output_shape": (4, 2)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras3_lambda(case: str, keras3) -> None:
    ours_fn, keras_fn, kwargs = CASES[case]
    ours = Lambda(ours_fn, **kwargs)
    theirs = keras3.layers.Lambda(keras_fn(keras3), **kwargs)
    expected = np.asarray(theirs(X))
    got = ours(torch.from_numpy(X)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-6)
    # The output shape: given, or inferred with the batch (and any unknown axis) left unknown.
    assert ours.compute_output_shape((None, 4, 5)) == tuple(theirs.compute_output_shape((None, 4, 5)))


def test_float64_and_mixed_policy_cast_like_keras(keras3) -> None:
    for dtype in ("float64", "mixed_float16"):
        ours = Lambda(lambda x: x * 2 + 1, dtype=dtype)
        theirs = keras3.layers.Lambda(lambda x: x * 2 + 1, dtype=dtype)
        expected = np.asarray(theirs(X))
        got = ours(torch.from_numpy(X))
        assert str(got.dtype).removeprefix("torch.") == str(expected.dtype)
        np.testing.assert_array_equal(got.numpy(), expected)


def test_mask_function_and_input_mask(keras3, tf) -> None:
    mask = np.array([[True, True, False, True]] * 3)

    def our_mask(inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return inputs[..., 0] > 0

    ours = Lambda(lambda x: x + 1, mask=our_mask)
    theirs = keras3.layers.Lambda(lambda x: x + 1, mask=lambda inputs, mask: inputs[..., 0] > 0)
    x = torch.from_numpy(X)
    out = ours(x, mask=torch.from_numpy(mask))
    expected = np.asarray(theirs.compute_mask(tf.constant(X), tf.constant(mask)))
    np.testing.assert_array_equal(out._keras_mask.numpy(), expected)
    # Without a mask argument Keras's Lambda drops the input mask.
    plain = Lambda(lambda x: x + 1)
    assert getattr(plain(x, mask=torch.from_numpy(mask)), "_keras_mask", None) is None
    assert keras3.layers.Lambda(lambda x: x + 1).compute_mask(tf.constant(X), tf.constant(mask)) is None


def test_function_receives_mask_and_training_when_it_asks() -> None:
    seen = {}

    def fn(x: torch.Tensor, mask=None, training=None) -> torch.Tensor:
        seen.update(mask=mask, training=training)
        return x

    mask = torch.ones(3, 4, dtype=torch.bool)
    Lambda(fn)(torch.from_numpy(X), training=True, mask=mask)
    assert seen["training"] is True and seen["mask"] is mask


def test_config_of_a_named_function_matches_keras3(keras3) -> None:
    ours = Lambda(affine, output_shape=(4, 5), arguments={"scale": 3.0}, name="lam")
    theirs = keras3.layers.Lambda(affine, output_shape=(4, 5), arguments={"scale": 3.0}, name="lam")
    assert ours.get_config() == theirs.get_config()


def test_named_function_round_trips_through_custom_objects_only() -> None:
    layer = Lambda(affine, arguments={"scale": 3.0})
    config = layer.get_config()
    with raises_naming(ValueError, "Lambda", "affine", "custom_objects"):
        Lambda.from_config(config)
    clone = Lambda.from_config(config, custom_objects={"affine": affine})
    x = torch.from_numpy(X)
    torch.testing.assert_close(clone(x), layer(x), rtol=0, atol=0)
    assert clone.get_config() == config


def test_python_lambda_is_refused_unless_opted_in() -> None:
    layer = Lambda(lambda x: x * 2 + 1, name="double")
    with raises_naming(ValueError, "Lambda 'double'", "bytecode", "unsafe_bytecode=True"):
        layer.get_config()
    config = layer.get_config(unsafe_bytecode=True)
    assert config["function"]["class_name"] == "__lambda__"
    with raises_naming(ValueError, "Lambda 'double'", "safe_mode=False"):
        Lambda.from_config(config)
    clone = Lambda.from_config(config, safe_mode=False)
    x = torch.from_numpy(X)
    torch.testing.assert_close(clone(x), layer(x), rtol=0, atol=0)


def test_keras3_bytecode_config_loads_only_with_safe_mode_false(keras3) -> None:
    """A config Keras 3 wrote for a Python lambda has the same form: refused, then loaded on opt-in."""
    config = keras3.layers.Lambda(lambda x: x * 2 + 1, name="k").get_config()
    with raises_naming(ValueError, "safe_mode=False"):
        Lambda.from_config(config)
    clone = Lambda.from_config(config, safe_mode=False)
    torch.testing.assert_close(clone(torch.from_numpy(X)), torch.from_numpy(X * 2 + 1))


def test_output_shape_function_and_inference() -> None:
    layer = Lambda(lambda x: torch.cat([x, x], dim=-1), output_shape=lambda s: (*s[:-1], 2 * s[-1]))
    assert layer.compute_output_shape((None, 4, 5)) == (None, 4, 10)
    inferred = Lambda(lambda x: x.reshape(x.shape[0], -1))
    assert inferred.compute_output_shape((None, 4, 5)) == (None, 20)
    assert inferred.compute_output_shape((2, None, 5)) == (2, None)


def test_bad_arguments_are_named() -> None:
    with raises_naming(TypeError, "Lambda", "function"):
        Lambda(3)
    with raises_naming(TypeError, "Lambda", "output_shape"):
        Lambda(affine, output_shape="4")
    with raises_naming(TypeError, "Lambda", "arguments"):
        Lambda(affine, arguments=[1, 2])
    broken = Lambda(lambda x: x.no_such_method())
    with raises_naming(NotImplementedError, "Lambda", "output_shape", "(None, 4)"):
        broken.compute_output_shape((None, 4))
