"""Zero padding, cropping and upsampling of the spatial axes, one class per kind by ``rank``.

Cropping is a slice (a view, no copy).  Zero padding is one ``F.pad`` in Keras's layout.  Nearest
upsampling repeats cells with a broadcast ``expand`` + ``reshape`` (a single copy, exact for any
layout).  Bilinear upsampling follows ``tf.image.resize`` -- half-pixel centers, edge clamping,
TF's float32 tap weights and its order of operations (columns, then rows) -- in Keras's layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ._conv_shapes import SpatialLayer, torch_pad_arg
from .base import InputSpec, Shape
from .flavor import get_flavor

Pairs = tuple[tuple[int, int], ...]


class _PairsLayer(SpatialLayer):
    """A layer whose main argument is (before, after) cells per spatial axis."""

    def _pairs(self, value: Any) -> Pairs:
        # The 1D layers take one flat (before, after) pair; the others one pair per axis.
        return (tuple(value),) if self.rank == 1 else tuple(tuple(p) for p in value)


# -- zero padding ----------------------------------------------------------------------------------
class _ZeroPadding(_PairsLayer):
    """Adds ``(before, after)`` zero cells to every spatial axis."""

    def __init__(self, padding: Any = 1, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self._flavor = get_flavor()
        pads = self._pairs(self.padding)
        # F.pad takes the last axis first; channels_last inputs have the (unpadded) channels last.
        self._pad_arg = torch_pad_arg(pads) if self._channels_first else (0, 0) + torch_pad_arg(pads)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        self._check_shape(input_shape)
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.pad(inputs, self._pad_arg)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(self._check_shape(input_shape))
        first = 2 if self._channels_first else 1
        for i, (before, after) in enumerate(self._pairs(self.padding)):
            if shape[first + i] is not None:
                shape[first + i] += before + after
        return tuple(shape)


class ZeroPadding1D(_ZeroPadding):
    rank = 1

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._flavor == "tf_keras":
            config.pop("data_format")  # tf_keras's ZeroPadding1D has no data_format argument
        return config


class ZeroPadding2D(_ZeroPadding):
    rank = 2

    def __init__(self, padding: Any = (1, 1), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    rank = 3

    def __init__(self, padding: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(padding, data_format, **kwargs)


# -- cropping --------------------------------------------------------------------------------------
class _Cropping(_PairsLayer):
    """Removes ``(before, after)`` cells from every spatial axis (a view of the input)."""

    def __init__(self, cropping: Any, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        self._validate_input(self._check_shape(input_shape))
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        first = 2 if self._channels_first else 1
        index: list[slice] = [slice(None)] * inputs.dim()
        for i, (before, after) in enumerate(self._pairs(self.cropping)):
            size = inputs.shape[first + i]
            if before + after >= size:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': cropping={self.cropping} removes every cell of axis "
                    f"{first + i} of the input (shape {tuple(inputs.shape)}) "
                    "[rule: crop_fits_input; parameter(s): cropping]"
                )
            index[first + i] = slice(before, size - after)
        return inputs[tuple(index)]

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(self._check_shape(input_shape))
        first = 2 if self._channels_first else 1
        for i, (before, after) in enumerate(self._pairs(self.cropping)):
            if shape[first + i] is not None:
                shape[first + i] -= before + after
                if shape[first + i] <= 0:
                    raise ValueError(
                        f"{type(self).__name__} '{self.name}': cropping={self.cropping} removes every cell of "
                        f"axis {first + i} of input shape {tuple(input_shape)}"
                    )
        return tuple(shape)


class Cropping1D(_Cropping):
    rank = 1
    data_format: ClassVar[str] = "channels_last"  # type: ignore[misc]

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any) -> None:
        _PairsLayer.__init__(self, **kwargs)
        self._configure({"cropping": cropping})
        self.input_spec = InputSpec(ndim=3)


class Cropping2D(_Cropping):
    rank = 2

    def __init__(self, cropping: Any = ((0, 0), (0, 0)), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    rank = 3

    def __init__(self, cropping: Any = ((1, 1), (1, 1), (1, 1)), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(cropping, data_format, **kwargs)


# -- upsampling ------------------------------------------------------------------------------------
def _repeat_cells(x: torch.Tensor, axes: Sequence[int], factors: Sequence[int]) -> torch.Tensor:
    """Repeat every cell of ``axes`` ``factors`` times (nearest upsampling) with one copy."""
    view, grown, out = [], [], []
    for axis, n in enumerate(x.shape):
        view.append(n)
        grown.append(n)
        out.append(n)
        if axis in axes:
            f = factors[list(axes).index(axis)]
            view.append(1)
            grown.append(f)
            out[-1] = n * f
    return x.reshape(view).expand(grown).reshape(out)


def _half_pixel_taps(size: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF's half-pixel bilinear taps along one axis: (lower index, upper index, weight of upper).

    Computed in float32 exactly as ``tf.image.resize`` does (``(i + 0.5) * (n / out) - 0.5``,
    indices clamped to the axis), so that the weights are bit-identical to the oracle's.
    """
    out = size * factor
    scale = np.float32(size) / np.float32(out)
    src = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(src), size - 1).astype(np.int64)
    return lower, upper, (src - floor).astype(np.float32)


