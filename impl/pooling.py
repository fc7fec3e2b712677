"""Pooling layers: windowed max/average pooling and global pooling, one class per kind by ``rank``.

TensorFlow's 'same' pooling pads ``max((ceil(n / s) - 1) * s + k - n, 0)`` cells per axis with the
odd one after.  When that padding is symmetric it is the pooling op's own ``padding`` argument
(torch's max pooling pads with -inf, and average pooling with ``count_include_pad=False`` divides
by the real cells -- both TF's rule); only an asymmetric padding is materialised with ``F.pad``
(-inf for max; zeros for average, whose window sums are then divided by the per-window count of
real cells).  channels_last inputs are pooled through a channels-first ``movedim`` view.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .base import InputSpec, Shape
from .spatial import SpatialLayer, conv_output_length, is_symmetric, same_paddings, torch_pad_arg, window_counts

_MAX_POOL: dict[int, Callable[..., torch.Tensor]] = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL: dict[int, Callable[..., torch.Tensor]] = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


class _Pooling(SpatialLayer):
    """Windowed pooling; subclasses give the symmetric-padding op and the asymmetric fallback."""

    def __init__(
        self,
        pool_size: int | Sequence[int],
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        if self.strides is None:
            # Keras stores (and get_config reports) the effective strides.
            self.strides = self.pool_size
            self._config["strides"] = self.pool_size
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        self._validate_input(self._check_shape(input_shape))
        self.built = True

    def _pool(self, x: torch.Tensor, padding: int | tuple[int, ...]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _pool_padded(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._to_channels_first(inputs)
        if self.padding == "valid":
            y = self._pool(x, 0)
        else:
            pads = same_paddings(x.shape[2:], self.pool_size, self.strides)
            if is_symmetric(pads):
                y = self._pool(x, tuple(before for before, _ in pads))
            else:
                y = self._pool_padded(x, pads)
        return self._from_channels_first(y)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        out = tuple(
            conv_output_length(n, k, s, 1, self.padding)
            for n, k, s in zip(self._spatial(shape), self.pool_size, self.strides)
        )
        window = f"pool_size={self.pool_size}, strides={self.strides}, padding={self.padding!r}"
        return self._windowed_output_shape(shape, out, shape[self._channel_axis], window)


class _MaxPooling(_Pooling):
    def __init__(
        self,
        pool_size: int | Sequence[int] = 2,
        strides: int | Sequence[int] | None = None,
        padding: str = "valid",
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pool_size, strides, padding, data_format, **kwargs)

    def _pool(self, x: torch.Tensor, padding: int | tuple[int, ...]) -> torch.Tensor:
        y = _MAX_POOL[self.rank](_without_nan(x), self.pool_size, self.strides, padding)
        return y.clamp_min(torch.finfo(y.dtype).min)

    def _pool_padded(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
        y = _MAX_POOL[self.rank](F.pad(_without_nan(x), torch_pad_arg(pads), value=-math.inf), self.pool_size, self.strides)
        return y.clamp_min(torch.finfo(y.dtype).min)


# TensorFlow's MaxPool starts each window at the dtype's lowest finite value and takes an element
# only when it is greater: NaN is skipped, and a window of nothing but NaN and -inf gives the lowest
# finite value.  torch's max pooling propagates NaN and keeps -inf.  So NaN becomes the lowest finite
# value before pooling (only when there is one: the check reads the input, a rewrite would also write
# it) and the output is floored at it; the gradient still reaches a window's finite maximum.
def _without_nan(x: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(x, nan=torch.finfo(x.dtype).min, posinf=math.inf, neginf=-math.inf) if x.isnan().any() else x


class _AveragePooling(_Pooling):
    def _pool(self, x: torch.Tensor, padding: int | tuple[int, ...]) -> torch.Tensor:
        return _AVG_POOL[self.rank](x, self.pool_size, self.strides, padding, count_include_pad=False)

    def _pool_padded(self, x: torch.Tensor, pads: list[tuple[int, int]]) -> torch.Tensor:
        sums = self._window_sums(F.pad(x, torch_pad_arg(pads)))
        counts = torch.ones((), dtype=x.dtype, device=x.device)
        for axis, (n, k, s, (before, _)) in enumerate(zip(x.shape[2:], self.pool_size, self.strides, pads)):
            c = window_counts(n, k, s, before, sums.shape[2 + axis], device=x.device, dtype=x.dtype)
            counts = counts * c.reshape((-1,) + (1,) * (self.rank - 1 - axis))
        return sums / counts

    def _window_sums(self, x: torch.Tensor) -> torch.Tensor:
        if self.rank == 1:  # avg_pool1d has no divisor_override: pool a (.., 1, steps) image instead
            sums = F.avg_pool2d(x.unsqueeze(-2), (1, *self.pool_size), (1, *self.strides), divisor_override=1)
            return sums.squeeze(-2)
        return _AVG_POOL[self.rank](x, self.pool_size, self.strides, divisor_override=1)


class MaxPooling1D(_MaxPooling):
    rank = 1


class MaxPooling2D(_MaxPooling):
    rank = 2


class MaxPooling3D(_MaxPooling):
    rank = 3


class AveragePooling1D(_AveragePooling):
    rank = 1


class AveragePooling2D(_AveragePooling):
    rank = 2


class AveragePooling3D(_AveragePooling):
    rank = 3


# -- global pooling --------------------------------------------------------------------------------
class _GlobalPooling(SpatialLayer):
    """Reduces every spatial axis (``_reduce``), keeping them as size 1 when ``keepdims``."""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        self._check_shape(input_shape)
        self.built = True

    @property
    def _spatial_axes(self) -> tuple[int, ...]:
        first = 2 if self._channels_first else 1
        return tuple(range(first, first + self.rank))

    def _reduce(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._reduce(inputs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        channels = shape[self._channel_axis]
        spatial = (1,) * self.rank if self.keepdims else ()
        return (shape[0], channels, *spatial) if self._channels_first else (shape[0], *spatial, channels)


class _GlobalMaxPooling(_GlobalPooling):
    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=self._spatial_axes, keepdim=self.keepdims)


class _GlobalAveragePooling(_GlobalPooling):
    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self._spatial_axes, keepdim=self.keepdims)


class GlobalMaxPooling1D(_GlobalMaxPooling):
    rank = 1


class GlobalMaxPooling2D(_GlobalMaxPooling):
    rank = 2


class GlobalMaxPooling3D(_GlobalMaxPooling):
    rank = 3


class GlobalAveragePooling1D(_GlobalAveragePooling):
    """Mean over the steps; with a (batch, steps) mask, the mean over the unmasked steps only."""

    rank = 1
    supports_masking = True

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(data_format, keepdims, **kwargs)

    def call(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is None:
            return self._reduce(inputs)
        keep = mask.to(torch.bool).unsqueeze(1 if self._channels_first else 2)
        if self._tf_keras:  # tf_keras multiplies by the mask: NaN or inf at a masked step reaches the mean
            total = inputs * keep.to(inputs.dtype)
        else:  # Keras 3 selects: a masked step contributes nothing, whatever it holds
            total = torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))
        axis = self._spatial_axes
        return total.sum(dim=axis, keepdim=self.keepdims) / keep.to(inputs.dtype).sum(dim=axis, keepdim=self.keepdims)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None


class GlobalAveragePooling2D(_GlobalAveragePooling):
    rank = 2


class GlobalAveragePooling3D(_GlobalAveragePooling):
    rank = 3
