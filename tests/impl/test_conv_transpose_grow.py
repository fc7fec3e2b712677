"""A transposed convolution whose output needs growing past torch's result (kernel smaller than the
stride): torch 2.13's CPU backward of a 1x1 conv_transpose2d with output_padding returns wrong kernel
gradients, so keraspec.impl grows the output by padding there.  The expected gradient is worked out
by hand: with a 1x1 kernel and stride 2, output cell (2i, 2j) is x[i, j] * kernel + bias and every
other cell is the bias alone."""

from __future__ import annotations

import torch

from keraspec.conformance.tolerance import tolerance
from keraspec.impl.layers import Conv2DTranspose


def test_kernel_gradient_of_a_1x1_kernel_with_grown_output() -> None:
    torch.manual_seed(0)
    layer = Conv2DTranspose(2, 1, strides=2)
    x = torch.randn(2, 5, 3, 3)
    y = layer(x)
    assert tuple(y.shape) == (2, 10, 6, 2)
    cotangent = torch.randn_like(y)
    (y * cotangent).sum().backward()
    sampled = cotangent[:, 0::2, 0::2, :]  # the cells the kernel reaches
    want_kernel = torch.einsum("bijc,bijf->cf", x.double(), sampled.double())
    got_kernel = layer.weight_to_keras(layer.kernel, layer.kernel.grad)[0, 0]  # Keras (1, 1, filters, in)
    tol = tolerance("float32", "cpu", "reduction", length=y.numel(), gradient=True)
    torch.testing.assert_close(got_kernel.double(), want_kernel.t(), rtol=tol.rtol, atol=tol.atol)
    torch.testing.assert_close(layer.bias.grad.double(), cotangent.sum(dim=(0, 1, 2)).double(), rtol=tol.rtol, atol=tol.atol)
