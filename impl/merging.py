"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate and Dot, and their
functional forms (``add``, ``subtract``, ..., ``concatenate``, ``dot``), which build the layer and
call it, as Keras's do.

Each layer takes a list of tensors (``layer([x0, x1, ...])``) and follows the oracle whose flavour is
in force when it is constructed (:mod:`keraspec.impl.flavor`).  The two agree on values and shapes
and differ in masks and in Dot's normalisation:

* Shapes (both): the elementwise merges broadcast as Keras's ``Merge`` does -- right-aligned after the
  batch axis, size 1 against any size, an input of lower rank getting axes inserted after the batch
  axis (``expand_dims(x, 1)``, not torch's leading axes) -- and refuse other shapes and different
  batch sizes; Concatenate needs every axis but ``axis`` to agree; Dot the two contracted axes.
  Subtract and Dot take exactly two inputs.  A refused input raises ``ValueError`` naming the layer
  and the shapes, at build and on every later call (Keras checks at build only; a later call with
  other shapes fails inside TensorFlow).
* Output masks: Keras 3 gives None unless every input has a mask, then their OR; tf_keras the AND of
  the masks given.  Keras 3's Multiply, Maximum and Minimum also use the masks in the values (a
  masked element counts as absent) and, with every input masked, attach the OR themselves; Keras 3
  drops the masks from the values when the inputs have different ranks (its reshape loses them), and
  so does this module.  Concatenate concatenates the masks (ones for an input without one, each
  broadcast to its input) and reduces the last axis with ``any`` (Keras 3) or ``all`` (tf_keras).
  Dot gives no mask.
* Dot's ``normalize``: Keras 3 ``x * min(rsqrt(sum(x**2)), 1 / 1e-7)``, tf_keras
  ``x * rsqrt(max(sum(x**2), 1e-12))`` (``tf.linalg.l2_normalize``), each constant rounded to the
  compute dtype first, as TensorFlow converts it (1e7 is inf and 1e-12 is 0 in float16).

``mask`` is a list with one entry (a tensor or None) per input, as Keras passes it; a lone tensor is
taken as the FIRST input's mask, the others unmasked (what Keras reads when only the first input
carries ``_keras_mask``; the conformance harness passes the mask that way).

Values follow TensorFlow op for op where it shows: sums and products left to right, Average's sum
divided once by the count, Maximum and Minimum propagating NaN (``tf.maximum``) and sending the
gradient of a tie to the first input (``tf.maximum``'s gradient is ``x >= y``; torch.maximum would
split it), Dot as Keras's ``batch_dot`` (contracted axes moved last / second, a rank-2 input expanded
and squeezed back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, ClassVar

import ml_dtypes
import numpy as np
import torch

from keraspec.spec import SpecConfigError

from .base import Layer
from .tf_math import rsqrt as _rsqrt

__all__ = ["Add", "Average", "Concatenate", "Dot", "Maximum", "Minimum", "Multiply", "Subtract",
           "add", "average", "concatenate", "dot", "maximum", "minimum", "multiply", "subtract"]

_NUMPY_DTYPES: dict[torch.dtype, Any] = {
    torch.float16: np.float16,
    torch.bfloat16: ml_dtypes.bfloat16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}
#: Keras 3's ``backend.epsilon()``: ``ops.normalize`` caps the inverse norm at its reciprocal.
_KERAS3_EPSILON = 1e-7
#: ``tf.linalg.l2_normalize``'s default epsilon: the floor of the sum of squares (tf_keras's Dot).
_L2_NORMALIZE_EPSILON = 1e-12


@lru_cache(maxsize=64)
def _in_dtype(value: float, dtype: torch.dtype) -> float:
    """``value`` as TensorFlow holds it in a tensor of ``dtype`` (1e7 is inf in float16)."""
    np_dtype = _NUMPY_DTYPES.get(dtype)
    with np.errstate(over="ignore"):
        return float(np.asarray(value).astype(np_dtype)) if np_dtype is not None else float(value)


