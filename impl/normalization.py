"""Normalization layers: BatchNormalization, LayerNormalization, UnitNormalization, GroupNormalization
and Keras 3's RMSNormalization.

Each layer follows the oracle whose flavour is in force when it is constructed
(:mod:`keraspec.impl.flavor`), op for op, because the two compute the same statistics differently:

* **BatchNormalization.**  Keras 3 casts the input (already cast to the compute dtype) to float32 at
  least, takes ``tf.nn.moments`` (mean, then the mean of squared differences: the *biased* variance),
  updates ``moving = moving * momentum + batch * (1 - momentum)`` and normalises with
  ``tf.nn.batch_normalization``: ``x * inv + (beta - mean * inv)``, ``inv = gamma * rsqrt(var + eps)``.
  tf_keras keeps float32 weights for a float16 / bfloat16 layer and has two paths: the plain one
  (the same statistics; ``moving - (moving - batch) * decay`` with ``decay = float32(1 - momentum)``,
  a float32 tensor even for a float64 layer) and, for rank-4/5 inputs normalised over axis 1 or the
  last axis in float32 / float16 / bfloat16 compute, the fused CPU kernel (FusedBatchNormV3):
  ``(x - mean) * (rsqrt(var + eps) * gamma) + beta``, the mean as ``sum * float32(1 / n)``, and the
  moving variance fed the *unbiased* batch variance (``n / max(n - 1, 1)``).
  ``synchronized=True`` on one device takes the cross-replica formula in both oracles
  (``max(E[x^2] - E[x]^2, 0)``, TensorFlow's default replica context is not None).
* **LayerNormalization / GroupNormalization.**  Keras 3 turns autocast off for them: the input is not
  cast to the compute dtype, the statistics are taken in float32 at least and the output is cast.
  tf_keras computes in the compute dtype (``tf.nn.moments`` upcasts float16 statistics, not
  bfloat16 ones) and runs a LayerNormalization over trailing axes through the fused kernel when its
  weights are float32 and epsilon >= 1.001e-5.
* **UnitNormalization.**  Keras 3: ``x * min(rsqrt(sum(x^2)), 1e12)``; tf_keras (``l2_normalize``):
  ``x * rsqrt(max(sum(x^2), 1e-12))``, in the compute dtype.

Python float constants are rounded the way TensorFlow converts them (to the dtype of the tensor they
meet, or to float32 first where they pass through a float32 tensor or op attribute), so each op sees
the operands the oracle's op sees.  Every update of a moving statistic happens under ``no_grad``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from keraspec.spec import SpecConfigError, SpecTypeError

from . import constraints, initializers, regularizers
from .advanced_activations import _rounded as _rounded_warns
from .base import InputSpec, Layer, Shape, torch_dtype
from .tf_math import HALF_DTYPES as _HALF
from .tf_math import rsqrt as _rsqrt
from .tf_math import sqrt as _sqrt

_UNSET: Any = object()
#: Keras 3's backend.epsilon(), the guard of its masked moments.
_KERAS_EPSILON = 1e-7


def _rounded(value: float, dtype: torch.dtype, via_float32: bool) -> float:
    """A Python float as TensorFlow holds it in a tensor of ``dtype`` (through float32 first where it
    passes through a float32 tensor); a value beyond the dtype's range is its infinity, as in TensorFlow."""
    with np.errstate(over="ignore"):
        return _rounded_warns(value, dtype, via_float32)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """``backend.result_type(dtype, "float32")``: float64 stays, anything narrower computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _tf_moments(x: torch.Tensor, dims: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``tf.nn.moments(x, dims, keepdims=True)``: float16 statistics taken in float32 and rounded back;
    the variance is the mean of squared differences from a gradient-stopped mean."""
    y = x.float() if x.dtype == torch.float16 else x
    mean = y.mean(dim=tuple(dims), keepdim=True)
    var = _squared_difference(y, mean.detach()).mean(dim=tuple(dims), keepdim=True)
    if x.dtype == torch.float16:
        return mean.half(), var.half()
    return mean, var


def _recording(*tensors: torch.Tensor | None) -> bool:
    """Whether autograd records ops on these tensors (else temporaries may be updated in place)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _squared_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``tf.math.squared_difference``: one op, rounded once in a half-precision dtype."""
    d = a.float() - b.float() if a.dtype in _HALF else a - b
    d = d.square() if _recording(a, b) else d.square_()
    return d.to(a.dtype)


