"""Advanced activation layers: LeakyReLU, PReLU, ELU, ThresholdedReLU, Softmax and ReLU.

Each follows the oracle whose flavour is in force when it is constructed (:mod:`keraspec.impl.flavor`);
the two differ in argument names (LeakyReLU's ``negative_slope`` / ``alpha``, tf_keras's Softmax
``robust_masking``), in how a masked softmax treats masked positions, and in the precision of the
scalar arguments, which this module reproduces to the bit:

* TensorFlow op attributes (``tf.nn.leaky_relu``'s slope) are float32; tf_keras stores every scalar
  argument as float32 (``backend.cast_to_floatx``), so a float64 layer computes with the float32
  value; Keras 3 converts a Python float to the input's dtype directly, except where it goes
  through ``ops.cast`` (ReLU's threshold comparison and ``max_value``: a float32 tensor first).
* A constant is then rounded to the compute dtype (float16, bfloat16) before it meets the input, as
  TensorFlow converts it to a tensor of that dtype.  Every constant here is such a pre-rounded
  Python float (:func:`_rounded`): torch computes a half-precision op with a Python scalar in float32
  from the scalar's own value, so a pre-rounded scalar gives TensorFlow's result, and no per-call
  device tensor is made.

The ops are composed as Keras composes them, so the gradients agree at the kinks too: ReLU with a
threshold is ``where(x > t, x, 0)`` (tf_keras: ``x * (x > t)``) -- zero output and gradient at
``x == t`` -- while ReLU with only a slope is ``tf.nn.leaky_relu``, whose gradient at 0 is the
slope; PReLU is ``relu(x) - alpha * relu(-x)`` (zero gradient at 0, not ``F.prelu``'s alpha).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F

from keraspec.spec import SpecConfigError, SpecTypeError

from . import activations, constraints, initializers, regularizers
from .base import InputSpec, Layer, Shape

_UNSET: Any = object()
_NUMPY_DTYPES: dict[torch.dtype, Any] = {
    torch.float16: np.float16,
    torch.bfloat16: ml_dtypes.bfloat16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}


@lru_cache(maxsize=4096)
def _rounded(value: float, dtype: torch.dtype, via_float32: bool) -> float:
    """``value`` as TensorFlow holds it in a tensor of ``dtype``: first rounded to float32 when it
    comes from a float32 (a tf_keras argument, an op attribute, ``ops.cast`` of a Python float),
    then to ``dtype``."""
    v = float(value)
    if via_float32:
        v = float(np.float32(v))
    np_dtype = _NUMPY_DTYPES.get(dtype)
    return float(np.asarray(v).astype(np_dtype)) if np_dtype is not None else v


def _float32(value: float) -> float:
    return float(np.float32(value))


class _ActivationLayer(Layer):
    """Shared by the family: the flavour at construction, masks passed through, and a get_config
    that leaves out the parameters the flavour's oracle does not have (spec ``only_in``)."""

    supports_masking = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name, p in type(self).spec().params.items():
            if not p.in_oracle(self._flavor):
                config.pop(name, None)
        return config


class LeakyReLU(_ActivationLayer):
    """``x`` for ``x > 0``, ``slope * x`` otherwise; the slope defaults to 0.3 (the "leaky_relu"
    activation string's is 0.2).

    Keras 3 calls the slope ``negative_slope`` and still takes ``alpha`` (deprecated, with a
    warning); tf_keras calls it ``alpha``.  Both names are accepted here under either flavour, and
    ``get_config`` writes the flavour's name.  Keras 3 refuses a negative slope; tf_keras takes any
    number, and so does this layer under the tf_keras flavour.
    """

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        alpha = kwargs.pop("alpha", _UNSET)
        super().__init__(**kwargs)
        own = "alpha" if self._tf_keras else "negative_slope"
        slope, given = (negative_slope, "negative_slope") if alpha is _UNSET else (alpha, "alpha")
        if given == "alpha" and not self._tf_keras:
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2)
        try:
            self._configure({own: slope})
        except (SpecConfigError, SpecTypeError) as exc:
            if given == own:
                raise
            # Name the argument the caller gave as well as the one whose rule it broke.
            inner = str(exc).split(": ", 1)[1].rsplit(" [rule:", 1)[0]
            message = f"{given!r} is {own!r} under the {self._flavor} flavour: {inner}"
            raise type(exc)(self.spec().name, [given, own], exc.rule, message) from None
        # One slope under two names; get_config writes the flavour's.
        for name in ("negative_slope", "alpha"):
            self._config[name] = slope
            setattr(self, name, slope)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        slope = self.negative_slope
        if self._tf_keras and _float32(slope) == 0.0:
            return F.relu(inputs)  # tf_keras's backend.relu takes tf.nn.relu for alpha 0
        # tf.nn.leaky_relu: the slope is a float32 attribute, cast to the input's dtype by the kernel.
        return F.leaky_relu(inputs, _rounded(slope, inputs.dtype, True))