def _maximum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``tf.maximum``: NaN propagates, ``maximum(-0, 0)`` is the first argument, and the gradient of a
    tie goes to the first argument (TF's ``x >= y`` rule)."""
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return torch.where((a >= b) | torch.isnan(a), a, b)
    return torch.maximum(a, b)  # the same values, one op


def _minimum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``tf.minimum``: as :func:`_maximum`, with ``x <= y``."""
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return torch.where((a <= b) | torch.isnan(a), a, b)
    return torch.minimum(a, b)


def _bool(mask: torch.Tensor) -> torch.Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def _shapes(inputs: Sequence[torch.Tensor]) -> list[tuple[int, ...]]:
    return [tuple(x.shape) for x in inputs]


class _Merge(Layer):
    """Shared by the family: a list of inputs (exactly ``_exact_inputs`` of them where set), the
    flavour at construction, and the masks as a list (a lone tensor is the first input's)."""

    supports_masking = True
    #: The number of inputs the layer takes (None: one or more).
    _exact_inputs: ClassVar[int | None] = None

    # -- inputs ------------------------------------------------------------------------------------
    def _error(self, message: str, shapes: Any) -> ValueError:
        return ValueError(f"{type(self).__name__} '{self.name}': {message}. Received input shapes: {shapes}")

    def _check_shape_list(self, input_shape: Any) -> list[tuple[Any, ...]]:
        """The shapes as a list of tuples; refuses a single shape and a wrong number of inputs."""
        if (not isinstance(input_shape, (list, tuple)) or not input_shape
                or not all(isinstance(s, (list, tuple)) for s in input_shape)):
            raise self._error("a merge layer should be called on a list of inputs", input_shape)
        shapes = [tuple(s) for s in input_shape]
        if self._exact_inputs is not None and len(shapes) != self._exact_inputs:
            raise self._error(f"should be called on exactly {self._exact_inputs} inputs, got {len(shapes)}", shapes)
        return shapes

    def _input_list(self, inputs: Any) -> list[torch.Tensor]:
        if isinstance(inputs, torch.Tensor) or not isinstance(inputs, (list, tuple)) or not inputs:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else inputs
            raise self._error("a merge layer should be called on a list of inputs", shape)
        if self._exact_inputs is not None and len(inputs) != self._exact_inputs:
            raise self._error(f"should be called on exactly {self._exact_inputs} inputs, got {len(inputs)}",
                              _shapes(inputs))
        return list(inputs)

    def _mask_list(self, mask: Any, n: int) -> list[torch.Tensor | None] | None:
        """One mask (or None) per input; None when no input has one."""
        if mask is None:
            return None
        if isinstance(mask, torch.Tensor):
            return [_bool(mask)] + [None] * (n - 1)
        if not isinstance(mask, (list, tuple)) or len(mask) != n:
            raise ValueError(f"{type(self).__name__} '{self.name}': mask should be a list of {n} masks (or None), "
                             f"one per input; got {mask!r}")
        masks = [None if m is None else _bool(torch.as_tensor(m)) for m in mask]
        return None if all(m is None for m in masks) else masks

    def _broadcast_mask(self, mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """A (batch, ...) mask of one axis less than ``x``, broadcast to ``x`` (Keras:
        ``broadcast_to(expand_dims(mask, -1), shape(x))``)."""
        try:
            return torch.broadcast_to(mask.unsqueeze(-1), x.shape)
        except RuntimeError:
            raise ValueError(f"{type(self).__name__} '{self.name}': a mask of shape {tuple(mask.shape)} does not fit "
                             f"an input of shape {tuple(x.shape)} (it must be the input's shape less the last axis)"
                             ) from None


class _ElementwiseMerge(_Merge):
    """A merge of inputs that broadcast elementwise (Keras's ``Merge``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure({})

    # -- shapes ------------------------------------------------------------------------------------
    def _pair_shape(self, shape1: tuple[Any, ...], shape2: tuple[Any, ...], shapes: Any) -> tuple[Any, ...]:
        """Keras's ``_compute_elemwise_op_output_shape`` (shapes without the batch axis)."""
        if len(shape1) < len(shape2):
            shape1, shape2 = shape2, shape1
        if not shape2:
            return shape1
        out = list(shape1[: len(shape1) - len(shape2)])
        for i, j in zip(shape1[len(shape1) - len(shape2):], shape2):
            if i is None or j is None:
                out.append(None)
            elif i == 1:
                out.append(j)
            elif j == 1 or i == j:
                out.append(i)
            else:
                raise self._error(f"inputs have incompatible shapes: {shape1} and {shape2} do not broadcast "
                                  f"(after the batch axis, right-aligned)", shapes)
        return tuple(out)

    def _output_shape(self, shapes: list[tuple[Any, ...]], check_batch: bool) -> tuple[Any, ...]:
        batch_sizes = {s[0] for s in shapes if s} - {None}
        if check_batch and len(batch_sizes) > 1:
            raise self._error("cannot merge tensors with different batch sizes", shapes)
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = self._pair_shape(out, s[1:], shapes)
        return (next(iter(batch_sizes)) if len(batch_sizes) == 1 else None, *out)

    def build(self, input_shape: Any) -> None:
        self._output_shape(self._check_shape_list(input_shape), check_batch=True)
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return self._output_shape(self._check_shape_list(input_shape), check_batch=False)

    # -- call ----------------------------------------------------------------------------------------
    def call(self, inputs: Any, mask: Any = None) -> torch.Tensor:
        xs = self._input_list(inputs)
        first = xs[0].shape
        same_rank = True
        if not all(x.shape == first for x in xs[1:]):
            shapes = _shapes(xs)
            self._output_shape(shapes, check_batch=True)
            ranks = [len(s) for s in shapes]
            if len(set(ranks)) > 1:
                # Keras expands a lower-rank input at axis 1 (after the batch axis) until the ranks agree;
                # the expanded tensors carry no masks (Keras 3 reads masks off the tensors it merges).
                same_rank = False
                top = max(ranks)
                xs = [x.reshape(x.shape[:1] + (1,) * (top - x.dim()) + x.shape[1:]) for x in xs]
        masks = self._mask_list(mask, len(xs)) if mask is not None and same_rank and not self._tf_keras else None
        return self._merge(xs, masks)

    def _merge(self, xs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        raise NotImplementedError

    def compute_mask(self, inputs: Any, mask: Any = None) -> torch.Tensor | None:
        if mask is None:
            return None
        n = len(inputs) if isinstance(inputs, (list, tuple)) else 1
        masks = self._mask_list(mask, n)
        if masks is None:
            return None
        if self._tf_keras:  # the AND of the masks given
            given = [m for m in masks if m is not None]
            out = given[0]
            for m in given[1:]:
                out = out & m
            return out
        if any(m is None for m in masks):  # Keras 3: every input must have a mask, then the OR
            return None
        out = masks[0]
        for m in masks[1:]:
            out = out | m
        return out


def _fold(op: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], xs: list[torch.Tensor]) -> torch.Tensor:
    out = xs[0]
    for x in xs[1:]:
        out = op(out, x)
    return out


class Add(_ElementwiseMerge):
    """The elementwise sum of the inputs, left to right."""

    def _merge(self, xs: list[torch.Tensor], masks: Any) -> torch.Tensor:
        return _fold(torch.add, xs)


class Subtract(_ElementwiseMerge):
    """``x0 - x1`` of exactly two inputs."""

    _exact_inputs = 2

    def _merge(self, xs: list[torch.Tensor], masks: Any) -> torch.Tensor:
        return xs[0] - xs[1]


class Average(_ElementwiseMerge):
    """The sum of the inputs (left to right) divided once by their number, in the compute dtype."""

    def _merge(self, xs: list[torch.Tensor], masks: Any) -> torch.Tensor:
        return _fold(torch.add, xs) / len(xs)


class Multiply(_ElementwiseMerge):
    """The elementwise product, left to right.  Keras 3 with masks: a masked element counts as 1; with
    every input masked the output is 0 where no input keeps the element, and carries the OR of the masks."""

    def _merge(self, xs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        if masks is None:
            return _fold(torch.mul, xs)
        every = all(m is not None for m in masks)
        output: torch.Tensor | None = None
        output_mask: torch.Tensor | None = None
        for x, m in zip(xs, masks):
            if m is not None:
                m = self._broadcast_mask(m, x)
                x = torch.where(m, x, 1.0)
                if every:
                    output_mask = m if output_mask is None else output_mask | m
            output = x if output is None else output * x
        assert output is not None
        if output_mask is not None:
            output = torch.where(output_mask, output, 0.0)
            output._keras_mask = output_mask.any(dim=-1)
        return output


class _OrMaskMerge(_ElementwiseMerge):
    """Keras 3's ``_apply_merge_op_and_or_mask`` (Maximum, Minimum): where an input is masked the
    running result is taken, where the running result's mask is False the new input is; with every
    input masked the output carries the OR of the masks."""

    _op: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]

    def _merge(self, xs: list[torch.Tensor], masks: list[torch.Tensor | None] | None) -> torch.Tensor:
        op = type(self)._op
        if masks is None:
            return _fold(op, xs)
        output: torch.Tensor | None = None
        output_mask: torch.Tensor | None = None
        for index, (x, m) in enumerate(zip(xs, masks)):
            if m is not None:
                m = self._broadcast_mask(m, x)
            if index == 0:
                output, output_mask = x, m
                continue
            assert output is not None
            if m is not None:
                x = torch.where(m, x, output)
            if output_mask is not None:
                output = torch.where(output_mask, output, x)
            output_mask = output_mask | m if m is not None and output_mask is not None else None
            output = op(output, x)
        assert output is not None
        if output_mask is not None:
            output._keras_mask = output_mask.any(dim=-1)
        return output


class Maximum(_OrMaskMerge):
    """The elementwise maximum, left to right (``tf.maximum``: NaN propagates, a tie's gradient goes to
    the first input)."""

    _op = staticmethod(_maximum)


class Minimum(_OrMaskMerge):
    """The elementwise minimum, left to right (``tf.minimum``: NaN propagates, a tie's gradient goes to
    the first input)."""

    _op = staticmethod(_minimum)


class Concatenate(_Merge):
    """The inputs concatenated along ``axis``; every other axis must agree."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def _check_axes(self, shapes: list[tuple[Any, ...]]) -> None:
        type(self).spec().validate_input(self._config, shapes)  # the axis is one of the inputs' axes
        ranks = {len(s) for s in shapes}
        if len(ranks) > 1:
            raise self._error(f"inputs must have one rank (got ranks {sorted(ranks)}) and matching shapes except "
                              f"along the concatenation axis {self.axis}", shapes)
        axis = self.axis % len(shapes[0])
        for i in range(len(shapes[0])):
            sizes = {s[i] for s in shapes} - {None}
            if i != axis and len(sizes) > 1:
                raise self._error(f"inputs must have matching shapes except along the concatenation axis {self.axis} "
                                  f"(axis {i} differs)", shapes)

    def build(self, input_shape: Any) -> None:
        self._check_axes(self._check_shape_list(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        shapes = self._check_shape_list(input_shape)
        type(self).spec().validate_input(self._config, shapes)
        out = list(shapes[0])
        sizes = [s[self.axis] for s in shapes]
        out[self.axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def call(self, inputs: Any) -> torch.Tensor:
        xs = self._input_list(inputs)
        try:
            return torch.cat(xs, dim=self.axis)
        except (RuntimeError, IndexError):
            shapes = _shapes(xs)
            self._check_axes(shapes)
            raise self._error("cannot concatenate these inputs", shapes) from None

    def compute_mask(self, inputs: Any, mask: Any = None) -> torch.Tensor | None:
        if mask is None:
            return None
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        masks = self._mask_list(mask, len(xs))
        if masks is None:
            return None
        parts = []
        for x, m in zip(xs, masks):
            if m is None:
                parts.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
            elif m.dim() < x.dim():
                parts.append(self._broadcast_mask(m, x))
            else:
                parts.append(m)
        joined = torch.cat(parts, dim=self.axis)
        # Keras 3 reduces with any, tf_keras with all (one mask per (batch, ...) position either way).
        return joined.all(dim=-1) if self._tf_keras else joined.any(dim=-1)


class Dot(_Merge):
    """The batchwise dot product of two inputs over ``axes`` (Keras's ``batch_dot``), optionally of the
    inputs L2-normalised along those axes (each oracle's normalisation; see the module docstring)."""

    _exact_inputs = 2

    def __init__(self, axes: Any, normalize: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.axes = list(axes) if isinstance(axes, list) else axes  # as given, as Keras keeps it
        self._config["axes"] = self.axes
        #: (rank of input 0, rank of input 1) -> the contracted axes, checked once per pair of ranks.
        self._axes_by_ranks: dict[tuple[int, int], tuple[int, int]] = {}

    def _axes(self, ranks: Sequence[int], shapes: Any) -> tuple[int, int]:
        """The contracted axis of each input (non-negative), as Keras resolves them: an int below zero
        modulo each input's rank (Keras wraps one below -rank too), a pair's entries as indices of the
        shapes; never the batch axis."""
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else tuple(self.axes)
        out = []
        for i, (a, rank) in enumerate(zip(pair, ranks)):
            if a >= rank or (a < -rank and not isinstance(self.axes, int)):
                raise SpecConfigError("Dot", ["axes"], "axes_in_rank",
                                      f"axes={self.axes!r}: axis {a} is not an axis of input {i} of rank {rank} "
                                      f"(-rank <= axis < rank); input shapes {shapes}")
            if a % rank == 0:
                raise SpecConfigError("Dot", ["axes"], "axes_not_batch",
                                      f"axes={self.axes!r}: axis {a} of input {i} is its batch axis, which a batch "
                                      f"dot product keeps; input shapes {shapes}")
            out.append(a % rank)
        return out[0], out[1]

    def _check(self, shapes: list[tuple[Any, ...]]) -> tuple[int, int]:
        ranks = (len(shapes[0]), len(shapes[1]))
        axes = self._axes_by_ranks.get(ranks)
        if axes is None:  # the axes depend on the ranks only: checked once per pair of ranks
            if min(ranks) < 2:
                raise self._error("each input needs a batch axis and at least one more (rank >= 2)", shapes)
            axes = self._axes_by_ranks[ranks] = self._axes(ranks, shapes)
        a0, a1 = axes
        d1, d2 = shapes[0][a0], shapes[1][a1]
        if d1 is not None and d2 is not None and d1 != d2:
            raise self._error(f"incompatible input shapes: axis values {d1} (at axis {a0}) != {d2} (at axis {a1}) "
                              f"for axes={self.axes!r}", shapes)
        b1, b2 = shapes[0][0], shapes[1][0]
        if b1 is not None and b2 is not None and b1 != b2:
            raise self._error("cannot take a batch dot product of inputs with different batch sizes", shapes)
        return a0, a1

    def build(self, input_shape: Any) -> None:
        self._check(self._check_shape_list(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        shapes = self._check_shape_list(input_shape)
        a0, a1 = self._axes([len(s) for s in shapes], shapes)
        out = [d for i, d in enumerate(shapes[0]) if i != a0] + [d for i, d in enumerate(shapes[1]) if i not in (0, a1)]
        return tuple(out + [1] if len(out) == 1 else out)

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None

    def _normalize(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        square_sum = torch.sum(torch.square(x), dim=axis, keepdim=True)
        if self._tf_keras:  # tf.linalg.l2_normalize
            inv_norm = _rsqrt(torch.clamp(square_sum, min=_in_dtype(_L2_NORMALIZE_EPSILON, x.dtype)))
        else:  # keras.ops.normalize, order 2
            inv_norm = torch.clamp(_rsqrt(square_sum), max=_in_dtype(1.0 / _KERAS3_EPSILON, x.dtype))
        return x * inv_norm

    def call(self, inputs: Any) -> torch.Tensor:
        x, y = self._input_list(inputs)
        shapes = [tuple(x.shape), tuple(y.shape)]
        a0, a1 = self._check(shapes)
        if self.normalize:
            x, y = self._normalize(x, a0), self._normalize(y, a1)
        return _batch_dot(x, y, a0, a1)


def _batch_dot(x: torch.Tensor, y: torch.Tensor, a0: int, a1: int) -> torch.Tensor:
    """Keras's ``batch_dot``: x's contracted axis moved last, y's to axis 1, one batched matmul over
    the squashed other axes; a rank-2 input is expanded first and its axis squeezed after."""
    x_rank, y_rank = x.dim(), y.dim()
    if x_rank == 2:
        x, a0 = x.unsqueeze(1), a0 + 1
    if y_rank == 2:
        y = y.unsqueeze(2)
    x = x.movedim(a0, -1)
    y = y.movedim(a1, 1)
    batch, k = x.shape[0], x.shape[-1]
    out = torch.matmul(x.reshape(batch, -1, k), y.reshape(batch, k, -1))
    out = out.reshape(x.shape[:-1] + y.shape[2:])
    if x_rank == 2:
        out = out.squeeze(1)
    elif y_rank == 2:
        out = out.squeeze(-1)
    return out


# -- the functional forms: build the layer and call it, as Keras's do ----------------------------------
def add(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Add(**kwargs)(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Subtract(**kwargs)(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Multiply(**kwargs)(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Average(**kwargs)(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Maximum(**kwargs)(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs: Sequence[torch.Tensor], **kwargs: Any) -> torch.Tensor:
    """``Minimum(**kwargs)(inputs)``."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs: Sequence[torch.Tensor], axis: int = -1, **kwargs: Any) -> torch.Tensor:
    """``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs: Sequence[torch.Tensor], axes: Any = -1, **kwargs: Any) -> torch.Tensor:
    """``Dot(axes=axes, **kwargs)(inputs)`` (Keras's functional default is ``axes=-1``; the layer's is required)."""
    return Dot(axes=axes, **kwargs)(inputs)
