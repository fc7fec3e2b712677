"""Mutants of the reshaping layers (padding, cropping, upsampling)."""

from __future__ import annotations

import torch.nn.functional as F

from keraspec.impl import reshaping
from keraspec.impl.resize import repeat_cells

from mutants.base import mutant


@mutant("cropping2d-negative-end", layer="Cropping2D", sets=("fast",),
        breaks="""Crops with x[before:-after]: an axis cropped by 0 cells at the end becomes empty
        (-0 is 0) instead of keeping its cells.""",
        fails=["shapes", "forward"], passes="config")
class Cropping2DNegativeEnd(reshaping.Cropping2D):
    def call(self, inputs):
        first = 2 if self._channels_first else 1
        index = [slice(None)] * inputs.dim()
        for i, (before, after) in enumerate(self._pairs(self.cropping)):
            index[first + i] = slice(before, -after)
        return inputs[tuple(index)]


@mutant("upsampling2d-interpolation-ignored", layer="UpSampling2D", sets=("fast",),
        breaks="""Always repeats cells (nearest), whatever the interpolation (a port of nn.Upsample with
        its default mode).""",
        fails=["forward"], passes="shapes")
class UpSampling2DInterpolationIgnored(reshaping.UpSampling2D):
    def call(self, inputs):
        return repeat_cells(inputs, self._spatial_axes, self._factors)


@mutant("upsampling2d-align-corners", layer="UpSampling2D",
        breaks="""'bilinear' and 'bicubic' resize with F.interpolate(align_corners=True) instead of
        TensorFlow's half-pixel centers.""",
        fails=["forward"], passes="shapes")
class UpSampling2DAlignCorners(reshaping.UpSampling2D):
    def call(self, inputs):
        if self.interpolation not in ("bilinear", "bicubic"):
            return super().call(inputs)
        x = self._to_channels_first(inputs)
        y = F.interpolate(x, scale_factor=self._factors, mode=self.interpolation, align_corners=True)
        return self._from_channels_first(y)


@mutant("zero-padding2d-axes-swapped", layer="ZeroPadding2D",
        breaks="""Builds F.pad's argument first axis first (F.pad wants the last axis first): the rows'
        padding goes to the columns and the columns' to the rows.""",
        fails=["shapes", "forward"], passes="config")
class ZeroPadding2DAxesSwapped(reshaping.ZeroPadding2D):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        flat = [v for pair in self._pairs(self.padding) for v in pair]
        self._pad_arg = tuple(flat) if self._channels_first else (0, 0) + tuple(flat)


@mutant("zero-padding1d-tf-keras-data-format", layer="ZeroPadding1D",
        breaks="""Ignores the tf_keras flavour in get_config: reports Keras 3's data_format, which
        tf_keras's ZeroPadding1D does not take (tf_keras's from_config then fails on it).""",
        fails=["config@tf_keras"], passes="config@keras3")
class ZeroPadding1DTfKerasDataFormat(reshaping.ZeroPadding1D):
    def get_config(self):
        return reshaping._ZeroPadding.get_config(self)
