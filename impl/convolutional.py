"""Convolution layers: Conv1D/2D/3D, Conv1D/2D/3DTranspose, DepthwiseConv1D/2D and SeparableConv1D/2D,
one class per kind parameterised by ``rank``.

Weights are stored in torch's layout -- kernel ``(filters, in_channels // groups, *kernel_size)``
-- and converted from Keras's ``(*kernel_size, in_channels // groups, filters)`` once, in
``set_weights``.  A channels_last input is viewed channels-first with ``movedim`` (no copy; the
view has torch's channels_last memory format, which the CPU/CUDA kernels take as it is) and the
result is moved back the same way.  TensorFlow's 'same' padding is passed to the conv as its
``padding`` argument when it is symmetric; only an asymmetric one is materialised with ``F.pad``.

Depthwise kernels (Keras ``(*kernel_size, in_channels, depth_multiplier)``) are stored as torch's
grouped-conv weight ``(in_channels * depth_multiplier, 1, *kernel_size)`` -- output channel
``c * depth_multiplier + m``, Keras's order -- and run as a convolution with ``groups=in_channels``;
a separable layer follows it with a 1 x ... x 1 convolution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from . import activations
from .base import InputSpec, Shape, WeightLayout
from .flavor import get_flavor
from .spatial import (
    SpatialLayer,
    conv_output_length,
    deconv_crop,
    deconv_output_length,
    effective_kernel,
    is_symmetric,
    same_paddings,
    torch_pad_arg,
)


def _bfloat16_in_float32_on_cpu(conv: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``conv``, computing a bfloat16 convolution on the CPU in float32 and rounding it once.

    torch's CPU bfloat16 convolution lets an inf or NaN input reach outputs whose windows do not
    hold it (``[1, 2, 3, 4, -inf, 1, 2, 3]`` convolved with ``[1, 1, 1]`` gives NaN at the first
    window after the 1); the float32 convolution rounded to bfloat16 is the same bits elsewhere
    (it too accumulates in float32) and propagates as IEEE arithmetic does, as TensorFlow does.
    Reproduction: bench/repro/torch_bfloat16_conv_nonfinite.py."""

    def run(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *args: Any) -> torch.Tensor:
        if x.dtype != torch.bfloat16 or x.device.type != "cpu":
            return conv(x, weight, bias, *args)
        return conv(x.float(), weight.float(), None if bias is None else bias.float(), *args).to(torch.bfloat16)

    return run


_CONV: dict[int, Callable[..., torch.Tensor]] = {
    rank: _bfloat16_in_float32_on_cpu(fn) for rank, fn in ((1, F.conv1d), (2, F.conv2d), (3, F.conv3d))}


class _WindowConv(SpatialLayer):
    """What the forward convolutions share: TF's padding rules and the output shape."""

    def _padded(self, x: torch.Tensor) -> tuple[torch.Tensor, int | tuple[int, ...]]:
        """The input (channels-first) and the conv's ``padding`` argument for TF's padding rule."""
        if self.padding == "valid":
            return x, 0
        if self.padding == "causal":
            return F.pad(x, (effective_kernel(self.kernel_size[0], self.dilation_rate[0]) - 1, 0)), 0
        pads = same_paddings(x.shape[2:], self.kernel_size, self.strides, self.dilation_rate)
        if is_symmetric(pads):
            return x, tuple(before for before, _ in pads)
        return F.pad(x, torch_pad_arg(pads)), 0

    def _output_channels(self, channels: int | None) -> int | None:
        return self.filters

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        out = tuple(
            conv_output_length(n, k, s, d, self.padding)
            for n, k, s, d in zip(self._spatial(shape), self.kernel_size, self.strides, self.dilation_rate)
        )
        window = (f"kernel_size={self.kernel_size}, dilation_rate={self.dilation_rate}, strides={self.strides}, "
                  f"padding={self.padding!r}")
        return self._windowed_output_shape(shape, out, self._output_channels(shape[self._channel_axis]), window)