def _scale_and_shift(x: torch.Tensor, inv: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x * inv + shift``, two ops (two roundings, no fused multiply-add), the sum in place: the
    product is a fresh temporary, and neither op's gradient reads it."""
    product = x * inv
    if torch.broadcast_shapes(product.shape, shift.shape) == product.shape:
        return product.add_(shift)
    return product + shift


def _minus_mean_times(mean: torch.Tensor, inv: torch.Tensor, offset: torch.Tensor | None) -> torch.Tensor:
    """``offset - mean * inv`` (``-mean * inv`` without an offset), in place on the product:
    -(mean * inv) + offset rounds as offset - mean * inv does."""
    shift = (mean * inv).neg_()
    if offset is None:
        return shift
    if torch.broadcast_shapes(shift.shape, offset.shape) == shift.shape:
        return shift.add_(offset)
    return shift + offset


def _div_no_nan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``tf.math.divide_no_nan``: 0 where the denominator is 0, whatever the numerator."""
    return torch.where(b == 0, torch.zeros((), dtype=a.dtype, device=a.device), a / torch.where(b == 0, 1, b))


def _weighted_moments(x: torch.Tensor, dims: Sequence[int], weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``tf.nn.weighted_moments(x, dims, weights, keepdims=True)``: float16 in float32 (rounded back);
    weights multiply (a masked NaN still propagates), 0 / 0 gives 0."""
    half = x.dtype == torch.float16
    if half:
        x = x.float()
    weights = weights.to(x.dtype)
    dims = tuple(dims)
    weighted_sum = (weights * x).sum(dim=dims, keepdim=True)
    sum_of_weights = (weights + torch.zeros_like(x)).sum(dim=dims, keepdim=True)
    mean = _div_no_nan(weighted_sum, sum_of_weights)
    distsq = (weights * _squared_difference(x, mean)).sum(dim=dims, keepdim=True)
    var = _div_no_nan(distsq, sum_of_weights)
    if half:
        return mean.half(), var.half()
    return mean, var


def _sync_moments(x: torch.Tensor, dims: Sequence[int], weights: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The cross-replica moments both oracles take for ``synchronized=True`` (in TensorFlow's default
    replica context on one device): sums of x and x^2 and the count, ``divide_no_nan`` and
    ``max(E[x^2] - E[x]^2, 0)``.  tf_keras multiplies x by the mask weights first."""
    dims = tuple(dims)
    if weights is not None:
        weights = weights.to(x.dtype)
        x = x * weights
        count = torch.broadcast_to(weights, x.shape).sum(dim=dims, keepdim=True)
    else:
        count = torch.ones_like(x).sum(dim=dims, keepdim=True)
    mean = _div_no_nan(x.sum(dim=dims, keepdim=True), count)
    square_mean = _div_no_nan(x.square().sum(dim=dims, keepdim=True), count)
    return mean, torch.clamp_min(square_mean - mean.square(), 0.0)


def _tf_batch_normalization(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, offset: torch.Tensor | None,
                            scale: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """``tf.nn.batch_normalization``: ``x * inv + (offset - mean * inv)``, ``inv = rsqrt(var + eps) * scale``,
    each op in the dtype of its operands (the statistics' dtype, then the input's)."""
    inv = _rsqrt(var + _rounded(epsilon, var.dtype, False))
    if scale is not None:
        inv = inv * scale
    shift = _minus_mean_times(mean, inv, offset)
    return _scale_and_shift(x, inv.to(x.dtype), shift.to(x.dtype))


def _keras3_normalize(x: torch.Tensor, dims: Sequence[int], gamma: torch.Tensor | None, beta: torch.Tensor | None,
                      eps: float) -> torch.Tensor:
    """Keras 3's layer / group normalization on ``x`` (float32 or float64): ``tf.nn.moments``, then
    ``inv = rsqrt(var + eps) * gamma``, ``res = -mean * inv + beta``, ``x * inv + res`` -- op for op.
    Without autograd the full-size temporaries are reused (one for the squared deviations, then inv,
    then the output; one for res): each fresh full-size buffer costs as much as the op."""
    if _recording(x, gamma, beta):
        mean, var = _tf_moments(x, dims)
        inv = _rsqrt(var + eps)
        if gamma is not None:
            inv = inv * gamma
        return _scale_and_shift(x, inv, _minus_mean_times(mean, inv, beta))
    mean = x.mean(dim=tuple(dims), keepdim=True)
    buf = torch.sub(x, mean).square_()
    inv = _rsqrt(buf.mean(dim=tuple(dims), keepdim=True) + eps)
    if gamma is not None:
        if torch.broadcast_shapes(inv.shape, gamma.shape) == buf.shape:
            inv = torch.mul(inv, gamma, out=buf)
        else:
            inv = inv * gamma
    res = _minus_mean_times(mean, inv, beta)
    out = inv.mul_(x) if inv is buf else x * inv  # x * inv (the product commutes exactly)
    return out.add_(res)


def _tf_maximum(x: torch.Tensor, c: float) -> torch.Tensor:
    """``tf.maximum(x, c)``: NaN propagates and a tie sends the gradient to ``x``."""
    return torch.where((x >= c) | torch.isnan(x), x, torch.full((), c, dtype=x.dtype, device=x.device))


def _tf_minimum(x: torch.Tensor, c: float) -> torch.Tensor:
    """``tf.minimum(x, c)``: NaN propagates and a tie sends the gradient to ``x``."""
    return torch.where((x <= c) | torch.isnan(x), x, torch.full((), c, dtype=x.dtype, device=x.device))


def _axis_list(axis: Any) -> list[int]:
    return [axis] if _is_int(axis) else list(axis)


class _Normalization(Layer):
    """Shared by the family: the flavour at construction, masks passed through, a get_config without
    the parameters the flavour's oracle lacks, and Keras's autocast rules per layer and oracle
    (``_autocast_inputs`` / ``_autocast_weights``: whether the input is cast to the compute dtype
    before ``call``, and whether a mixed policy's float32 weights are read as compute-dtype casts)."""

    supports_masking = True

    def _autocast_inputs(self) -> bool:
        return True

    def _autocast_weights(self) -> bool:
        return False

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        if not self._autocast_inputs():
            return x  # Keras 3 with autocast off: the layer takes the input's own dtype
        return super()._cast(x)

    def _call_with_compute_weights(self, inputs: Any, kwargs: dict[str, Any]) -> Any:
        if not self._autocast_weights():
            return self.call(inputs, **kwargs)  # weights created with autocast=False: read as stored
        return super()._call_with_compute_weights(inputs, kwargs)

    def _refuse_foreign(self, given: dict[str, Any]) -> None:
        """A parameter the flavour's oracle does not have is refused as that oracle refuses an unknown
        keyword argument (TypeError naming it)."""
        spec_params = type(self).spec().params
        foreign = [name for name in given if name in spec_params and not spec_params[name].in_oracle(self._flavor)]
        if foreign:
            raise SpecTypeError(type(self).spec().name, foreign, "unknown_argument",
                                f"unrecognized argument(s) {foreign} under the {self._flavor} flavour "
                                f"(the other oracle's parameters)")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name, p in type(self).spec().params.items():
            if not p.in_oracle(self._flavor):
                config.pop(name, None)
        return config

    def _axes(self, axis: Any, shape: Sequence[Any]) -> list[int]:
        """``axis`` (an int or a list) as non-negative axes of an input of ``shape``; ValueError naming
        the layer, the axis and the shape when one is out of range or repeated."""
        rank = len(shape)
        out = []
        for a in _axis_list(axis):
            if not -rank <= a < rank:
                raise ValueError(f"{type(self).__name__} '{self.name}': axis {a} is out of range for an input of shape "
                                 f"{tuple(shape)} [rule: axis_in_input; parameter(s): axis]")
            out.append(a % rank)
        if len(set(out)) != len(out):
            raise ValueError(f"{type(self).__name__} '{self.name}': duplicate axis in axis={axis!r} for an input of shape "
                             f"{tuple(shape)} [rule: axis_unique; parameter(s): axis]")
        return out

    def _check_axis_type(self, axis: Any, allow_list: bool = True) -> None:
        ok = _is_int(axis) or (allow_list and isinstance(axis, (list, tuple)) and all(_is_int(a) for a in axis))
        if not ok:
            what = "an int or a list/tuple of ints" if allow_list else "an int"
            raise SpecTypeError(type(self).spec().name, ["axis"], "axis.type", f"'axis' must be {what}, got {axis!r}")

    def _add(self, name: str, shape: Sequence[int], initializer: Any, regularizer: Any = None, constraint: Any = None,
             trainable: bool = True, dtype: str | None = None) -> torch.nn.Parameter:
        """``add_weight`` in ``dtype`` (default: the variable dtype)."""
        saved = self.variable_dtype
        self.variable_dtype = dtype or saved
        try:
            return self.add_weight(name, shape, initializer, regularizer, constraint, trainable=trainable)
        finally:
            self.variable_dtype = saved

    def _resolve_objects(self, *names: str) -> None:
        """Resolve initializers, regularizers and constraints now, as Keras does in the constructor (an
        unknown name fails here)."""
        for name in names:
            value = getattr(self, name)
            kind = name.rsplit("_", 1)[1]
            {"initializer": initializers.get, "regularizer": regularizers.get, "constraint": constraints.get}[kind](value)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        axis = getattr(self, "axis", -1)
        for a in _axis_list(axis):
            if not -len(shape) <= a < len(shape):
                raise ValueError(f"{type(self).__name__} '{self.name}': axis {a} is out of bounds for input shape {shape} "
                                 f"[parameter(s): axis]")
        return shape

    def _shape_error(self, what: str, x: torch.Tensor) -> ValueError:
        return ValueError(f"Input of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: {what}. "
                          f"Full shape received: {tuple(x.shape)}")


# -- BatchNormalization -------------------------------------------------------------------------------
class BatchNormalization(_Normalization):
    """Batch normalization, each oracle's way (see the module doc): Keras 3's, tf_keras's plain path,
    or tf_keras's fused kernel (unbiased moving variance).  Weights: gamma, beta, moving_mean,
    moving_variance (the last two non-trainable), and with ``renorm`` moving_stddev, renorm_mean,
    renorm_stddev.  Under tf_keras a list ``axis`` gives weights of the input's rank (1 on the other
    axes) and ``virtual_batch_size`` two leading axes of size 1; Keras 3 takes one int axis."""

    def __init__(
        self,
        axis: Any = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        renorm: bool = False,
        renorm_clipping: Any = None,
        renorm_momentum: float = 0.99,
        synchronized: bool = False,
        **kwargs: Any,
    ) -> None:
        extra = {k: kwargs.pop(k) for k in ("fused", "virtual_batch_size") if k in kwargs}
        super().__init__(**kwargs)
        self._refuse_foreign(extra)
        self._check_axis_type(axis, allow_list=self._tf_keras)
        args = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "extra", "__class__")}
        self._configure({**args, **extra})
        self.axis = list(axis) if isinstance(axis, list) else axis  # (a tuple stays a tuple, as tf_keras keeps it)
        self._config["axis"] = self.axis
        self._resolve_objects("beta_initializer", "gamma_initializer", "moving_mean_initializer",
                              "moving_variance_initializer", "beta_regularizer", "gamma_regularizer",
                              "beta_constraint", "gamma_constraint")
        if renorm:
            clipping = renorm_clipping or {}
            unknown = set(clipping) - {"rmax", "rmin", "dmax"}
            if unknown:
                raise SpecConfigError("BatchNormalization", ["renorm_clipping"], "renorm_clipping.keys",
                                      f"'renorm_clipping' takes the keys rmax, rmin, dmax; got {sorted(unknown)}")
            if not self._tf_keras:  # Keras 3's own checks of the values
                rmax, rmin, dmax = clipping.get("rmax"), clipping.get("rmin"), clipping.get("dmax")
                if rmax is not None and rmin is not None and rmax < rmin:
                    raise SpecConfigError("BatchNormalization", ["renorm_clipping"], "renorm_clipping.rmax",
                                          f"'renorm_clipping' rmax must be >= rmin, got rmax={rmax}, rmin={rmin}")
                if dmax is not None and dmax < 0:
                    raise SpecConfigError("BatchNormalization", ["renorm_clipping"], "renorm_clipping.dmax",
                                          f"'renorm_clipping' dmax must be >= 0, got {dmax}")
        self._fused: bool | None = None
        if self._tf_keras:
            fused = self.fused
            if synchronized and fused:
                raise SpecConfigError("BatchNormalization", ["fused", "synchronized"], "fused.synchronized",
                                      "'fused'=True is not supported when 'synchronized'=True")
            if synchronized:
                fused = False
            if fused:
                problem = self._fused_problem()
                if problem:
                    raise SpecConfigError("BatchNormalization", ["fused"], "fused.usable", f"'fused'=True: {problem}")
            elif fused is None and self._fused_problem():
                fused = False
            self._fused = fused

    def _fused_problem(self) -> str | None:
        """Why tf_keras cannot fuse this config (its ``_raise_if_fused_cannot_be_used``), or None."""
        axes = _axis_list(self.axis)
        if self.renorm:
            return "not supported with renorm"
        if len(axes) > 1 or axes[0] not in (-4, -3, -1, 1, 3, 4):
            return f"only supported for axis 1 or 3 (rank 4) / 1 or 4 (rank 5), got axis {axes}"
        if self.virtual_batch_size is not None:
            return "not supported with virtual_batch_size"
        if self.compute_dtype not in ("float16", "bfloat16", "float32"):
            return f"only supported for a float32, float16 or bfloat16 compute dtype, got {self.compute_dtype}"
        return None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.renorm and self.renorm_clipping is None:
            config["renorm_clipping"] = {}  # both oracles store `renorm_clipping or {}` with renorm
        return config

    # -- build ----------------------------------------------------------------------------------------
    def _param_dtype(self) -> str:
        # tf_keras raises the parameters of a float16 / bfloat16 batch norm to float32.
        if self._tf_keras and self.variable_dtype in ("float16", "bfloat16"):
            return "float32"
        return self.variable_dtype

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        rank = len(shape)
        axes = self._axes(self.axis, shape)
        vbs = self.virtual_batch_size
        if self._tf_keras and self._fused in (None, True):
            if self._fused is None:
                self._fused = rank in (4, 5)
            elif rank not in (4, 5):
                raise ValueError(f"BatchNormalization '{self.name}': fused=True supports 4D or 5D inputs only; "
                                 f"received input shape {shape} [parameter(s): fused]")
            if self._fused:
                if (axes == [1] and rank in (4, 5)) or (axes == [rank - 1] and rank in (4, 5)):
                    pass
                elif rank == 5:
                    self._fused = False
                else:
                    raise ValueError(f"BatchNormalization '{self.name}': unsupported axis {tuple(axes)} for the fused "
                                     f"kernel: rank-4 inputs take axis 1 or 3; received input shape {shape} "
                                     f"[parameter(s): axis, fused]")
        if any(shape[a] is None for a in axes):
            raise ValueError(f"BatchNormalization '{self.name}': the input has an undefined axis {axes} dimension; "
                             f"received input shape {shape} [parameter(s): axis]")
        if vbs is not None and 0 in axes:
            raise ValueError(f"BatchNormalization '{self.name}': with virtual_batch_size the batch axis cannot be "
                             f"normalised (axis={self.axis}) [parameter(s): axis, virtual_batch_size]")
        if len(axes) == 1 and vbs is None:
            param_shape: list[int] = [int(shape[axes[0]])]
        else:
            param_shape = [int(shape[i]) if i in axes else 1 for i in range(rank)]
            if vbs is not None:
                param_shape.insert(1, 1)
        self._axes_built = axes
        self._rank = rank
        self._param_shape = tuple(param_shape)
        dtype = self._param_dtype()
        if self.scale:
            self._add("gamma", param_shape, self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint,
                      dtype=dtype)
        else:
            self.gamma = None
        if self.center:
            self._add("beta", param_shape, self.beta_initializer, self.beta_regularizer, self.beta_constraint,
                      dtype=dtype)
        else:
            self.beta = None
        self._add("moving_mean", param_shape, self.moving_mean_initializer, trainable=False, dtype=dtype)
        self._add("moving_variance", param_shape, self.moving_variance_initializer, trainable=False, dtype=dtype)
        if self.renorm:
            device = self._device or torch.device("cpu")

            def stddev_init(name: str) -> None:
                param = self._add(name, param_shape, "zeros", trainable=False, dtype=dtype)
                init = initializers.get(self.moving_variance_initializer)
                with torch.no_grad():
                    param.copy_(torch.sqrt(init(tuple(param_shape), dtype=torch_dtype(dtype), device=device)))

            stddev_init("moving_stddev")
            self._add("renorm_mean", param_shape, self.moving_mean_initializer, trainable=False, dtype=dtype)
            stddev_init("renorm_stddev")
        self.input_spec = InputSpec(ndim=rank, axes={a: int(shape[a]) for a in axes})
        self.built = True

    # -- call -----------------------------------------------------------------------------------------
    def call(self, inputs: torch.Tensor, training: bool = False, mask: Any = None) -> torch.Tensor:
        if mask is not None:
            mask = torch.as_tensor(mask, device=inputs.device)
            if mask.dim() != inputs.dim() - 1:
                raise ValueError(f"BatchNormalization '{self.name}': the mask must have one axis less than the inputs; "
                                 f"received mask.shape={tuple(mask.shape)}, inputs.shape={tuple(inputs.shape)}")
        if self._tf_keras:
            training = training and self.trainable  # tf_keras runs a frozen batch norm in inference
            if self._fused:
                return self._call_fused(inputs, training)
            return self._call_tf_keras(inputs, training, mask)
        return self._call_keras3(inputs, training, mask)

    def _bshape(self, ndim: int) -> tuple[int, ...]:
        """The shape a weight broadcasts against an input of ``ndim`` axes in."""
        if len(self._param_shape) == ndim:
            return self._param_shape
        shape = [1] * ndim
        shape[self._axes_built[0]] = self._param_shape[0]
        return tuple(shape)

    def _reduction_axes(self, ndim: int) -> list[int]:
        return [i for i in range(ndim) if i not in self._axes_built]

    def _assign(self, name: str, value: torch.Tensor) -> None:
        param = getattr(self, name)
        param.copy_(value.reshape(param.shape))

    def _momentum_weights(self, momentum: float) -> tuple[float, float]:
        """The weights of the old moving value and of the batch's in a moving-average update, as Python
        floats: Keras's ``momentum`` is the decay, the old value's weight (torch's BatchNorm momentum is
        the batch's)."""
        return momentum, 1.0 - momentum

    def _clipping(self) -> tuple[float | None, float | None, float | None]:
        clipping = self.renorm_clipping or {}
        return clipping.get("rmin"), clipping.get("rmax"), clipping.get("dmax")

    def _call_keras3(self, x: torch.Tensor, training: bool, mask: Any) -> torch.Tensor:
        out_dtype = x.dtype
        work = _work_dtype(x.dtype)
        x = x.to(work)
        shape = self._bshape(x.dim())

        def read(name: str) -> torch.Tensor:
            return getattr(self, name).to(work).reshape(shape)

        gamma = read("gamma") if self.scale else None
        beta = read("beta") if self.center else None
        moving_mean, moving_variance = read("moving_mean"), read("moving_variance")
        eps = self.epsilon
        if training and self.trainable:
            mean, var = self._moments_keras3(x, mask)
            keep, take = (_rounded(w, work, False) for w in self._momentum_weights(self.momentum))
            if self.renorm:
                stddev = _sqrt(var + _rounded(eps, work, False))
                renorm_mean = read("renorm_mean")
                # ops.cast(self.epsilon, dtype) converts the Python float through a float32 tensor.
                renorm_stddev = torch.maximum(read("renorm_stddev"),
                                              torch.sqrt(torch.tensor(_rounded(eps, work, True), dtype=work, device=x.device)))
                r = stddev / renorm_stddev
                d = (mean - renorm_mean) / renorm_stddev
                rmin, rmax, dmax = self._clipping()
                if rmin is not None:
                    r = torch.maximum(r, torch.tensor(_rounded(rmin, work, False), dtype=work, device=x.device))
                if rmax is not None:
                    r = torch.minimum(r, torch.tensor(_rounded(rmax, work, False), dtype=work, device=x.device))
                if dmax is not None:
                    d = torch.clamp(d, _rounded(-dmax, work, False), _rounded(dmax, work, False))
                r, d = r.detach(), d.detach()
                if gamma is not None:
                    gamma, shift = r * gamma, d * gamma
                else:
                    gamma, shift = r, d
                beta = shift if beta is None else shift + beta
                rkeep, rtake = (_rounded(w, work, False) for w in self._momentum_weights(self.renorm_momentum))
                with torch.no_grad():
                    stats = (mean.detach(), stddev.detach())
                    self._assign("renorm_mean", renorm_mean * rkeep + stats[0] * rtake)
                    self._assign("renorm_stddev", read("renorm_stddev") * rkeep + stats[1] * rtake)
                    self._assign("moving_mean", moving_mean * keep + stats[0] * take)
                    new_stddev = read("moving_stddev") * keep + stats[1] * take
                    self._assign("moving_stddev", new_stddev)
                    self._assign("moving_variance", torch.relu(new_stddev * new_stddev - _rounded(eps, work, False)))
            else:
                with torch.no_grad():
                    self._assign("moving_mean", moving_mean * keep + mean.detach() * take)
                    self._assign("moving_variance", moving_variance * keep + var.detach() * take)
        else:
            mean, var = moving_mean, moving_variance
        y = _tf_batch_normalization(x, mean, var, beta, gamma, eps)
        return y.to(out_dtype)

    def _moments_keras3(self, x: torch.Tensor, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
        dims = self._reduction_axes(x.dim())
        if mask is None:
            if self.synchronized:
                return _sync_moments(x, dims)
            return _tf_moments(x, dims)
        # Keras 3's masked moments: sums over where(mask, ., 0) divided by (count + backend.epsilon()).
        keep = torch.broadcast_to(mask.to(torch.bool).unsqueeze(-1), x.shape)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        count = keep.to(x.dtype).sum(dim=dims, keepdim=True) + _rounded(_KERAS_EPSILON, x.dtype, False)
        mean = torch.where(keep, x, zero).sum(dim=dims, keepdim=True) / count
        var = torch.where(keep, x - mean, zero).square().sum(dim=dims, keepdim=True) / count
        return mean, var

    def _call_tf_keras(self, x: torch.Tensor, training: bool, mask: Any) -> torch.Tensor:
        in_dtype = x.dtype
        vbs = self.virtual_batch_size
        original = tuple(x.shape)
        if vbs is not None:
            rest = tuple(x.shape[1:])
            try:
                x = x.reshape((vbs, -1) + rest if training else (-1, 1) + rest)
            except RuntimeError:
                raise ValueError(f"BatchNormalization '{self.name}': virtual_batch_size={vbs} does not divide the batch; "
                                 f"received input shape {original} [parameter(s): virtual_batch_size]") from None
        if x.dtype in _HALF:
            x = x.float()  # all math in float32 for 16-bit inputs
        ndim = x.dim()
        axes = [a + 1 for a in self._axes_built] if vbs is not None else self._axes_built
        dims = [i for i in range(ndim) if i not in axes]
        if vbs is not None:
            del dims[1]
        param_dtype = torch_dtype(self._param_dtype())
        shape = self._bshape(ndim) if vbs is None else self._param_shape

        def read(name: str) -> torch.Tensor:
            return getattr(self, name).reshape(shape)

        scale = read("gamma") if self.scale else None
        offset = read("beta") if self.center else None
        if not training:
            mean, var = read("moving_mean"), read("moving_variance")
        else:
            y = x.to(param_dtype)
            if self.synchronized:
                weights = None if mask is None else mask.to(param_dtype).unsqueeze(-1)
                mean, var = _sync_moments(y, dims, weights)
            elif mask is None:
                mean, var = _tf_moments(y, dims)
            else:
                mean, var = _weighted_moments(y, dims, mask.to(torch_dtype(self.compute_dtype)).unsqueeze(-1))
            if vbs is not None:
                new_mean, new_var = mean.mean(dim=1, keepdim=True), var.mean(dim=1, keepdim=True)
            else:
                new_mean, new_var = mean, var
            eps = self.epsilon
            if self.renorm:
                decay = _rounded(self._momentum_weights(self.renorm_momentum)[1], param_dtype, True)
                stddev = _sqrt(new_var + _rounded(eps, param_dtype, False))
                renorm_mean = read("renorm_mean")
                renorm_stddev = torch.maximum(read("renorm_stddev"),
                                              torch.sqrt(torch.tensor(_rounded(eps, torch.float32, False), device=x.device)).to(param_dtype))
                r = stddev / renorm_stddev
                d = (new_mean - renorm_mean) / renorm_stddev
                rmin, rmax, dmax = self._clipping()
                if rmin is not None:
                    r = torch.maximum(r, torch.tensor(_rounded(rmin, param_dtype, True), dtype=param_dtype, device=x.device))
                if rmax is not None:
                    r = torch.minimum(r, torch.tensor(_rounded(rmax, param_dtype, True), dtype=param_dtype, device=x.device))
                if dmax is not None:
                    d = torch.maximum(d, torch.tensor(_rounded(-dmax, param_dtype, True), dtype=param_dtype, device=x.device))
                    d = torch.minimum(d, torch.tensor(_rounded(dmax, param_dtype, True), dtype=param_dtype, device=x.device))
                with torch.no_grad():
                    rm_old, rs_old = read("renorm_mean"), read("renorm_stddev")
                    self._assign("renorm_mean", rm_old - (rm_old - new_mean.detach()) * decay)
                    self._assign("renorm_stddev", rs_old - (rs_old - stddev.detach()) * decay)
                r, d = r.detach(), d.detach()
                # tf_keras's _compose_transforms(r, d, gamma, beta): (r * gamma, d * gamma + beta).
                if scale is not None:
                    r, d = r * scale, d * scale
                if offset is not None:
                    d = d + offset
                scale, offset = r, d
            decay = _rounded(self._momentum_weights(self.momentum)[1], param_dtype, True)
            with torch.no_grad():
                old = read("moving_mean")
                self._assign("moving_mean", old - (old - new_mean.detach().to(param_dtype)) * decay)
                if self.renorm:
                    old = read("moving_stddev")
                    target = torch.sqrt(new_var.detach() + _rounded(eps, param_dtype, False))
                    moving_stddev = old - (old - target) * decay
                    self._assign("moving_stddev", moving_stddev)
                    self._assign("moving_variance",
                                 torch.relu(moving_stddev * moving_stddev - _rounded(eps, param_dtype, False)))
                else:
                    old = read("moving_variance")
                    self._assign("moving_variance", old - (old - new_var.detach().to(param_dtype)) * decay)
        work = x.dtype
        y = _tf_batch_normalization(x, mean.to(work), var.to(work), None if offset is None else offset.to(work),
                                    None if scale is None else scale.to(work), self.epsilon)
        if in_dtype in _HALF:
            y = y.to(in_dtype)
        if vbs is not None:
            y = y.reshape(original)
        return y

    def _call_fused(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        """tf_keras's FusedBatchNormV3 CPU kernel, in float32 for every input dtype it takes."""
        in_dtype = x.dtype
        xf = x.float()
        axis = self._axes_built[0]
        dims = [i for i in range(x.dim()) if i != axis]
        shape = self._bshape(x.dim())
        gamma = self.gamma.reshape(shape) if self.scale else None
        beta = self.beta.reshape(shape) if self.center else None
        eps = _rounded(self.epsilon, torch.float32, False)  # a float32 op attribute
        if training:
            n = x.numel() // x.shape[axis]
            inv_n = _rounded(1.0 / n, torch.float32, False)  # static_cast<U>(1.0f / rest_size)
            mean = xf.sum(dim=dims, keepdim=True) * inv_n
            centered = xf - mean
            var = centered.square().sum(dim=dims, keepdim=True) * inv_n
        else:
            mean = self.moving_mean.reshape(shape)
            var = self.moving_variance.reshape(shape)
            centered = xf - mean
        factor = _rsqrt(var + eps)
        if gamma is not None:
            factor = factor * gamma
        y = centered * factor
        if beta is not None:
            y = y + beta
        if training:
            f = _rounded(self._momentum_weights(self.momentum)[1], torch.float32, True)  # exponential_avg_factor
            adjust = _rounded(float(n) / float(max(n - 1, 1)), torch.float32, True)
            with torch.no_grad():
                batch_mean, batch_var = mean.detach(), var.detach()
                if f == 1.0:
                    new_mean, new_var = batch_mean, batch_var * adjust
                else:
                    keep = _rounded(1.0 - f, torch.float32, True)
                    new_mean = keep * self.moving_mean.reshape(shape) + f * batch_mean
                    new_var = keep * self.moving_variance.reshape(shape) + _rounded(f * adjust, torch.float32, True) * batch_var
                self._assign("moving_mean", new_mean)
                self._assign("moving_variance", new_var)
        return y.to(in_dtype)


# -- LayerNormalization ----------------------------------------------------------------------------
class LayerNormalization(_Normalization):
    """Layer normalization over ``axis`` (per sample), each oracle's way (see the module doc), with
    Keras 3's deprecated ``rms_scaling`` (x * gamma / sqrt(var + eps), no centering, no beta)."""

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        rms_scaling = kwargs.pop("rms_scaling", _UNSET)
        super().__init__(**kwargs)
        if rms_scaling is not _UNSET and self._tf_keras:
            raise SpecTypeError("LayerNormalization", ["rms_scaling"], "unknown_argument",
                                "unrecognized argument 'rms_scaling' under the tf_keras flavour (a Keras 3 argument)")
        self._check_axis_type(axis)
        self._configure({k: v for k, v in locals().items() if k not in ("self", "kwargs", "rms_scaling", "__class__")})
        # Keras 3's deprecated rms_scaling is outside the spec (excluded_params): kept here, reported by
        # get_config under the keras3 flavour.
        self.rms_scaling = False if rms_scaling is _UNSET else rms_scaling
        if self.rms_scaling:
            warnings.warn("You passed `rms_scaling=True`, which is deprecated. This argument incorrectly scales the "
                          "input by the variance, not the root mean square. To correctly use RMS Normalization, "
                          "please use `RMSNormalization` instead.", stacklevel=2)
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        self._config["axis"] = self.axis
        self._resolve_objects("beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer",
                              "beta_constraint", "gamma_constraint")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self.rms_scaling and not self._tf_keras:
            config["rms_scaling"] = self.rms_scaling  # (Keras 3 writes it always; the spec leaves it out)
        return config

    def _autocast_inputs(self) -> bool:
        return self._tf_keras  # Keras 3 sets autocast = False

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        axes = self._axes(self.axis, shape)
        if self._tf_keras:
            order = axes  # tf_keras keeps the given order
        else:
            order = [a % len(shape) for a in sorted(_axis_list(self.axis))]  # Keras 3 sorts the given axes
        param_shape = [int(shape[a]) for a in order]
        rms = bool(self.rms_scaling) and not self._tf_keras
        if self.scale or rms:
            self._add("gamma", param_shape, self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint)
        else:
            self.gamma = None
        if self.center and not rms:
            self._add("beta", param_shape, self.beta_initializer, self.beta_regularizer, self.beta_constraint)
        else:
            self.beta = None
        self._order = order
        self._rms = rms
        # tf_keras's fused path: the axes contiguous up to the last, epsilon >= 1.001e-5, float32 weights.
        s = sorted(axes)
        self._fused = (self._tf_keras and s[-1] == len(shape) - 1 and s[-1] - s[0] == len(s) - 1
                       and self.epsilon >= 1.001e-5 and self.variable_dtype == "float32")
        self.built = True  # no InputSpec, as in Keras: an input the weights do not fit fails in the math

    def _broadcast(self, v: torch.Tensor | None, x: torch.Tensor, dims: list[int]) -> torch.Tensor | None:
        """gamma or beta as Keras broadcasts them: as they are when the only normalised axis is the
        last (a weight of size 1 then broadcasts), else reshaped to the input's sizes on the
        normalised axes (1 elsewhere)."""
        if v is None:
            return v
        # Keras 3 compares its sorted given axes with [ndim - 1] (so -1 is reshaped too); tf_keras its
        # axes made non-negative at build.
        given = dims if self._tf_keras else sorted(_axis_list(self.axis))
        if given == [x.dim() - 1]:
            return v
        shape = [1] * x.dim()
        for a in dims:
            shape[a] = x.shape[a]
        return v.reshape(shape)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        try:
            return self._normalize(inputs)
        except RuntimeError as exc:
            if "shape" not in str(exc) and "size" not in str(exc):
                raise
            raise self._shape_error(f"the weights ({', '.join(f'{w}: {tuple(getattr(self, w).shape)}' for w in self.weight_names)}) "
                                    f"do not fit the normalised axes {self.axis}", inputs) from None

    def _normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        dims = sorted(self._axes(self.axis, tuple(x.shape)))
        if self._tf_keras:
            return self._call_tf_keras(x, dims)
        out_dtype = self._compute_dtype
        work = _work_dtype(x.dtype)
        x = x.to(work)
        gamma = self._broadcast(self.gamma, x, dims)
        beta = self._broadcast(self.beta, x, dims)
        gamma = None if gamma is None else gamma.to(work)
        beta = None if beta is None else beta.to(work)
        eps = _rounded(self.epsilon, work, False)
        if self._rms:
            # backend.numpy.var: tf.math.reduce_variance (mean, then the mean of squared deviations).
            mean = x.mean(dim=dims, keepdim=True)
            var = (x - mean).abs().square().mean(dim=dims, keepdim=True)
            y = x * _rsqrt(var + eps)
            if gamma is not None:
                y = y * gamma
            return y.to(out_dtype)
        return _keras3_normalize(x, dims, gamma, beta, eps).to(out_dtype)

    def _call_tf_keras(self, x: torch.Tensor, dims: list[int]) -> torch.Tensor:
        gamma = self._broadcast(self.gamma, x, dims)
        beta = self._broadcast(self.beta, x, dims)
        if self._fused:
            # FusedBatchNormV3 on the input viewed as NCHW (1, before, normalised, 1): per row, in float32.
            start = dims[0]
            rows = x.reshape(int(math.prod(x.shape[:start])), -1).float()
            n = rows.shape[1]
            inv_n = _rounded(1.0 / n, torch.float32, False)
            mean = rows.sum(dim=1, keepdim=True) * inv_n
            centered = rows - mean
            squares = centered.square()
            factor = _rsqrt(squares.sum(dim=1, keepdim=True) * inv_n + _rounded(self.epsilon, torch.float32, False))
            free = not _recording(x, gamma, beta)
            y = torch.mul(centered, factor, out=squares) if free else centered * factor  # (reuses the squares)
            y = y.to(x.dtype).reshape(x.shape)
            if gamma is not None:
                y = y.mul_(gamma.to(y.dtype)) if free and y.shape == torch.broadcast_shapes(y.shape, gamma.shape) \
                    else y * gamma.to(y.dtype)
            if beta is not None:
                y = y.add_(beta.to(y.dtype)) if free and y.shape == torch.broadcast_shapes(y.shape, beta.shape) \
                    else y + beta.to(y.dtype)
            return y
        in_dtype = x.dtype
        if in_dtype in _HALF and self.variable_dtype == "float32":
            x = x.float()  # mixed precision: at least as stable as the fused path
        mean, var = _tf_moments(x, dims)
        y = _tf_batch_normalization(x, mean, var, beta, gamma, self.epsilon)
        return y.to(in_dtype)


# -- UnitNormalization -----------------------------------------------------------------------------
class UnitNormalization(_Normalization):
    """Scales each sample to unit L2 norm over ``axis``, in the compute dtype: Keras 3
    ``x * min(rsqrt(sum(x^2)), 1 / 1e-12)``, tf_keras ``x * rsqrt(max(sum(x^2), 1e-12))``."""

    def __init__(self, axis: Any = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check_axis_type(axis)
        self._configure(locals())
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        self._config["axis"] = self.axis

    def build(self, input_shape: Shape) -> None:
        self._axes(self.axis, tuple(input_shape))
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        dims = self._axes(self.axis, tuple(x.shape))
        square_sum = x.square().sum(dim=dims, keepdim=True)
        if self._tf_keras:
            return x * _rsqrt(_tf_maximum(square_sum, _rounded(1e-12, x.dtype, False)))
        inv = _tf_minimum(_rsqrt(square_sum), _rounded(1.0 / 1e-12, x.dtype, False))
        return x * inv


# -- GroupNormalization ----------------------------------------------------------------------------
class GroupNormalization(_Normalization):
    """Group normalization: the ``axis`` channels in ``groups`` groups, each sample's group normalised
    over its channels and the other non-batch axes; gamma and beta per channel.  Keras 3 computes in
    float32 at least from the uncast input; tf_keras in the compute dtype with
    ``tf.nn.weighted_moments``, and takes a mask (of the input's shape) as the weights."""

    def __init__(
        self,
        groups: int = 32,
        axis: int = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self._resolve_objects("beta_initializer", "gamma_initializer", "beta_regularizer", "gamma_regularizer",
                              "beta_constraint", "gamma_constraint")

    def _autocast_inputs(self) -> bool:
        return self._tf_keras  # Keras 3 sets autocast = False

    def _autocast_weights(self) -> bool:
        return self._tf_keras  # tf_keras's weights autocast (Keras 3 creates them with autocast=False)

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        (axis,) = self._axes(self.axis, shape)
        dim = shape[axis]
        if dim is None:
            raise ValueError(f"GroupNormalization '{self.name}': axis {self.axis} of the input should have a defined "
                             f"dimension; received input shape {shape} [parameter(s): axis]")
        groups = int(dim) if self.groups == -1 else self.groups
        if dim < groups:
            raise ValueError(f"GroupNormalization '{self.name}': the number of groups ({groups}) cannot be more than the "
                             f"number of channels ({dim}); input shape {shape} [rule: groups_divide_channels; "
                             f"parameter(s): groups]")
        if dim % groups != 0:
            raise ValueError(f"GroupNormalization '{self.name}': the number of groups ({groups}) must divide the number "
                             f"of channels ({dim}); input shape {shape} [rule: groups_divide_channels; "
                             f"parameter(s): groups]")
        self._groups, self._axis_built = groups, axis
        if self.scale:
            self._add("gamma", (int(dim),), self.gamma_initializer, self.gamma_regularizer, self.gamma_constraint)
        else:
            self.gamma = None
        if self.center:
            self._add("beta", (int(dim),), self.beta_initializer, self.beta_regularizer, self.beta_constraint)
        else:
            self.beta = None
        self.input_spec = InputSpec(ndim=len(shape), axes={self.axis: int(dim)})
        self.built = True

    def _grouped(self, t: torch.Tensor) -> torch.Tensor:
        axis, groups = self._axis_built, self._groups
        shape = list(t.shape)
        shape[axis: axis + 1] = [groups, shape[axis] // groups]
        return t.reshape(shape)

    def _group_weight(self, w: torch.Tensor | None, ndim: int) -> torch.Tensor | None:
        if w is None:
            return None
        shape = [1] * (ndim + 1)
        shape[self._axis_built] = self._groups
        shape[self._axis_built + 1] = w.shape[0] // self._groups
        return w.reshape(shape)

    def call(self, inputs: torch.Tensor, mask: Any = None) -> torch.Tensor:
        x = inputs
        grouped = self._grouped(x)
        axis = self._axis_built
        dims = [i for i in range(1, grouped.dim()) if i != axis]
        gamma = self._group_weight(self.gamma, x.dim())
        beta = self._group_weight(self.beta, x.dim())
        if self._tf_keras:
            if mask is None:
                weights = torch.ones_like(grouped)
            else:
                mask = torch.as_tensor(mask, device=x.device)
                try:
                    weights = self._grouped(torch.broadcast_to(mask, x.shape))
                except RuntimeError:
                    raise ValueError(f"GroupNormalization '{self.name}': the mask of shape {tuple(mask.shape)} does not "
                                     f"broadcast to the input of shape {tuple(x.shape)}") from None
                weights = weights.to(grouped.dtype)
            mean, var = _weighted_moments(grouped, dims, weights)
            y = _tf_batch_normalization(grouped, mean, var, beta, gamma, self.epsilon)
            return y.reshape(x.shape)
        work = _work_dtype(grouped.dtype)
        g = grouped.to(work)
        y = _keras3_normalize(g, dims, None if gamma is None else gamma.to(work), None if beta is None else beta.to(work),
                              _rounded(self.epsilon, work, False))
        return y.reshape(x.shape).to(self._compute_dtype)


# -- RMSNormalization ------------------------------------------------------------------------------
class RMSNormalization(_Normalization):
    """Keras 3's RMS normalization: ``x * rsqrt(mean(x^2 over axis) + epsilon) * scale`` in float32 at
    least; the ``scale`` weight (ones) has the normalised axes' shape.  No masking."""

    supports_masking = False

    def __init__(self, axis: Any = -1, epsilon: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check_axis_type(axis)
        self._configure(locals())
        self.axis = list(axis) if isinstance(axis, (list, tuple)) else axis
        self._config["axis"] = self.axis

    def _autocast_weights(self) -> bool:
        return True  # a plain add_weight: a mixed policy reads scale as its compute-dtype cast

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        self._axes(self.axis, shape)
        order = [a % len(shape) for a in sorted(_axis_list(self.axis))]
        self._add("scale", [int(shape[a]) for a in order], "ones")
        self.built = True  # no InputSpec, as in Keras: an input the scale does not fit fails in the math

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        try:
            return self._normalize(inputs)
        except RuntimeError as exc:
            if "shape" not in str(exc) and "size" not in str(exc):
                raise
            raise self._shape_error(f"the scale of shape {tuple(self.scale.shape)} does not fit the normalised axes "
                                    f"{self.axis}", inputs) from None

    def _normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        out_dtype = x.dtype
        work = _work_dtype(x.dtype)
        x = x.to(work)
        dims = sorted(self._axes(self.axis, tuple(x.shape)))
        scale = self.scale.to(work)
        if dims != list(range(x.dim() - len(dims), x.dim())):
            # Keras 3 multiplies by the scale as it is, which is right only for trailing axes (other axes
            # fail or broadcast along the wrong ones there): here it is reshaped onto its axes.
            shape = [1] * x.dim()
            for a in dims:
                shape[a] = x.shape[a]
            scale = scale.reshape(shape)
        rrms = _rsqrt(x.square().mean(dim=dims, keepdim=True) + _rounded(self.epsilon, work, False))
        return (x * rrms * scale).to(out_dtype)
