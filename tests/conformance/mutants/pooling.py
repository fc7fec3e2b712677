"""Mutants of the pooling layers."""

from __future__ import annotations

import torch.nn.functional as F

from keraspec.impl import pooling
from keraspec.impl.spatial import torch_pad_arg

from mutants.base import mutant


@mutant("average-pooling2d-counts-padding", layer="AveragePooling2D", sets=("fast",),
        breaks="""'same' average pooling divides by the whole window, padded cells included (torch's
        default count_include_pad=True); Keras divides by the real cells only.""",
        fails=["forward", "gradients"], passes="shapes")
class AveragePooling2DCountsPadding(pooling.AveragePooling2D):
    def _pool(self, x, padding):
        return F.avg_pool2d(x, self.pool_size, self.strides, padding)

    def _pool_padded(self, x, pads):
        return F.avg_pool2d(F.pad(x, torch_pad_arg(pads)), self.pool_size, self.strides)


@mutant("max-pooling2d-same-torch-split", layer="MaxPooling2D",
        breaks="""'same' max pooling with an odd padding total puts the extra (-inf) cell before
        (torch's split) instead of after (TensorFlow's).""",
        fails=["forward"], passes="shapes")
class MaxPooling2DSameTorchSplit(pooling.MaxPooling2D):
    def _pool_padded(self, x, pads):
        return super()._pool_padded(x, [(after, before) for before, after in pads])


@mutant("global-max-pooling2d-keepdims-ignored", layer="GlobalMaxPooling2D", sets=("fast",),
        breaks="The call ignores keepdims (compute_output_shape honours it).",
        fails=["shapes"], passes="config")
class GlobalMaxPooling2DKeepdimsIgnored(pooling.GlobalMaxPooling2D):
    def _reduce(self, x):
        return x.amax(dim=self._spatial_axes)


@mutant("global-average-pooling1d-mask-ignored", layer="GlobalAveragePooling1D", sets=("fast",),
        breaks="Averages over every step, the masked ones too (the input mask is ignored).",
        fails=["masks"], passes="forward")
class GlobalAveragePooling1DMaskIgnored(pooling.GlobalAveragePooling1D):
    def call(self, inputs, mask=None):
        return self._reduce(inputs)


@mutant("max-pooling2d-nan-propagates", layer="MaxPooling2D", sets=("fast",),
        breaks="""Max pooling with torch's NaN rule: a NaN in a window gives NaN, where TensorFlow's
        MaxPool skips it (and a window of nothing but NaN and -inf gives the lowest finite value).""",
        fails=["forward"], passes="gradients")
class MaxPooling2DNaNPropagates(pooling.MaxPooling2D):
    def _pool(self, x, padding):
        return F.max_pool2d(x, self.pool_size, self.strides, padding)
