"""Mutants of the convolution layers."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from keraspec.impl import convolutional, initializers
from keraspec.impl.base import InputSpec
from keraspec.impl.spatial import deconv_output_length, is_symmetric, same_paddings, torch_pad_arg

from mutants.base import mutant


@mutant("conv1d-constraints-before-step", layer="Conv1D", sets=("fast",),
        breaks="""Applies the weight constraints at the start of every training forward pass (as
        torch.nn.Embedding's max_norm renormalises in forward) instead of after the optimizer step:
        apply_constraints() does nothing and a training call changes the weights.""",
        fails=["forward_training", "training_step"], passes="forward")
class Conv1DConstraintsBeforeStep(convolutional.Conv1D):
    def call(self, inputs, training=False):
        if training:
            convolutional.Conv1D.apply_constraints(self)
        return super().call(inputs)

    def apply_constraints(self):
        pass


@mutant("conv2d-initializer-given-name", layer="Conv2D", sets=("fast",),
        breaks="""get_config serializes an initializer given by name under that name
        ({"class_name": "glorot_uniform"}) instead of Keras's class name ("GlorotUniform").""",
        fails=["config"], passes="forward")
class Conv2DInitializerGivenName(convolutional.Conv2D):
    def get_config(self):
        config = super().get_config()
        for key in ("kernel_initializer", "bias_initializer"):
            value = self._config[key]
            if isinstance(value, str):
                config[key] = {"module": "keras.initializers", "class_name": value, "config": {}, "registered_name": None}
        return config


@mutant("conv2d-same-padding-torch-split", layer="Conv2D",
        breaks="""'same' padding with an odd total (an even kernel, or strides that do not divide the
        input) puts the extra cell before (torch's split) instead of after (TensorFlow's).""",
        fails=["forward"], passes="shapes")
class Conv2DSamePaddingTorchSplit(convolutional.Conv2D):
    def _padded(self, x):
        if self.padding == "same":
            pads = same_paddings(x.shape[2:], self.kernel_size, self.strides, self.dilation_rate)
            if not is_symmetric(pads):
                return F.pad(x, torch_pad_arg([(after, before) for before, after in pads])), 0
        return super()._padded(x)


@mutant("conv2d-constraint-torch-layout", layer="Conv2D",
        breaks="""apply_constraints() projects the kernel in its stored torch layout (filters, in,
        *kernel) so a constraint's axis=0 runs over the filters instead of Keras's first kernel axis.""",
        fails=["training_step"], passes="gradients")
class Conv2DConstraintTorchLayout(convolutional.Conv2D):
    def apply_constraints(self):
        with torch.no_grad():
            for w in self._weights:
                if w.constraint is not None:
                    param = getattr(self, w.name)
                    param.copy_(w.constraint(param))


@mutant("conv3d-init-in-torch-layout", layer="Conv3D", sets=("fast",),
        breaks="""Initializes the kernel in its stored torch layout (filters, in, *kernel) instead of
        Keras's (*kernel, in, filters): Keras's fan rule then reads the fans from the wrong axes, so
        glorot / he initial values have the wrong scale.""",
        fails=["initial_weights"], passes="forward")
class Conv3DInitInTorchLayout(convolutional.Conv3D):
    def add_weight(self, name, shape, initializer="zeros", regularizer=None, constraint=None, trainable=True,
                   layout=None):
        param = super().add_weight(name, shape, "zeros", regularizer, constraint, trainable, layout)
        with torch.no_grad():
            param.copy_(initializers.get(initializer)(tuple(param.shape), dtype=param.dtype, device=param.device))
        return param


@mutant("conv3d-config-drops-groups", layer="Conv3D",
        breaks="get_config leaves out 'groups' (a port of a Keras older than 2.5, which had none).",
        fails=["config"], passes="forward")
class Conv3DConfigDropsGroups(convolutional.Conv3D):
    def get_config(self):
        config = super().get_config()
        config.pop("groups")
        return config


@mutant("conv1d-dilated-strides-not-implemented", layer="Conv1D",
        breaks="""Refuses strides > 1 with dilation_rate > 1 by raising NotImplementedError (a port's
        "not supported") where Keras raises ValueError.""",
        fails=["errors:strides_vs_dilation"], passes="forward")
class Conv1DDilatedStridesNotImplemented(convolutional.Conv1D):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, **kwargs):
        def most(v):
            return max(v) if isinstance(v, (list, tuple)) else v

        if isinstance(most(strides), int) and isinstance(most(dilation_rate), int) and most(strides) > 1 and most(dilation_rate) > 1:
            raise NotImplementedError("strides > 1 together with dilation_rate > 1 is not supported")
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, **kwargs)


