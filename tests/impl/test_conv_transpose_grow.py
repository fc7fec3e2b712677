"""A transposed convolution whose output needs growing past torch's result (kernel smaller than the
stride).  torch 2.13's CPU (oneDNN) weight gradient of a 1x1 conv_transpose2d with
``output_padding == stride - 1`` on a channels_last input (what the layer's ``movedim`` gives), with a
batch > 1 and two or more threads, corrupts the heap: the process crashes or hangs, or the kernel
gradient comes back wrong (bench/repro/torch_conv_transpose_output_padding.py reproduces it with
torch alone).  keraspec.impl therefore grows a 1x1 kernel's output by padding instead of by the op's
``output_padding``.  The expected gradients are worked out by hand: with a 1x1 kernel and strides s,
output cell (s_h i, s_w j) is x[i, j] * kernel + bias and every other cell is the bias alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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


# The layer in the configuration that crashes torch's own output_padding path (batch 3, channels_last,
# strides (3, 1): output_padding (2, 0)), run in a child process with two threads so that a crash,
# a hang or a wrong gradient fails this test instead of the test session.
_CHILD = textwrap.dedent("""
    import torch
    from keraspec.impl.layers import Conv2DTranspose

    torch.set_num_threads(2)
    worst = 0.0
    for seed in range(20):
        torch.manual_seed(seed)
        layer = Conv2DTranspose(5, 1, strides=(3, 1))
        x = torch.randn(3, 5, 4, 2)
        y = layer(x)
        assert tuple(y.shape) == (3, 15, 4, 5), y.shape
        cotangent = torch.randn_like(y)
        (y * cotangent).sum().backward()
        want = torch.einsum("bijc,bijf->cf", x.double(), cotangent[:, 0::3, :, :].double())
        got = layer.weight_to_keras(layer.kernel, layer.kernel.grad)[0, 0].double().t()
        worst = max(worst, ((got - want).abs().max() / want.abs().max()).item())
    print(worst)
""")


def test_kernel_gradient_where_torchs_output_padding_corrupts_memory() -> None:
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"child exited {proc.returncode}: {proc.stderr[-2000:]}"
    worst = float(proc.stdout.strip().splitlines()[-1])
    tol = tolerance("float32", "cpu", "reduction", length=3 * 15 * 4, gradient=True)
    assert worst <= tol.rtol, f"kernel gradient relative error {worst:.3g} > {tol.rtol:.3g}"