def _lerp_axis(x: torch.Tensor, axis: int, factor: int) -> torch.Tensor:
    """Bilinear upsampling of one axis: ``a + (b - a) * w`` with TF's half-pixel taps."""
    lower, upper, weight = _half_pixel_taps(x.shape[axis], factor)
    a = x.index_select(axis, torch.as_tensor(lower, device=x.device))
    b = x.index_select(axis, torch.as_tensor(upper, device=x.device))
    shape = [1] * x.dim()
    shape[axis] = -1
    w = torch.as_tensor(weight, device=x.device).to(x.dtype).reshape(shape)
    return a + (b - a) * w


class _UpSampling(SpatialLayer):
    """Upsamples every spatial axis by an integer factor."""

    interpolation: str = "nearest"

    def __init__(self, size: Any, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.input_spec = InputSpec(ndim=self.rank + 2)

    @property
    def _factors(self) -> tuple[int, ...]:
        return (self.size,) if isinstance(self.size, int) else tuple(self.size)

    @property
    def _spatial_axes(self) -> tuple[int, ...]:
        first = 2 if self._channels_first else 1
        return tuple(range(first, first + self.rank))

    def build(self, input_shape: Shape) -> None:
        self._check_shape(input_shape)
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return _repeat_cells(inputs, self._spatial_axes, self._factors)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(self._check_shape(input_shape))
        for axis, f in zip(self._spatial_axes, self._factors):
            if shape[axis] is not None:
                shape[axis] *= f
        return tuple(shape)


class UpSampling1D(_UpSampling):
    rank = 1
    data_format: ClassVar[str] = "channels_last"  # type: ignore[misc]

    def __init__(self, size: int = 2, **kwargs: Any) -> None:
        SpatialLayer.__init__(self, **kwargs)
        self._configure({"size": size})
        self.input_spec = InputSpec(ndim=3)


class UpSampling2D(_UpSampling):
    """Nearest (repeat) or bilinear (``tf.image.resize``: half-pixel centers, edge clamping) upsampling."""

    rank = 2
    SUPPORTED_INTERPOLATIONS: ClassVar[tuple[str, ...]] = ("nearest", "bilinear")

    def __init__(
        self, size: Any = (2, 2), data_format: str | None = None, interpolation: str = "nearest", **kwargs: Any
    ) -> None:
        SpatialLayer.__init__(self, **kwargs)
        self._configure(locals())
        if self.interpolation not in self.SUPPORTED_INTERPOLATIONS:
            raise NotImplementedError(
                f"UpSampling2D: interpolation={interpolation!r} is valid Keras but keraspec.impl implements only "
                f"{', '.join(repr(i) for i in self.SUPPORTED_INTERPOLATIONS)}"
            )
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.interpolation == "nearest":
            return _repeat_cells(inputs, self._spatial_axes, self._factors)
        rows, cols = self._spatial_axes
        # TensorFlow's order of operations: interpolate along the columns, then between rows.
        wide = _lerp_axis(inputs, cols, self._factors[1])
        return _lerp_axis(wide, rows, self._factors[0])


class UpSampling3D(_UpSampling):
    rank = 3

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(size, data_format, **kwargs)
