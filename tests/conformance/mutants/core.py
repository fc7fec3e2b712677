"""Mutants of the core layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from keraspec.impl import activations, core
from keraspec.impl.base import InputSpec

from mutants.base import mutant


class _Reshaped:
    """A weight layout that converts Keras's shape to the stored one with a reshape (a transpose
    was meant): the round trip is exact, the values land in the wrong places."""

    def __init__(self, keras_shape, torch_shape):
        self.keras_shape, self.torch_shape = tuple(keras_shape), tuple(torch_shape)

    def to_torch(self, value: torch.Tensor) -> torch.Tensor:
        return value.reshape(self.torch_shape).contiguous()

    def to_keras(self, value: torch.Tensor) -> torch.Tensor:
        return value.reshape(self.keras_shape)


@mutant("dense-kernel-reshaped", layer="Dense", sets=("fast",),
        breaks="""The (input_dim, units) Keras kernel is stored for F.linear as (units, input_dim) with a
        reshape instead of a transpose (set_weights and get_weights agree with each other).""",
        fails=["forward", "gradients"], passes="weights")
class DenseKernelReshaped(core.Dense):
    def build(self, input_shape):
        in_dim = int(input_shape[-1])
        self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer, self.kernel_regularizer,
                        self.kernel_constraint, layout=_Reshaped((in_dim, self.units), (self.units, in_dim)))
        self.add_bias((self.units,))
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_dim})
        self.built = True

    def call(self, inputs):
        return self.activation(F.linear(inputs, self.kernel, self.bias))


@mutant("dense-bias-dropped", layer="Dense",
        breaks="Drops the bias in the forward pass.",
        fails=["forward", "gradients"], passes="config")
class DenseBiasDropped(core.Dense):
    def call(self, inputs):
        return self.activation(F.linear(inputs, self.kernel.t()))


@mutant("dense-constraints-skipped", layer="Dense",
        breaks="""apply_constraints() does nothing: kernel_constraint and bias_constraint are kept in the
        config but never projected after an optimizer step.""",
        fails=["training_step"], passes="gradients")
class DenseConstraintsSkipped(core.Dense):
    def apply_constraints(self):
        pass


@mutant("dense-max-norm-axis", layer="Dense",
        breaks="""MaxNorm and UnitNorm constraints take their norms over the last axis of the kernel
        (torch's (out, in) reading of axis=0) instead of Keras's axis (each unit's incoming weights).""",
        fails=["training_step"], passes="gradients")
class DenseMaxNormAxis(core.Dense):
    def apply_constraints(self):
        from keraspec.impl.constraints import MaxNorm, UnitNorm

        with torch.no_grad():
            for w in self._weights:
                c = w.constraint
                if isinstance(c, (MaxNorm, UnitNorm)) and getattr(self, w.name).dim() == 2:
                    c = type(c)(**{**c.get_config(), "axis": -1})
                if c is not None:
                    param = getattr(self, w.name)
                    param.copy_(w.layout.to_torch(c(w.layout.to_keras(param))))


@mutant("dense-max-norm-ignored", layer="Dense",
        breaks="""apply_constraints() skips MaxNorm (a port that implements non_neg and unit_norm but
        leaves max_norm a no-op); the other constraints are applied.""",
        fails=["training_step"], passes="gradients")
class DenseMaxNormIgnored(core.Dense):
    def apply_constraints(self):
        from keraspec.impl.constraints import MaxNorm

        with torch.no_grad():
            for w in self._weights:
                if w.constraint is not None and not isinstance(w.constraint, MaxNorm):
                    param = getattr(self, w.name)
                    param.copy_(w.layout.to_torch(w.constraint(w.layout.to_keras(param))))


@mutant("activation-keras3-under-tf-keras", layer="Activation",
        breaks="""Ignores the tf_keras flavour: the activation function is always Keras 3's definition
        (hard_sigmoid as relu6(x + 3) / 6 where tf_keras computes clip(0.2 x + 0.5, 0, 1)).""",
        fails=["forward@tf_keras"], passes="forward@keras3")
class ActivationKeras3Only(core.Activation):
    def __init__(self, activation, **kwargs):
        super().__init__(activation, **kwargs)
        self.activation = activations.get(activation, flavor="keras3")


@mutant("activation-gelu-torch-fused", layer="Activation", sets=("fast",),
        breaks="""GELU as torch's fused F.gelu in every dtype: NaN at +inf and an overflow to inf near
        the largest finite value, where TensorFlow's 0.5 x (1 + erf(x / sqrt 2)) gives x.""",
        fails=["forward"], passes="shapes")
class ActivationGeluTorchFused(core.Activation):
    def __init__(self, activation, **kwargs):
        super().__init__(activation, **kwargs)
        if activation == "gelu":
            self.activation = F.gelu


@mutant("flatten-ignores-channels-first", layer="Flatten",
        breaks="""Flattens a channels_first input as it is, without moving the channels last first
        (Keras flattens in channels_last order whatever the data_format).""",
        fails=["forward"], passes="shapes")
class FlattenIgnoresChannelsFirst(core.Flatten):
    def call(self, inputs):
        if inputs.dim() == 1:
            return inputs.reshape(-1, 1)
        return inputs.reshape(inputs.shape[0], -1)


@mutant("permute-inverse-shape", layer="Permute", sets=("fast",),
        breaks="Reports the output shape with the permutation applied backwards (its inverse).",
        fails=["shapes"], passes="forward")
class PermuteInverseShape(core.Permute):
    def compute_output_shape(self, input_shape):
        inverse = sorted(range(1, len(self.dims) + 1), key=lambda i: self.dims[i - 1])
        return (input_shape[0],) + tuple(input_shape[d] for d in inverse)


@mutant("masking-any-feature", layer="Masking", sets=("fast",),
        breaks="Masks a step when ANY feature equals mask_value (Keras: when ALL do).",
        fails=["masks"], passes="config")
class MaskingAnyFeature(core.Masking):
    def compute_mask(self, inputs, mask=None):
        return (inputs != self.mask_value).all(dim=-1)


@mutant("repeat-vector-config-and-rank", layer="RepeatVector", sets=("fast",),
        breaks="Serializes n under another value, and forgets to check the input's rank.",
        fails=["config", "input_errors"], passes="forward")
class RepeatVectorConfigAndRank(core.RepeatVector):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_spec = None

    def get_config(self):
        return {**super().get_config(), "n": self.n + 1}


@mutant("activity-regularization-per-batch", layer="ActivityRegularization", sets=("fast",),
        breaks="Forgets to divide the activity loss by the batch size.",
        fails=["forward"], passes="shapes")
class ActivityRegularizationPerBatch(core.ActivityRegularization):
    def forward(self, inputs, training=None, mask=None, **kwargs):
        out = super().forward(inputs, training=training, mask=mask, **kwargs)
        self._activity_losses = [loss * inputs.shape[0] for loss in self._activity_losses]
        return out


@mutant("embedding-mask-zero-ignored", layer="Embedding",
        breaks="""mask_zero is kept in the config but no output mask is produced (padding index 0
        reaches the next layer as a real token).""",
        fails=["masks"], passes="forward")
class EmbeddingMaskZeroIgnored(core.Embedding):
    def compute_mask(self, inputs, mask=None):
        return None