class _Conv(_WindowConv):
    """N-D convolution (cross-correlation), ``activation(conv(x, kernel) + bias)``, TF padding rules."""

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.activation = activations.get(activation)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    # -- build ----------------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        shape = self._check_shape(input_shape)
        self._validate_input(shape)
        channels = int(shape[self._channel_axis])
        rank = self.rank
        self.add_weight(
            "kernel",
            tuple(self.kernel_size) + (channels // self.groups, self.filters),
            self.kernel_initializer,
            self.kernel_regularizer,
            self.kernel_constraint,
            layout=WeightLayout(keras_to_torch=(rank + 1, rank, *range(rank))),
        )
        self.add_bias((self.filters,))
        self.input_spec = InputSpec(ndim=rank + 2, axes={self._channel_axis: channels})
        self.built = True

    # -- call -----------------------------------------------------------------------------------
    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x, padding = self._padded(self._to_channels_first(inputs))
        y = _CONV[self.rank](x, self.kernel, self.bias, self.strides, padding, self.dilation_rate, self.groups)
        # The activation sees Keras's layout (softmax works on the last axis of *that* layout).
        return self.activation(self._from_channels_first(y))


class Conv1D(_Conv):
    rank = 1


class Conv2D(_Conv):
    rank = 2


class Conv3D(_Conv):
    rank = 3


# -- depthwise and separable convolution ------------------------------------------------------------
@dataclass(frozen=True)
class _DepthwiseKernelLayout(WeightLayout):
    """Keras's depthwise kernel ``(*kernel_size, channels, multiplier)`` stored as torch's grouped-conv
    weight ``(channels * multiplier, 1, *kernel_size)``: row ``c * multiplier + m`` is Keras's
    ``[..., c, m]``, the output-channel order of TensorFlow's depthwise convolution."""

    channels: int = 1
    multiplier: int = 1

    def to_torch(self, value: torch.Tensor) -> torch.Tensor:
        rank = value.dim() - 2
        moved = value.permute(rank, rank + 1, *range(rank))  # (channels, multiplier, *kernel_size)
        return moved.reshape(self.channels * self.multiplier, 1, *moved.shape[2:]).contiguous()

    def to_keras(self, value: torch.Tensor) -> torch.Tensor:
        rank = value.dim() - 2
        split = value.reshape(self.channels, self.multiplier, *value.shape[2:])
        return split.permute(*range(2, rank + 2), 0, 1)


class _DepthwiseBase(_WindowConv):
    """The depthwise step shared by the depthwise and separable layers."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> _DepthwiseBase:
        # tf_keras's configs also carry its Conv base's unused arguments (the spec's excluded_params).
        excluded = cls.spec().excluded_params
        return cls(**{k: v for k, v in config.items() if k not in excluded})

    def _add_depthwise_kernel(self, name: str, channels: int) -> None:
        self.add_weight(
            name,
            tuple(self.kernel_size) + (channels, self.depth_multiplier),
            self.depthwise_initializer,
            self.depthwise_regularizer,
            self.depthwise_constraint,
            layout=_DepthwiseKernelLayout(channels=channels, multiplier=self.depth_multiplier),
        )

    def _depthwise(self, x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Depthwise convolution of a channels-first ``x`` (one group per input channel)."""
        x, padding = self._padded(x)
        return _CONV[self.rank](x, kernel, bias, self.strides, padding, self.dilation_rate, x.shape[1])


class _DepthwiseConv(_DepthwiseBase):
    """N-D depthwise convolution, ``activation(depthwise_conv(x, kernel) + bias)``.

    The kernel's name is the flavour's (keras3 ``kernel``, tf_keras ``depthwise_kernel``; the spec's
    ``oracle_names``), fixed when the layer is constructed.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self._kernel_name = type(self).spec().weights[0].name_in(get_flavor())
        self.activation = activations.get(activation)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        shape = self._check_shape(input_shape)
        self._validate_input(shape)
        channels = int(shape[self._channel_axis])
        self._add_depthwise_kernel(self._kernel_name, channels)
        self.add_bias((channels * self.depth_multiplier,))
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={self._channel_axis: channels})
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        y = self._depthwise(self._to_channels_first(inputs), getattr(self, self._kernel_name), self.bias)
        return self.activation(self._from_channels_first(y))

    def _output_channels(self, channels: int | None) -> int | None:
        return None if channels is None else channels * self.depth_multiplier


class DepthwiseConv1D(_DepthwiseConv):
    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    rank = 2


class _SeparableConv(_DepthwiseBase):
    """N-D depthwise-separable convolution: the depthwise step (strides, padding, dilation; no bias),
    then a pointwise (1 x ... x 1) convolution with the bias, then the activation."""

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.activation = activations.get(activation)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def build(self, input_shape: Shape) -> None:
        shape = self._check_shape(input_shape)
        self._validate_input(shape)
        channels = int(shape[self._channel_axis])
        rank = self.rank
        self._add_depthwise_kernel("depthwise_kernel", channels)
        self.add_weight(
            "pointwise_kernel",
            (1,) * rank + (channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer,
            self.pointwise_regularizer,
            self.pointwise_constraint,
            layout=WeightLayout(keras_to_torch=(rank + 1, rank, *range(rank))),
        )
        self.add_bias((self.filters,))
        self.input_spec = InputSpec(ndim=rank + 2, axes={self._channel_axis: channels})
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        y = self._depthwise(self._to_channels_first(inputs), self.depthwise_kernel, None)
        y = _CONV[self.rank](y, self.pointwise_kernel, self.bias)
        return self.activation(self._from_channels_first(y))


class SeparableConv1D(_SeparableConv):
    rank = 1


class SeparableConv2D(_SeparableConv):
    rank = 2


# -- transposed convolution -------------------------------------------------------------------------
_CONV_TRANSPOSE: dict[int, Callable[..., torch.Tensor]] = {
    rank: _bfloat16_in_float32_on_cpu(fn)
    for rank, fn in ((1, F.conv_transpose1d), (2, F.conv_transpose2d), (3, F.conv_transpose3d))}


class _ConvTranspose(SpatialLayer):
    """N-D transposed convolution with TensorFlow's output placement (see ``deconv_crop``).

    The kernel is stored ``(in_channels, filters, *kernel_size)`` (torch's conv_transpose layout).
    The output window is produced by the op itself where it can be: the symmetric part of the crop
    is the op's ``padding``, steps past the full result are its ``output_padding``; the remaining
    asymmetric crop is a slice (a view).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        output_padding: int | Sequence[int] | None = None,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.activation = activations.get(activation)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._tf_keras:
            # tf_keras's transposed convolutions report their ConvND base's groups (always 1), and its
            # Conv3DTranspose leaves dilation_rate out (it ignores it).
            config["groups"] = 1
            if self.rank == 3:
                config.pop("dilation_rate")
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> _ConvTranspose:
        config = dict(config)
        if config.get("groups") == 1:  # a tf_keras config (see get_config)
            del config["groups"]
        return cls(**config)

    def build(self, input_shape: Shape) -> None:
        shape = self._check_shape(input_shape)
        self._validate_input(shape)
        channels = int(shape[self._channel_axis])
        rank = self.rank
        self.add_weight(
            "kernel",
            tuple(self.kernel_size) + (self.filters, channels),
            self.kernel_initializer,
            self.kernel_regularizer,
            self.kernel_constraint,
            layout=WeightLayout(keras_to_torch=(rank + 1, rank, *range(rank))),
        )
        self.add_bias((self.filters,))
        self.input_spec = InputSpec(ndim=rank + 2, axes={self._channel_axis: channels})
        self.built = True

    def _output_padding(self) -> tuple[int | None, ...]:
        return tuple(self.output_padding) if self.output_padding is not None else (None,) * self.rank

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._to_channels_first(inputs)
        pads, extra, window = [], [], [slice(None), slice(None)]
        torch_can_grow = True
        axes = zip(x.shape[2:], self.kernel_size, self.strides, self.dilation_rate, self._output_padding())
        for n, k, s, d, op in axes:
            out = deconv_output_length(n, k, s, d, self.padding, op)
            before, after = deconv_crop(n, k, s, d, self.padding, op)
            pad, grow = (min(before, after), 0) if after >= 0 else (0, -after)
            torch_can_grow = torch_can_grow and (grow < s or grow < d)  # torch's output_padding limit
            pads.append(pad)
            extra.append(grow)
            window.append(slice(before - pad, before - pad + out))
        # torch 2.13's CPU (oneDNN jit_1x1) kernel gradient of a 1x1 conv_transpose2d with
        # output_padding == stride - 1 on a channels_last input (our movedim view), batch > 1 and
        # >= 2 threads corrupts the heap: crashes, hangs or wrong kernel gradients (found by this
        # suite; bench/repro/torch_conv_transpose_output_padding.py shows it with torch alone, and
        # tests/impl/test_conv_transpose_grow.py guards it).  For a 1x1 kernel, as beyond torch's
        # output_padding limit, the output is grown by padding instead: the grown cells hold the bias only.
        if any(extra) and (not torch_can_grow or all(k == 1 for k in self.kernel_size)):
            y = _CONV_TRANSPOSE[self.rank](x, self.kernel, None, self.strides, pads, 0, 1, self.dilation_rate)
            y = F.pad(y, torch_pad_arg([(0, grow) for grow in extra]))
            if self.bias is not None:
                y = y + self.bias.view(-1, *([1] * self.rank))
        else:
            y = _CONV_TRANSPOSE[self.rank](x, self.kernel, self.bias, self.strides, pads, extra, 1, self.dilation_rate)
        return self.activation(self._from_channels_first(y[tuple(window)]))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        out = tuple(
            deconv_output_length(n, k, s, d, self.padding, op)
            for n, k, s, d, op in zip(
                self._spatial(shape), self.kernel_size, self.strides, self.dilation_rate, self._output_padding()
            )
        )
        window = (f"kernel_size={self.kernel_size}, strides={self.strides}, padding={self.padding!r}, "
                  f"output_padding={self.output_padding}")
        return self._windowed_output_shape(shape, out, self.filters, window)


class Conv1DTranspose(_ConvTranspose):
    rank = 1


class Conv2DTranspose(_ConvTranspose):
    rank = 2


class Conv3DTranspose(_ConvTranspose):
    rank = 3
