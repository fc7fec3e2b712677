"""TensorFlow's elementary ops where torch's differ from them in value or gradient.

Several families compute the same ``tf.math`` op (the normalization layers, Dot with
``normalize=True``); each op is defined here once, so a fix reaches all of them.
"""

from __future__ import annotations

from typing import Any

import torch

#: The half-precision dtypes TensorFlow's CPU kernels widen to float32.
HALF_DTYPES = (torch.float16, torch.bfloat16)


def _rsqrt_value(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's Rsqrt on CPU: float32 as 1 / sqrt (Eigen's scalar path, exact for tensors shorter
    than a packet; its vectorised path is a hardware approximation refined by one Newton step, within
    an ulp of this), float16 / bfloat16 through float32, float64 correctly rounded."""
    if x.dtype in HALF_DTYPES:
        return (1.0 / torch.sqrt(x.float())).to(x.dtype)
    if x.dtype == torch.float32:
        return 1.0 / torch.sqrt(x)
    return torch.rsqrt(x)


class _Rsqrt(torch.autograd.Function):
    """``tf.math.rsqrt`` with TensorFlow's gradient: ``-0.5 * (dy * y) * (y * y)``, and 0 where the
    incoming gradient is 0 (so a 0 * inf does not turn into NaN, e.g. at a zero sum of squares)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = _rsqrt_value(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        g = (-0.5 * (dy * y)) * (y * y)
        return torch.where(dy == 0, torch.zeros((), dtype=g.dtype, device=g.device), g)


class _Sqrt(torch.autograd.Function):
    """``tf.math.sqrt`` with TensorFlow's gradient: ``0.5 * dy / y``, and 0 where ``dy`` is 0."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        y = torch.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        g = (0.5 * dy) / y
        return torch.where(dy == 0, torch.zeros((), dtype=g.dtype, device=g.device), g)


def rsqrt(x: torch.Tensor) -> torch.Tensor:
    """``tf.math.rsqrt``: TensorFlow's CPU value and its gradient (the custom function only where a
    gradient is recorded: it costs a saved tensor)."""
    if x.requires_grad and torch.is_grad_enabled():
        return _Rsqrt.apply(x)
    return _rsqrt_value(x)


def sqrt(x: torch.Tensor) -> torch.Tensor:
    """``tf.math.sqrt`` with TensorFlow's gradient."""
    if x.requires_grad and torch.is_grad_enabled():
        return _Sqrt.apply(x)
    return torch.sqrt(x)
