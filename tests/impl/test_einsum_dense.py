"""keraspec.impl's EinsumDense: shapes of every equation form against Keras 3's own analysis, the
kernel initializer's fans per flavour, and errors naming the parameter and the shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from raises_naming import raises_naming  # noqa: E402

from keraspec import spec  # noqa: E402
from keraspec.impl.einsum_dense import EinsumDense  # noqa: E402
from keraspec.impl.flavor import use_flavor  # noqa: E402

# (equation, output_shape, bias_axes, input shape)
EQUATIONS = [
    ("ab,bc->ac", 4, "c", (2, 3)),
    ("abc,cd->abd", (None, 5), "d", (2, 4, 3)),
    ("abc,cde->abde", (4, 2, 3), "de", (2, 4, 3)),
    ("abc,bcd->ad", (6,), None, (2, 4, 3)),
    ("ab,bcd->acd", (2, 3), "c", (2, 5)),
    ("...b,bc->...c", (4,), "c", (2, 3, 5)),
    ("ab...,bc->ac...", (4,), "c", (2, 3, 5, 2)),
]


@pytest.mark.parametrize("flavor", ["keras3", "tf_keras"])
@pytest.mark.parametrize("equation,output_shape,bias_axes,shape", EQUATIONS, ids=[e[0] for e in EQUATIONS])
def test_matches_the_oracles(equation, output_shape, bias_axes, shape, flavor, oracle) -> None:
    """Outputs for every equation form in both flavours (the suite's tf_keras forward cases that draw
    an activity_regularizer are xfailed, einsum-dense-activity-regularizer-tf-keras: not these)."""
    keras = oracle(flavor)
    with use_flavor(flavor):
        ours = EinsumDense(equation, output_shape, bias_axes=bias_axes, activation="tanh")
    theirs = keras.layers.EinsumDense(equation, output_shape, bias_axes=bias_axes, activation="tanh")
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    theirs.build(shape)
    ours.build(shape)
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    expected = np.asarray(theirs(x))
    np.testing.assert_allclose(ours(torch.from_numpy(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-5)
    symbolic = (None, *shape[1:])
    if flavor == "keras3":  # tf_keras returns the built shape (einsum-dense-compute-output-shape-tf-keras)
        assert ours.compute_output_shape(symbolic) == tuple(theirs.compute_output_shape(symbolic))
    # The spec's rules agree with both.
    config = {"equation": equation, "output_shape": output_shape, "bias_axes": bias_axes}
    assert spec.lookup("EinsumDense").output_shape(config, symbolic) == ours.compute_output_shape(symbolic)
    assert [s for _, s in spec.lookup("EinsumDense").weight_shapes(config, symbolic)] == [w.shape for w in weights]


def test_kernel_fans_follow_the_flavour() -> None:
    """Keras 3 gives glorot the kernel's input and output axes; tf_keras computes fans from the shape."""
    def kernel_std(flavor: str) -> float:
        with use_flavor(flavor):
            layer = EinsumDense("ab,bcd->acd", (16, 16))
            layer.build((None, 4))
        return float(layer.kernel.std())

    # keras3: fan_in 4, fan_out 256 -> limit sqrt(6 / 260); tf_keras: fans 16 * 4, 16 * 4 -> sqrt(6 / 128).
    assert kernel_std("keras3") == pytest.approx(np.sqrt(6 / 260) / np.sqrt(3), rel=0.1)
    assert kernel_std("tf_keras") == pytest.approx(np.sqrt(6 / 128) / np.sqrt(3), rel=0.1)


def test_errors_name_the_parameter_and_the_shapes() -> None:
    with raises_naming(ValueError, "equation", "ab,bc->ac"):
        EinsumDense("a,b", 3)
    with raises_naming(ValueError, "output_shape", "equation"):
        EinsumDense("abc,cd->abd", (2, 2, 2, 2, 2))
    with raises_naming(ValueError, "bias_axes"):
        EinsumDense("ab,bc->ac", 4, bias_axes="z")
    layer = EinsumDense("abc,cd->abd", (3, 5))
    with raises_naming(ValueError, "EinsumDense", "output_shape", "(2, 4, 3)"):
        layer.build((2, 4, 3))
    layer = EinsumDense("ab,bc->ac", 4)
    layer(torch.zeros(2, 3))
    with raises_naming(ValueError, "einsum_dense", "(2, 5)"):
        layer(torch.zeros(2, 5))


def test_mixed_policy_keeps_float32_weights() -> None:
    layer = EinsumDense("abc,cd->abd", (None, 5), bias_axes="d", dtype="mixed_bfloat16")
    out = layer(torch.ones(2, 3, 4))
    assert out.dtype == torch.bfloat16
    assert all(w.dtype == np.float32 for w in layer.get_weights())
    out.float().sum().backward()
    assert layer.kernel.grad is not None and layer.kernel.grad.dtype == torch.float32
