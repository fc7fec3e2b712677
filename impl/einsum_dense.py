"""EinsumDense: ``activation(einsum(equation, inputs, kernel) + bias)``.

The equation is read as Keras's ``_analyze_einsum_string`` reads it (forms ``ab,bc->ac``,
``...ab,bc->...ac`` and ``ab...,bc->ac...``): kernel axes take their size from output_shape when
their letter is an output letter, else from the input; the bias spans the output letters from the
first of ``bias_axes`` on (size 1 on the others, and on right-elided axes).  The kernel is stored in
Keras's layout, which is what ``torch.einsum`` takes, so no weight is ever permuted.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import torch

from . import activations, initializers
from .base import InputSpec, Layer, Shape
from .flavor import get_flavor

_PLAIN = re.compile(r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)")
_LEFT_ELIDED = re.compile(r"\.\.\.([a-zA-Z]+),([a-zA-Z]+)->\.\.\.([a-zA-Z]+)")
_RIGHT_ELIDED = re.compile(r"([a-zA-Z]{2,})\.\.\.,([a-zA-Z]+)->([a-zA-Z]+)\.\.\.")


@dataclass(frozen=True)
class EinsumShapes:
    """What an equation, output_shape and bias_axes make of an input shape."""

    kernel: tuple[int, ...]
    bias: tuple[int, ...] | None
    output: tuple[int | None, ...]  # Keras's compute_output_shape: output_shape's entries as given
    input_axes: tuple[int, ...]  # kernel axes sized from the input (the fan-in axes)
    output_axes: tuple[int, ...]  # kernel axes sized from output_shape (the fan-out axes)


def parse_equation(equation: Any) -> tuple[str, str, str, str]:
    """(input letters, kernel letters, output letters, elision: '', 'left' or 'right'); a clear
    ValueError for anything else."""
    if isinstance(equation, str):
        for pattern, elided in ((_PLAIN, ""), (_LEFT_ELIDED, "left"), (_RIGHT_ELIDED, "right")):
            match = pattern.fullmatch(equation)
            if match:
                return match[1], match[2], match[3], elided
    raise ValueError(
        f"EinsumDense: 'equation' must be of the form ab,bc->ac, ...ab,bc->...ac or ab...,bc->ac..., "
        f"got {equation!r} [parameter(s): equation]"
    )


def analyze(name: str, equation: str, bias_axes: str | None, input_shape: Shape,
            partial_output_shape: tuple[int | None, ...]) -> EinsumShapes:
    """Kernel and bias shapes and the output shape of ``input_shape``, as Keras computes them,
    with a ValueError naming the layer and the shapes where Keras would fail or be inconsistent."""
    input_spec, kernel_spec, output_spec, elision = parse_equation(equation)
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(input_spec)
    if elided < (1 if elision else 0) or (not elision and elided != 0):
        raise ValueError(
            f"EinsumDense '{name}': the equation {equation!r} needs an input of rank "
            f"{len(input_spec) + 1 if elision else len(input_spec)}{' or more' if elision else ''}. "
            f"Full shape received: {input_shape}"
        )
    output = [input_shape[0], *partial_output_shape]
    if elision == "left":
        output[1:1] = input_shape[1:elided]
        input_at = {c: elided + i for i, c in enumerate(input_spec)}
        output_at = {c: elided + i for i, c in enumerate(output_spec)}
    else:
        if elision == "right":
            output.extend(input_shape[len(input_spec):])
        input_at = {c: i for i, c in enumerate(input_spec)}
        output_at = {c: i for i, c in enumerate(output_spec)}
    for c in input_spec:
        if c in output_at and output[output_at[c]] is not None and output[output_at[c]] != input_shape[input_at[c]]:
            raise ValueError(
                f"EinsumDense '{name}': input and output_shape differ at the shared axis {c!r} ({input_shape[input_at[c]]} "
                f"vs {output[output_at[c]]}) [parameter(s): output_shape]. Full shape received: {input_shape}"
            )
    kernel, input_axes, output_axes = [], [], []
    for i, c in enumerate(kernel_spec):
        if c in output_at:
            kernel.append(output[output_at[c]])
            output_axes.append(i)
        elif c in input_at:
            kernel.append(input_shape[input_at[c]])
            input_axes.append(i)
        else:
            raise ValueError(f"EinsumDense '{name}': kernel letter {c!r} of {equation!r} is neither an input nor an "
                             f"output letter [parameter(s): equation]")
    if any(k is None for k in kernel):
        raise ValueError(f"EinsumDense '{name}': the kernel's shape {tuple(kernel)} has an unknown size "
                         f"[parameter(s): output_shape]. Full shape received: {input_shape}")
    bias = None
    if bias_axes is not None:
        first = min(output_spec.find(c) for c in bias_axes)
        offset = elided if elision == "left" else 0
        bias = [output[offset + i] if c in bias_axes else 1 for i, c in enumerate(output_spec) if i >= first]
        if elision == "right":
            bias.extend([1] * elided)
        bias = tuple(bias)
    return EinsumShapes(tuple(int(k) for k in kernel), bias, tuple(output), tuple(input_axes), tuple(output_axes))


class EinsumDense(Layer):
    """``activation(einsum(equation, inputs, kernel) + bias)``; see the module docstring."""

    def __init__(
        self,
        equation: str,
        output_shape: Any,
        activation: Any = None,
        bias_axes: str | None = None,
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
        parse_equation(equation)  # before the spec's rules, which read the equation's parts
        self._configure(locals())
        self.partial_output_shape: tuple[int | None, ...] = (
            tuple(output_shape) if isinstance(output_shape, (list, tuple)) else (output_shape,))
        self.activation = activations.get(activation)
        self._flavor = get_flavor()
        self._shapes: EinsumShapes | None = None

    def _analyze(self, input_shape: Shape) -> EinsumShapes:
        return analyze(self.name, self.equation, self.bias_axes, input_shape, self.partial_output_shape)

    def build(self, input_shape: Shape) -> None:
        shapes = self._analyze(input_shape)
        kernel_initializer = initializers.get(self.kernel_initializer)
        # Keras 3 tells a VarianceScaling initializer which kernel axes are fan-in and fan-out;
        # tf_keras computes the fans from the shape as for a convolution kernel.
        if (self._flavor == "keras3" and isinstance(kernel_initializer, initializers.VarianceScaling)
                and (kernel_initializer.input_axes is None or kernel_initializer.output_axes is None)):
            kernel_initializer = copy.copy(kernel_initializer)
            kernel_initializer.input_axes = list(shapes.input_axes)
            kernel_initializer.output_axes = list(shapes.output_axes)
        self.add_weight("kernel", shapes.kernel, kernel_initializer, self.kernel_regularizer, self.kernel_constraint)
        if shapes.bias is not None:
            self.add_weight("bias", shapes.bias, self.bias_initializer, self.bias_regularizer, self.bias_constraint)
        else:
            self.bias = None
        self._shapes = shapes
        input_letters, _, _, elision = parse_equation(self.equation)
        # tf_keras with right-elided axes: the bias is sized for the built number of elided axes,
        # so another number of them is checked per call (a clear error instead of torch's).
        self._check_bias = shapes.bias is not None and elision == "right" and self._flavor == "tf_keras"
        if elision and self._flavor == "tf_keras":
            # tf_keras declares no input spec: any number of elided axes runs, only the kernel's axes
            # must keep their sizes (counted from the end when '...' leads).
            offset = -len(input_letters) if elision == "left" else 0
            self.input_spec = InputSpec(min_ndim=len(input_letters), axes={
                offset + i: int(input_shape[offset + i]) for i, c in enumerate(input_letters) if c in self._kernel_letters})
        else:  # Keras 3 fixes the rank it was built for
            self.input_spec = InputSpec(ndim=len(input_shape), axes={
                i: int(d) for i, d in enumerate(input_shape) if i and _sized_axis(self, i, input_shape)})
        self.built = True

    def _check_bias_broadcasts(self, inputs: torch.Tensor, out: torch.Tensor) -> None:
        try:
            torch.broadcast_shapes(out.shape, self.bias.shape)
        except RuntimeError:
            raise ValueError(
                f"Input 0 of layer '{self.name}' (EinsumDense) is incompatible with the layer: its bias of shape "
                f"{tuple(self.bias.shape)}, built for the elided axes of the build input, does not broadcast "
                f"against the output {tuple(out.shape)}. Full shape received: {tuple(inputs.shape)}"
            ) from None

    @property
    def _kernel_letters(self) -> str:
        return parse_equation(self.equation)[1]

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel
        if not inputs.is_floating_point():
            inputs = inputs.to(kernel.dtype)  # Keras promotes integer inputs to the kernel's dtype
        out = torch.einsum(self.equation, inputs, kernel)
        if self.bias is not None:
            if self._check_bias:
                self._check_bias_broadcasts(inputs, out)
            out = out + self.bias
        return self.activation(out)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._analyze(input_shape).output

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["output_shape"] = self.partial_output_shape
        return config


def _sized_axis(layer: EinsumDense, axis: int, input_shape: Shape) -> bool:
    """Whether a kernel axis is sized from this input axis (a new size there cannot be computed with
    the built kernel); elided axes, and axes only the output shares, are free."""
    input_spec, kernel_spec, output_spec, elision = parse_equation(layer.equation)
    elided = len(input_shape) - len(input_spec)
    index = axis - elided if elision == "left" else axis
    if index < 0 or index >= len(input_spec):
        return False
    letter = input_spec[index]
    return letter in kernel_spec


__all__ = ["EinsumDense", "analyze", "parse_equation"]