@dataclass(frozen=True)
class _MultiplierFirstLayout(convolutional._DepthwiseKernelLayout):
    """Stores Keras's [..., c, m] at row m * channels + c (torch wants c * multiplier + m)."""

    def to_torch(self, value):
        rank = value.dim() - 2
        moved = value.permute(rank + 1, rank, *range(rank))  # (multiplier, channels, *kernel_size)
        return moved.reshape(self.channels * self.multiplier, 1, *moved.shape[2:]).contiguous()

    def to_keras(self, value):
        rank = value.dim() - 2
        split = value.reshape(self.multiplier, self.channels, *value.shape[2:])
        return split.permute(*range(2, rank + 2), 1, 0)


@mutant("depthwise2d-multiplier-order", layer="DepthwiseConv2D", sets=("fast",),
        breaks="""The depthwise kernel (*kernel, channels, multiplier) is flattened to torch's grouped
        weight multiplier-major (row m * C + c) instead of channel-major (row c * multiplier + m).""",
        fails=["forward", "gradients"], passes="weights")
class DepthwiseConv2DMultiplierOrder(convolutional.DepthwiseConv2D):
    def _add_depthwise_kernel(self, name, channels):
        self.add_weight(name, tuple(self.kernel_size) + (channels, self.depth_multiplier), self.depthwise_initializer,
                        self.depthwise_regularizer, self.depthwise_constraint,
                        layout=_MultiplierFirstLayout(channels=channels, multiplier=self.depth_multiplier))


@mutant("depthwise1d-kernel-name-keras3", layer="DepthwiseConv1D", sets=("fast",),
        breaks="""Ignores the tf_keras flavour when naming the kernel: always Keras 3's 'kernel', where
        tf_keras says 'depthwise_kernel' (the spec's oracle_names).""",
        fails=["weights@tf_keras"], passes="weights@keras3")
class DepthwiseConv1DKernelNameKeras3(convolutional.DepthwiseConv1D):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._kernel_name = type(self).spec().weights[0].name


@mutant("separable1d-bias-detached", layer="SeparableConv1D", sets=("fast",),
        breaks="""Adds a detached bias (bias.data, as when it is copied from a buffer): the forward
        pass is right, but no gradient reaches the bias and an optimizer never moves it.""",
        fails=["gradients", "training_step"], passes="forward")
class SeparableConv1DBiasDetached(convolutional.SeparableConv1D):
    def call(self, inputs):
        y = self._depthwise(self._to_channels_first(inputs), self.depthwise_kernel, None)
        y = convolutional._CONV[self.rank](y, self.pointwise_kernel, None if self.bias is None else self.bias.detach())
        return self.activation(self._from_channels_first(y))


@mutant("separable2d-channels-not-pinned", layer="SeparableConv2D",
        breaks="""Once built, does not pin the channel axis in its input spec: an input with more
        channels fails inside torch's convolution (RuntimeError) instead of a ValueError.""",
        fails=["input_errors"], passes="forward")
class SeparableConv2DChannelsNotPinned(convolutional.SeparableConv2D):
    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = InputSpec(ndim=self.rank + 2)


@mutant("separable2d-pointwise-uses-depthwise-initializer", layer="SeparableConv2D",
        breaks="""Initializes the pointwise kernel with depthwise_initializer (a copy-paste slip);
        pointwise_initializer is kept in the config but never used.""",
        fails=["initial_weights"], passes="forward")
class SeparableConv2DPointwiseUsesDepthwiseInitializer(convolutional.SeparableConv2D):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pointwise_initializer = self.depthwise_initializer


@mutant("conv2d-transpose-weights-reversed", layer="Conv2DTranspose", sets=("fast",),
        breaks="get_weights returns the weights in the wrong order (bias before kernel); set_weights is right.",
        fails=["weights", "training_step"], passes="forward")
class Conv2DTransposeWeightsReversed(convolutional.Conv2DTranspose):
    def get_weights(self):
        return list(reversed(super().get_weights()))


@mutant("conv2d-transpose-tf-keras-config", layer="Conv2DTranspose",
        breaks="""Ignores the tf_keras flavour in get_config: leaves out the 'groups' (always 1) that
        tf_keras's transposed convolutions report.""",
        fails=["config@tf_keras"], passes="config@keras3")
class Conv2DTransposeTfKerasConfig(convolutional.Conv2DTranspose):
    def get_config(self):
        config = super().get_config()
        if self._flavor == "tf_keras":
            config.pop("groups", None)
        return config


@mutant("conv1d-transpose-shape-ignores-output-padding", layer="Conv1DTranspose",
        breaks="compute_output_shape ignores output_padding (the call honours it).",
        fails=["shapes"], passes="forward")
class Conv1DTransposeShapeIgnoresOutputPadding(convolutional.Conv1DTranspose):
    def compute_output_shape(self, input_shape):
        shape = self._check_shape(input_shape)
        out = tuple(deconv_output_length(n, k, s, d, self.padding, None)
                    for n, k, s, d in zip(self._spatial(shape), self.kernel_size, self.strides, self.dilation_rate))
        return self._windowed_output_shape(shape, out, self.filters, f"kernel_size={self.kernel_size}")
