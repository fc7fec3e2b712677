"""Mutants of the advanced activation layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from keraspec.impl import advanced_activations
from keraspec.impl.base import InputSpec

from mutants.base import mutant


@mutant("leaky-relu-torch-default-slope", layer="LeakyReLU", sets=("fast",),
        breaks="""Calls F.leaky_relu(x) with torch's default slope 0.01 instead of the layer's (Keras's
        default 0.3); the config still reports the layer's slope.""",
        fails=["forward", "gradients"], passes="config")
class LeakyReLUTorchDefaultSlope(advanced_activations.LeakyReLU):
    def call(self, inputs):
        return F.leaky_relu(inputs)


@mutant("softmax-ignores-mask", layer="Softmax", sets=("fast",),
        breaks="""Ignores the mask: masked positions keep their logits and their share of the softmax
        (the output mask is still passed through).""",
        fails=["masks"], passes="forward")
class SoftmaxIgnoresMask(advanced_activations.Softmax):
    def call(self, inputs, mask=None):
        return super().call(inputs, mask=None)


@mutant("prelu-alpha-not-shared", layer="PReLU",
        breaks="""Builds alpha of the input's full shape (less the batch axis), ignoring shared_axes: one
        slope per element where Keras shares one along each shared axis.  (Every check that loads the
        oracle's weights fails on it; the configuration rules do not look at the weights.)""",
        fails=["weights"], passes="errors")
class PReLUAlphaNotShared(advanced_activations.PReLU):
    def build(self, input_shape):
        type(self).spec().validate_input(self._config, input_shape)
        self.add_weight("alpha", list(input_shape[1:]), self.alpha_initializer, self.alpha_regularizer,
                        self.alpha_constraint)
        self.input_spec = InputSpec(ndim=len(input_shape))
        self.built = True


@mutant("relu-threshold-inclusive", layer="ReLU",
        breaks="""Ports ReLU from its textbook formula, where(x >= threshold, min(x, max_value),
        negative_slope * (x - threshold)): x == threshold gives the threshold (Keras: 0), and with only a
        slope the gradient at 0 is 1 (Keras's leaky_relu: the slope).  Only inputs exactly at the
        threshold show it.""",
        fails=["forward", "gradients"], passes="config")
class ReLUThresholdInclusive(advanced_activations.ReLU):
    def call(self, inputs):
        y = torch.where(inputs >= self.threshold, inputs, self.negative_slope * (inputs - self.threshold))
        return y if self.max_value is None else torch.clamp(y, max=self.max_value)
