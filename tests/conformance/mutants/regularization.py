"""Mutants of the stochastic regularization layers."""

from __future__ import annotations


import torch

from keraspec.impl import regularization

from mutants.base import mutant


@mutant("dropout-scales-by-keep", layer="Dropout", sets=("fast",),
        breaks="""Scales the kept units by (1 - rate), the original paper's inference-time scaling,
        instead of Keras's 1 / (1 - rate) in training.""",
        fails=["stochastic"], passes="forward")
class DropoutScalesByKeep(regularization.Dropout):
    def call(self, inputs, training=False):
        out = super().call(inputs, training=training)
        return out if out is inputs else out * (1.0 - self.rate) ** 2


@mutant("dropout-noise-shape-ignored", layer="Dropout",
        breaks="""Draws one mask entry per input element whatever noise_shape says, so the draws are
        not shared along noise_shape's 1-axes.""",
        fails=["stochastic"], passes="forward")
class DropoutNoiseShapeIgnored(regularization.Dropout):
    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        return regularization._dropout(inputs, self.rate, tuple(inputs.shape), self._generator(inputs.device))


@mutant("gaussian-noise-in-inference", layer="GaussianNoise", sets=("fast",),
        breaks="""Adds the noise in inference too (a port that keys on nn.Module.training, True by
        default, instead of Keras's training argument).""",
        fails=["stochastic", "forward"], passes="shapes")
class GaussianNoiseInInference(regularization.GaussianNoise):
    def call(self, inputs, training=False):
        return super().call(inputs, training=True)


@mutant("gaussian-dropout-variance-as-stddev", layer="GaussianDropout",
        breaks="Uses rate / (1 - rate), the noise's variance, as its standard deviation.",
        fails=["stochastic"], passes="forward")
class GaussianDropoutVarianceAsStddev(regularization.GaussianDropout):
    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        noise = torch.empty_like(inputs).normal_(1.0, self.rate / (1.0 - self.rate), generator=self._generator(inputs.device))
        return inputs * noise


@mutant("gaussian-dropout-assert-rate", layer="GaussianDropout", sets=("fast",),
        breaks="Checks rate with an assert (AssertionError) where Keras raises ValueError.",
        fails=["errors:rate.min", "errors:rate.max"], passes="stochastic")
class GaussianDropoutAssertRate(regularization.GaussianDropout):
    def __init__(self, rate, seed=None, **kwargs):
        assert 0 <= rate < 1, f"rate must be in [0, 1), got {rate}"
        super().__init__(rate, seed=seed, **kwargs)


@mutant("alpha-dropout-alpha-unscaled", layer="AlphaDropout", sets=("fast",),
        breaks="""Takes SELU's alpha (1.673) for the saturation value instead of alpha * scale (1.758),
        so the dropped value and the affine correction a, b are all off.""",
        fails=["stochastic"], passes="forward")
class AlphaDropoutAlphaUnscaled(regularization.AlphaDropout):
    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        rate = float(self.rate)
        shape = tuple(inputs.shape) if self.noise_shape is None else regularization._broadcast_noise_shape(
            self, self.noise_shape, inputs)
        kept = torch.rand(shape, dtype=inputs.dtype, device=inputs.device, generator=self._generator(inputs.device)) >= rate
        alpha_p = -regularization._SELU_ALPHA
        a = ((1.0 - rate) * (1.0 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        return torch.where(kept, inputs * a + b, a * alpha_p + b)


@mutant("spatial-dropout2d-channels-last-only", layer="SpatialDropout2D",
        breaks="""Shares the draws along axes 1 and 2 whatever the data_format: a channels_first input
        gets one draw per (sample, last axis) instead of per (sample, channel).""",
        fails=["stochastic"], passes="forward")
class SpatialDropout2DChannelsLastOnly(regularization.SpatialDropout2D):
    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        size = inputs.shape
        return regularization._dropout(inputs, self.rate, (size[0], 1, 1, size[-1]), self._generator(inputs.device))


@mutant("spatial-dropout1d-drops-mask", layer="SpatialDropout1D",
        breaks="Does not pass the input mask through (supports_masking left False).",
        fails=["masks"], passes="forward")
class SpatialDropout1DDropsMask(regularization.SpatialDropout1D):
    supports_masking = False


