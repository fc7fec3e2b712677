"""Zero padding, cropping and upsampling of the spatial axes, one class per kind by ``rank``.

Cropping is a slice (a view, no copy).  Zero padding is one ``F.pad`` in Keras's layout.  Nearest
upsampling repeats cells with a broadcast ``expand`` + ``reshape`` (a single copy, exact for any
layout).  The other UpSampling2D interpolations follow ``tf.image.resize`` (half-pixel centers, no
antialiasing) in Keras's layout, with the TF-exact per-axis taps of :mod:`keraspec.impl.resize`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .base import InputSpec, Shape
from .resize import INTERPOLATIONS, repeat_cells, resize
from .spatial import SpatialLayer, torch_pad_arg

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
    # tf_keras's ZeroPadding1D has no data_format argument: the spec's only_in leaves it out of its config.
    rank = 1


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
        return repeat_cells(inputs, self._spatial_axes, self._factors)

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
    """Upsampling of rows and columns by integer factors, as Keras resizes (``tf.image.resize``,
    half-pixel centers, no antialiasing).

    'nearest' repeats cells.  'bilinear' interpolates the two nearest cells (edge cells clamped).
    'bicubic' is Keys' cubic (a = -0.5) on 4 taps, its fraction rounded to 1/1024 as TF's table,
    with taps outside the image dropped and the rest renormalised.  'area' averages the input over
    each output cell's footprint (nearest-neighbour up to float32 rounding).  'lanczos3',
    'lanczos5', 'gaussian' (radius 1.5, sigma 0.5) and 'mitchellcubic' (radius 2) weight the cells
    within the kernel's radius, clipped to the image and renormalised.  Each is separable: the
    weights of an axis are computed once per (size, factor) in TF's float32 arithmetic and summed
    in TF's order, in the input's dtype.  'gaussian' and 'mitchellcubic' are tf_keras's only:
    Keras 3 takes them in the constructor but its resize raises, and so does this layer under the
    keras3 flavour.
    """

    rank = 2
    SUPPORTED_INTERPOLATIONS: ClassVar[tuple[str, ...]] = INTERPOLATIONS["tf_keras"]

    def __init__(
        self, size: Any = (2, 2), data_format: str | None = None, interpolation: str = "nearest", **kwargs: Any
    ) -> None:
        SpatialLayer.__init__(self, **kwargs)
        if isinstance(interpolation, str):
            interpolation = interpolation.lower()  # both Kerases lower-case it
        self._configure(locals())
        self.input_spec = InputSpec(ndim=4)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        method = self.interpolation
        if method == "nearest":
            return repeat_cells(inputs, self._spatial_axes, self._factors)
        if method not in INTERPOLATIONS[self._flavor]:
            raise ValueError(
                f"UpSampling2D '{self.name}': interpolation={method!r} is not one of Keras 3's resize methods "
                f"{INTERPOLATIONS[self._flavor]} (tf_keras has it) [parameter(s): interpolation]"
            )
        # The shared resampling (keraspec.impl.resize.resize) to size * factor: TF's order of
        # operations, and half-precision images computed in float32 with one rounding at the end.
        rows, cols = self._spatial_axes
        row_factor, col_factor = self._factors
        return resize(inputs, rows, cols, inputs.shape[rows] * row_factor, inputs.shape[cols] * col_factor, method)


class UpSampling3D(_UpSampling):
    rank = 3

    def __init__(self, size: Any = (2, 2, 2), data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(size, data_format, **kwargs)
