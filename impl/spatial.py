"""The base of every spatial layer and the shape arithmetic the convolution, pooling, reshaping and
locally connected layers share (TensorFlow semantics).

The functions work on one spatial axis at a time and accept ``None`` (an unknown size) where a
size is an argument, returning ``None`` for sizes that depend on it.  :class:`SpatialLayer` holds
the data_format bookkeeping (channel axis, spatial axes, channels-first views) those layers share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from keraspec.spec import SpecConfigError

from .base import Layer


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Extent of a dilated window: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def conv_output_length(size: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """Output steps of a convolution/pooling window along one axis.

    'valid': windows that fit, ``ceil((n - eff + 1) / s)`` (may be <= 0 -- callers check);
    'same' and 'causal': ``ceil(n / s)``.
    """
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    if padding == "valid":
        return -(-(size - effective_kernel(kernel, dilation) + 1) // stride)
    raise ValueError(f"unknown padding {padding!r}; expected 'valid', 'same' or 'causal'")


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'same' padding ``(before, after)`` along one axis.

    The total is what makes ``ceil(size / stride)`` windows fit; when it is odd the extra cell goes
    after.  With stride > 1 it depends on the input size (e.g. size 7, kernel 3, stride 2: (1, 1);
    size 8: (0, 1)).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - size, 0)
    return total // 2, total - total // 2


def same_paddings(
    sizes: Sequence[int], kernels: Sequence[int], strides: Sequence[int], dilations: Sequence[int] | None = None
) -> list[tuple[int, int]]:
    """:func:`same_padding` for every spatial axis."""
    dilations = dilations if dilations is not None else [1] * len(sizes)
    return [same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernels, strides, dilations)]


def torch_pad_arg(pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """``F.pad``'s flat argument (last axis first) for per-axis ``(before, after)`` pairs."""
    flat: list[int] = []
    for before, after in reversed(list(pads)):
        flat += [before, after]
    return tuple(flat)


def is_symmetric(pads: Sequence[tuple[int, int]]) -> bool:
    return all(before == after for before, after in pads)


def deconv_output_length(
    size: int | None, kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int | None:
    """Output steps of a transposed convolution along one axis (Keras semantics)."""
    if size is None:
        return None
    eff = effective_kernel(kernel, dilation)
    if output_padding is None:
        if padding == "valid":
            return size * stride + max(eff - stride, 0)
        if padding == "same":
            return size * stride
        raise ValueError(f"unknown padding {padding!r}; expected 'valid' or 'same'")
    pad = 0 if padding == "valid" else eff // 2
    return (size - 1) * stride + eff - 2 * pad + output_padding


def deconv_crop(size: int, kernel: int, stride: int, dilation: int, padding: str,
                output_padding: int | None) -> tuple[int, int]:
    """``(crop_before, crop_after)`` that turn the full transposed convolution into Keras's output.

    The full (uncropped) result of a transposed convolution has ``(size - 1) * stride + eff``
    steps; Keras's output (:func:`deconv_output_length`) is a window of it.  TensorFlow places the
    window as the forward convolution of the output would pad it: nothing before for 'valid', and
    ``max(full - out, 0) // 2`` before for 'same'.  A negative crop after means the output extends
    past the full result (output padding): those steps get no contribution (bias only).
    """
    full = (size - 1) * stride + effective_kernel(kernel, dilation)
    out = deconv_output_length(size, kernel, stride, dilation, padding, output_padding)
    assert out is not None
    before = 0 if padding == "valid" else max(full - out, 0) // 2
    return before, full - out - before


def window_counts(size: int, kernel: int, stride: int, before: int, out: int,
                  device: torch.device | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Real (non-padded) cells in each pooling window along one axis, shape ``(out,)``.

    Window ``i`` covers padded positions ``[i * stride, i * stride + kernel)``, i.e. input cells
    ``[i * stride - before, i * stride - before + kernel)`` clipped to ``[0, size)``.
    """
    start = torch.arange(out, device=device) * stride - before
    stop = start + kernel
    return (stop.clamp(max=size) - start.clamp(min=0)).to(dtype)


class SpatialLayer(Layer):
    """Helpers for layers over ``rank`` spatial axes in either data_format."""

    rank: ClassVar[int] = 0
    data_format: str

    @property
    def _channels_first(self) -> bool:
        return self.data_format == "channels_first"

    @property
    def _channel_axis(self) -> int:
        return 1 if self._channels_first else -1

    def _spatial(self, shape: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(shape[2:]) if self._channels_first else tuple(shape[1:-1])

    def _to_channels_first(self, x: torch.Tensor) -> torch.Tensor:
        return x if self._channels_first else x.movedim(-1, 1)

    def _from_channels_first(self, y: torch.Tensor) -> torch.Tensor:
        return y if self._channels_first else y.movedim(1, -1)

    def _check_shape(self, shape: Sequence[Any]) -> tuple[Any, ...]:
        """Raise the Keras-style rank error for a wrong input shape given to build/compute_output_shape."""
        shape = tuple(shape)
        if len(shape) != self.rank + 2:
            raise ValueError(
                f"Input 0 of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                f"expected ndim={self.rank + 2} ({self.data_format}), found ndim={len(shape)}. "
                f"Full shape received: {shape}"
            )
        return shape

    def _windowed_output_shape(self, shape: tuple[Any, ...], spatial_out: Sequence[Any], channels: Any,
                               window: str) -> tuple[Any, ...]:
        """The output shape from its spatial sizes and channel count, in the layer's data_format;
        an empty spatial axis is a ValueError naming the input shape and the window (``window``)."""
        if any(o is not None and o <= 0 for o in spatial_out):
            raise ValueError(f"{type(self).__name__} '{self.name}': the output would be empty for input shape "
                             f"{shape} ({window})")
        return (shape[0], channels, *spatial_out) if self._channels_first else (shape[0], *spatial_out, channels)

    def _validate_input(self, shape: tuple[Any, ...]) -> None:
        """The spec's input-stage constraints (e.g. groups divides the channels), naming the shape."""
        try:
            type(self).spec().validate_input(self._config, (None, *shape[1:]))
        except SpecConfigError as exc:
            exc.args = (f"{exc.args[0]}; input shape received: {shape}",)
            raise