class PReLU(_ActivationLayer):
    """``relu(x) - alpha * relu(-x)`` with a learned ``alpha`` of the input's shape less the batch
    axis, of size 1 along ``shared_axes``.

    Built, the layer takes inputs of the built rank; with ``shared_axes`` it also fixes the size of
    every other axis (Keras's InputSpec), and without them an input must broadcast with ``alpha``
    (as TensorFlow's broadcasting decides; Keras checks nothing more)."""

    def __init__(
        self,
        alpha_initializer: Any = "Zeros",
        alpha_regularizer: Any = None,
        alpha_constraint: Any = None,
        shared_axes: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        # Resolved now, as Keras resolves them in the constructor: an unknown name fails here.
        initializers.get(alpha_initializer)
        regularizers.get(alpha_regularizer)
        constraints.get(alpha_constraint)

    def build(self, input_shape: Shape) -> None:
        type(self).spec().validate_input(self._config, input_shape)
        rank = len(input_shape)
        shared = tuple(self.shared_axes or ())
        shape = [1 if i in shared else input_shape[i] for i in range(1, rank)]
        self.add_weight("alpha", shape, self.alpha_initializer, self.alpha_regularizer, self.alpha_constraint)
        axes = {i: int(input_shape[i]) for i in range(1, rank) if i not in shared} if shared else {}
        self.input_spec = InputSpec(ndim=rank, axes=axes)
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha
        try:
            # Keras's pos + neg with neg = -alpha * relu(-x): the same bits (negation is exact).
            return F.relu(inputs) - alpha * F.relu(-inputs)
        except RuntimeError:
            try:
                torch.broadcast_shapes(inputs.shape, alpha.shape)
            except RuntimeError:
                pass
            else:
                raise  # not a shape problem
            raise ValueError(
                f"Input of layer '{self.name}' (PReLU) is incompatible with the layer: alpha of shape "
                f"{tuple(alpha.shape)} does not broadcast with the input. Full shape received: {tuple(inputs.shape)}"
            ) from None


class ELU(_ActivationLayer):
    """``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise: TensorFlow's Elu kernel
    (:func:`keraspec.impl.activations.elu`), then ``where(x > 0, elu, alpha * elu)`` unless alpha is 1."""

    def __init__(self, alpha: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        res = activations.elu(inputs)
        alpha = self.alpha
        if (_float32(alpha) if self._tf_keras else alpha) == 1:
            return res
        return torch.where(inputs > 0, res, _rounded(alpha, inputs.dtype, self._tf_keras) * res)


class ThresholdedReLU(_ActivationLayer):
    """``x`` for ``x > theta``, 0 otherwise (tf_keras's layer; ``theta`` is stored as float32).
    Keras 3 has no such layer; it computes the same under either flavour."""

    def __init__(self, theta: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        # x * cast(x > theta) as tf_keras computes it: -inf gives NaN and a negative x -0, where a
        # select (F.threshold, torch.where) would give 0; torch multiplies by the bool mask directly.
        return inputs * (inputs > _rounded(self.theta, inputs.dtype, True))


#: The large negative logit a masked softmax gives masked positions, by flavour and dtype.
_MASK_LOGIT = {"keras3": {torch.float16: -3e4}, "tf_keras": {torch.float16: float(np.finfo(np.float16).min) / 2.0}}


class Softmax(_ActivationLayer):
    """Softmax over ``axis`` (an int, or a list of axes: ``exp(x - logsumexp(x, axis))``), with an
    optional elementwise ``mask`` (True keeps), each oracle's way:

    * Keras 3: ``where(mask, x, L)`` (L = -3e4 in float16, else -1e9), softmax, then
      ``where(mask, y, 0)``: masked outputs are 0, a fully masked row is all zeros;
    * tf_keras: ``x + (1 - mask) * L`` (L = float16.min / 2 in float16, else -1e9), softmax, masked
      outputs kept: a fully masked row is the softmax of ``x + L`` -- uniform where ``x + L``
      rounds to ``L`` (float32, float16), ``softmax(x)`` in float64; with ``robust_masking=True``
      (tf_keras only) ``where(mask, x, L)`` instead, so a fully masked row is uniform.
    """

    def __init__(self, axis: Any = -1, **kwargs: Any) -> None:
        robust = kwargs.pop("robust_masking", _UNSET)
        super().__init__(**kwargs)
        if robust is not _UNSET and not self._tf_keras:
            raise TypeError("Softmax: unrecognized argument 'robust_masking' (a tf_keras argument; Keras 3 always "
                            "masks with where and zeroes the masked outputs) [parameter(s): robust_masking]")
        self._configure({"axis": axis} if robust is _UNSET else {"axis": axis, "robust_masking": robust})
        ok = axis is None or _is_int(axis) or isinstance(axis, (list, tuple)) and all(_is_int(a) for a in axis)
        if not ok:
            raise TypeError(f"Softmax: 'axis' must be an int, a list of ints or None, got {axis!r} "
                            f"[rule: axis.type; parameter(s): axis]")
        self.axis = list(axis) if isinstance(axis, list) else axis  # (a tuple stays a tuple, as Keras keeps it)
        self._config["axis"] = self.axis

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if not config.get("robust_masking", True):
            config.pop("robust_masking")  # tf_keras writes it only when True
        return config

    def _dims(self, x: torch.Tensor) -> tuple[int, ...]:
        if self._tf_keras and x.dim() <= 1:
            raise ValueError(f"Softmax '{self.name}': cannot apply softmax to a tensor that is 1D. "
                             f"Received input shape: {tuple(x.shape)}")
        if self.axis is None:
            axes: Any = range(x.dim())
        else:
            axes = self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]
        out = []
        for a in axes:
            if not -x.dim() <= a < x.dim():
                raise ValueError(f"Softmax '{self.name}': axis {a} is out of range for an input of shape "
                                 f"{tuple(x.shape)} [parameter(s): axis]")
            out.append(a % x.dim())
        return tuple(out)

    def call(self, inputs: torch.Tensor, mask: Any = None) -> torch.Tensor:
        x = inputs
        dims = self._dims(x)
        if mask is not None:
            mask = self._checked_mask(mask, x)
            large = _rounded(_MASK_LOGIT[self._flavor].get(x.dtype, -1e9), x.dtype, False)
            if self._tf_keras and not self.robust_masking:
                x = x + (1.0 - mask.to(x.dtype)) * large
            else:
                if mask.dtype != torch.bool:
                    mask = mask > 0.5
                x = torch.where(mask, x, large)
        if self.axis is None:
            y = torch.softmax(x.reshape(-1), dim=0).reshape(x.shape)
        elif len(dims) == 1:
            y = torch.softmax(x, dim=dims[0])
        elif not dims:  # axis=[]: logsumexp over no axis is x itself
            y = torch.exp(x - x)
        else:
            # tf.math.reduce_logsumexp, op for op: the maximum (0 where not finite) held constant.
            top = x.amax(dim=dims, keepdim=True).detach()
            top = torch.where(torch.isfinite(top), top, 0.0)
            y = torch.exp(x - (torch.log(torch.exp(x - top).sum(dim=dims, keepdim=True)) + top))
        if mask is not None and not self._tf_keras:
            y = torch.where(mask, y, 0.0)  # Keras 3 zeroes masked positions (a fully masked row too)
        return y

    def _checked_mask(self, mask: Any, x: torch.Tensor) -> torch.Tensor:
        mask = torch.as_tensor(mask, device=x.device)
        fits = mask.dim() <= x.dim() and all(m in (1, i) for m, i in zip(reversed(mask.shape), reversed(x.shape)))
        if not fits:
            raise ValueError(f"Softmax '{self.name}': the mask must be broadcastable to the inputs (each mask axis 1 "
                             f"or the input's size, no more axes). Received: inputs.shape={tuple(x.shape)}, "
                             f"mask.shape={tuple(mask.shape)}")
        return mask


class ReLU(_ActivationLayer):
    """``min(x, max_value)`` for ``x > threshold``, ``negative_slope * (x - threshold)`` otherwise,
    composed as Keras composes it (both oracles share the recipe of ``activations.relu``):
    ``leaky_relu`` when only the slope is set; otherwise ``relu`` / ``where(x > threshold, x, 0)`` /
    ``relu6`` (max_value 6 without a threshold), ``clip(0, max_value)``, minus
    ``negative_slope * relu(threshold - x)``."""

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x, dtype, f32 = inputs, inputs.dtype, self._tf_keras
        slope, max_value, threshold = self.negative_slope, self.max_value, self.threshold
        if f32:  # tf_keras compares (and computes with) the float32 values it stored
            slope, threshold = _float32(slope), _float32(threshold)
            max_value = None if max_value is None else _float32(max_value)
        negative_part = None
        if slope != 0:
            if max_value is None and threshold == 0:
                return F.leaky_relu(x, _rounded(slope, dtype, True))
            negative_part = F.relu(-x + _rounded(threshold, dtype, f32)) if threshold != 0 else F.relu(-x)
        clip = max_value is not None
        if threshold != 0:
            # Keras 3 casts the threshold with ops.cast (through a float32 tensor); tf_keras stored float32.
            above = x > _rounded(threshold, dtype, True)
            y = x * above if f32 else torch.where(above, x, 0.0)
        elif max_value == 6:
            y = F.relu6(x)
            clip = False
        else:
            y = F.relu(x)
        if clip:
            y = torch.clamp(y, 0.0, _rounded(max_value, dtype, True))
        if negative_part is not None:
            y = y - _rounded(slope, dtype, f32) * negative_part
        return y


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
