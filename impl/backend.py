"""Keras 2's backend API (``tf_keras.backend``, ``from keras import backend as K``) on torch tensors.

    from keraspec.impl import backend as K
    K.batch_dot(x, y, axes=(2, 1))

Semantics are tf_keras 2.21's, read from its ``backend.py``; the spec (``spec/ops/*.yaml``) states
each function's rules and the graph-era functions' eager meaning.  Tensors are ``torch.Tensor``s;
a "variable" is a plain tensor (float ones require grad), so ``update``/``set_value`` write into
it in place -- the closest eager equivalent of ``tf.Variable.assign``.

This module defines no Layer classes, so ``keraspec.impl.layers`` never collects it as a family.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import activations as _activations

# -- configuration -------------------------------------------------------------------------------

#: tf_keras's defaults (``backend_config.py``).
DEFAULT_EPSILON = 1e-7
DEFAULT_FLOATX = "float32"
DEFAULT_IMAGE_DATA_FORMAT = "channels_last"
FLOATX_CHOICES = ("float16", "float32", "float64")
IMAGE_DATA_FORMATS = ("channels_last", "channels_first")
#: The minimum epsilon TF's fused batch norm kernel accepts; ``tf.compat.v1.nn.fused_batch_norm``
#: raises a smaller one to it, so K.batch_normalization on 4-D inputs does too.
FUSED_BATCH_NORM_MIN_EPSILON = 1.001e-5
#: ``tf.linalg.l2_normalize``'s floor on the sum of squares.
L2_NORMALIZE_EPSILON = 1e-12

_config: dict[str, Any] = {"epsilon": DEFAULT_EPSILON, "floatx": DEFAULT_FLOATX,
                           "image_data_format": DEFAULT_IMAGE_DATA_FORMAT}
_uids: dict[str, int] = {}
#: The learning phase set by set_learning_phase (0 test, 1 train); None until set, read as 0.
_learning_phase: list[int | None] = [None]
_manual_init: list[bool] = [False]


def backend() -> str:
    """The backend this module runs on (tf_keras answers 'tensorflow')."""
    return "torch"


def epsilon() -> float:
    """The fuzz factor used in numeric expressions (crossentropy clipping); 1e-7 by default."""
    return _config["epsilon"]


def set_epsilon(value: float) -> None:
    """Set the fuzz factor; a non-number or a negative value is refused naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"set_epsilon: 'value' must be a number >= 0, got {value!r}")
    _config["epsilon"] = float(value)


def floatx() -> str:
    """The default float type, as a string ('float32' by default)."""
    return _config["floatx"]


def set_floatx(value: str) -> None:
    """Set the default float type: one of float16, float32, float64 (as tf_keras accepts)."""
    if value not in FLOATX_CHOICES:
        raise ValueError(f"set_floatx: 'value' must be one of {FLOATX_CHOICES}, got {value!r}")
    _config["floatx"] = str(value)


def image_data_format() -> str:
    return _config["image_data_format"]


def set_image_data_format(data_format: str) -> None:
    if data_format not in IMAGE_DATA_FORMATS:
        raise ValueError(f"set_image_data_format: 'data_format' must be one of {IMAGE_DATA_FORMATS}, got {data_format!r}")
    _config["image_data_format"] = str(data_format)


def _torch_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        dtype = floatx()
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"'dtype' must name a torch dtype (e.g. 'float32'), got {dtype!r}")
    return resolved


def cast_to_floatx(x: Any) -> Any:
    """A tensor cast to floatx (a tensor stays a tensor; anything else becomes a numpy array, as tf_keras)."""
    if isinstance(x, torch.Tensor):
        return x.to(_torch_dtype(floatx()))
    return np.asarray(x, dtype=floatx())


def get_uid(prefix: str = "") -> int:
    """1, 2, 3, ... per prefix, as tf_keras counts per graph (here: per process, until reset_uids)."""
    _uids[prefix] = _uids.get(prefix, 0) + 1
    return _uids[prefix]


def reset_uids() -> None:
    _uids.clear()


def clear_session() -> None:
    """Eager torch has no graph to drop: resets the uid counters and the learning phase, as tf_keras does."""
    reset_uids()
    _learning_phase[0] = None


def manual_variable_initialization(value: bool) -> None:
    """Recorded only: torch tensors are initialized when created, so the flag changes nothing."""
    _manual_init[0] = bool(value)


def learning_phase() -> int:
    """0 (test) or 1 (train), as last set by set_learning_phase; 0 when never set (tf_keras's eager default)."""
    return 0 if _learning_phase[0] is None else _learning_phase[0]


def set_learning_phase(value: int) -> None:
    if value not in (0, 1):
        raise ValueError(f"set_learning_phase: 'value' must be 0 or 1, got {value!r}")
    _learning_phase[0] = int(value)


# -- tensors and variables -----------------------------------------------------------------------

def is_sparse(tensor: torch.Tensor) -> bool:
    return bool(getattr(tensor, "is_sparse", False))


def to_dense(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to_dense() if is_sparse(tensor) else tensor


def is_keras_tensor(x: Any) -> bool:
    """False for every torch tensor (there are no symbolic Keras tensors here); like tf_keras, a
    value that is not a tensor at all is refused."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"is_keras_tensor: 'x' must be a tensor, got {type(x).__name__}; "
                         "use is_keras_tensor only on tensors")
    return False


def variable(value: Any, dtype: str | None = None, name: str | None = None, constraint: Any = None) -> torch.Tensor:
    """A fresh tensor holding ``value`` in ``dtype`` (floatx by default); float ones require grad,
    as a trainable tf.Variable is watched by a GradientTape."""
    out = torch.tensor(np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value),
                       dtype=_torch_dtype(dtype))
    if out.is_floating_point():
        out.requires_grad_(True)
    return out


def constant(value: Any, dtype: str | None = None, shape: Sequence[int] | None = None, name: str | None = None) -> torch.Tensor:
    """``value`` as a tensor of ``dtype`` (floatx by default); a scalar fills ``shape``."""
    array = np.asarray(value)
    out = torch.tensor(array, dtype=_torch_dtype(dtype))
    if shape is not None:
        out = out.expand(tuple(shape)).clone() if out.numel() == 1 else out.reshape(tuple(shape))
    return out


def shape(x: torch.Tensor) -> torch.Tensor:
    """The shape as an int32 tensor (tf_keras returns tf.shape(x))."""
    return torch.tensor(tuple(x.shape), dtype=torch.int32)


def int_shape(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def ndim(x: torch.Tensor) -> int:
    return x.dim()


def dtype(x: torch.Tensor) -> str:
    """The dtype's name as tf_keras spells it ('float32', 'int64', 'bool')."""
    return str(x.dtype).removeprefix("torch.")


def eval(x: torch.Tensor) -> np.ndarray:  # noqa: A001 -- Keras's name; not Python's eval
    """The value as a numpy array."""
    return x.detach().cpu().numpy()


def zeros(shape: Sequence[int], dtype: str | None = None, name: str | None = None) -> torch.Tensor:
    return variable(np.zeros(tuple(shape)), dtype)


def ones(shape: Sequence[int], dtype: str | None = None, name: str | None = None) -> torch.Tensor:
    return variable(np.ones(tuple(shape)), dtype)


def eye(size: int | Sequence[int], dtype: str | None = None, name: str | None = None) -> torch.Tensor:
    rows, cols = (size, size) if isinstance(size, int) else tuple(size)
    return variable(np.eye(rows, cols), dtype)


def zeros_like(x: torch.Tensor, dtype: str | None = None, name: str | None = None) -> torch.Tensor:
    """Zeros of x's shape, in x's dtype unless ``dtype`` is given."""
    return torch.zeros_like(x, dtype=None if dtype is None else _torch_dtype(dtype))


def ones_like(x: torch.Tensor, dtype: str | None = None, name: str | None = None) -> torch.Tensor:
    return torch.ones_like(x, dtype=None if dtype is None else _torch_dtype(dtype))


def identity(x: torch.Tensor, name: str | None = None) -> torch.Tensor:
    return x.clone()


def count_params(x: torch.Tensor) -> int:
    return int(np.prod(tuple(x.shape)))


def cast(x: torch.Tensor, dtype: str) -> torch.Tensor:
    return x.to(_torch_dtype(dtype))


def _assign(x: torch.Tensor, value: torch.Tensor | np.ndarray | float) -> torch.Tensor:
    """Write ``value`` into ``x`` in place (``tf.Variable.assign``); the shapes must agree."""
    new = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value, dtype=x.dtype,
                          device=x.device)
    if tuple(new.shape) != tuple(x.shape) and new.numel() != 1:
        raise ValueError(f"cannot assign a value of shape {tuple(new.shape)} to a variable of shape {tuple(x.shape)}")
    with torch.no_grad():
        x.copy_(new.expand_as(x))
    return x


def update(x: torch.Tensor, new_x: Any) -> torch.Tensor:
    """x := new_x, in place (the eager meaning of tf_keras's assign op); returns x."""
    return _assign(x, new_x)


def update_add(x: torch.Tensor, increment: Any) -> torch.Tensor:
    """x := x + increment, in place; returns x."""
    return _assign(x, x.detach() + torch.as_tensor(increment, dtype=x.dtype, device=x.device))


def update_sub(x: torch.Tensor, decrement: Any) -> torch.Tensor:
    """x := x - decrement, in place; returns x."""
    return _assign(x, x.detach() - torch.as_tensor(decrement, dtype=x.dtype, device=x.device))


def moving_average_update(x: torch.Tensor, value: Any, momentum: float) -> torch.Tensor:
    """x := x - (x - value) * (1 - momentum), in place (tf_keras's TF2 rule, no zero-debiasing)."""
    value = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    return _assign(x, x.detach() - (x.detach() - value) * (1 - momentum))


def get_value(x: torch.Tensor) -> np.ndarray:
    return eval(x)


def batch_get_value(tensors: Iterable[torch.Tensor]) -> list[np.ndarray]:
    return [get_value(t) for t in tensors]


def set_value(x: torch.Tensor, value: Any) -> None:
    """Load a numpy value into the variable x, in place."""
    _assign(x, value)


def batch_set_value(tuples: Iterable[tuple[torch.Tensor, Any]]) -> None:
    for x, value in tuples:
        _assign(x, value)


def print_tensor(x: torch.Tensor, message: str = "", summarize: int = 3) -> torch.Tensor:
    """Print ``message`` and x's value, return x (tf_keras prints when the op runs: here, at once)."""
    print(message, x.detach().cpu().numpy())
    return x


def gradients(loss: torch.Tensor, variables: Sequence[torch.Tensor]) -> list[torch.Tensor | None]:
    """d loss / d each variable (which must require grad); None where loss does not depend on it, as tf.gradients."""
    return list(torch.autograd.grad(loss, list(variables), allow_unused=True, retain_graph=True))


def stop_gradient(variables: torch.Tensor | Sequence[torch.Tensor]) -> Any:
    if isinstance(variables, (list, tuple)):
        return [v.detach() for v in variables]
    return variables.detach()


# -- linear algebra ------------------------------------------------------------------------------

def dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Theano's N-D rule: contract x's last axis with y's second-to-last;
    output shape x.shape[:-1] + y.shape[:-2] + y.shape[-1:]."""
    if x.dim() > 2 or y.dim() > 2:
        if y.dim() < 2 or x.dim() < 1:
            raise ValueError(f"dot: 'y' must have rank >= 2 when either input has rank > 2, got shapes "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        if x.shape[-1] != y.shape[-2]:
            raise ValueError(f"dot: x.shape[-1] must equal y.shape[-2], got shapes {tuple(x.shape)} and {tuple(y.shape)}")
        perm = list(range(y.dim()))
        perm = [perm.pop(-2)] + perm
        xt = x.reshape(-1, x.shape[-1])
        yt = y.permute(perm).reshape(y.shape[-2], -1)
        return (xt @ yt).reshape(tuple(x.shape[:-1]) + tuple(y.shape[:-2]) + tuple(y.shape[-1:]))
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(f"dot: inputs of rank <= 2 must both have rank 2, got shapes {tuple(x.shape)} and {tuple(y.shape)}")
    return x @ y


def batch_dot(x: torch.Tensor, y: torch.Tensor, axes: int | Sequence[int] | None = None) -> torch.Tensor:
    """tf_keras's batch_dot: per batch entry, contract x's axis axes[0] with y's axes[1].

    axes None means (x.ndim - 1, y.ndim - 1) for a 2-D y, else (x.ndim - 1, y.ndim - 2) -- not
    torch.bmm's default; an int means the same axis of both.  The output is x's other axes then y's
    other axes, except that two 2-D inputs give shape (batch, 1)."""
    x_ndim, y_ndim = x.dim(), y.dim()
    shapes = f"{tuple(x.shape)} and {tuple(y.shape)}"
    if x_ndim < 2 or y_ndim < 2:
        raise ValueError(f"batch_dot: 'x' and 'y' must have rank >= 2, got shapes {shapes}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"batch_dot: 'x' and 'y' must have the same batch size, got shapes {shapes}")
    if isinstance(axes, int):
        axes = [axes, axes]
    if axes is None:
        axes = [x_ndim - 1, y_ndim - 1] if y_ndim == 2 else [x_ndim - 1, y_ndim - 2]
    if builtins.any(isinstance(a, (list, tuple)) for a in axes) or len(axes) != 2:
        raise ValueError(f"batch_dot: 'axes' must be None, an int or a pair of ints, got {axes!r}")
    a0 = axes[0] + x_ndim if axes[0] < 0 else axes[0]
    a1 = axes[1] + y_ndim if axes[1] < 0 else axes[1]
    if not (0 <= a0 < x_ndim and 0 <= a1 < y_ndim):
        raise ValueError(f"batch_dot: 'axes' {axes!r} out of range for shapes {shapes}")
    if a0 == 0 or a1 == 0:
        raise ValueError(f"batch_dot: 'axes' must not include the batch axis 0, got {axes!r}")
    if x.shape[a0] != y.shape[a1]:
        raise ValueError(f"batch_dot: x.shape[{a0}] must equal y.shape[{a1}], got shapes {shapes}")
    x_rest = [i for i in range(1, x_ndim) if i != a0]
    y_rest = [i for i in range(1, y_ndim) if i != a1]
    xm = x.permute([0] + x_rest + [a0]).reshape(x.shape[0], -1, x.shape[a0])
    ym = y.permute([0, a1] + y_rest).reshape(y.shape[0], y.shape[a1], -1)
    out_shape = [x.shape[0]] + [x.shape[i] for i in x_rest] + [y.shape[i] for i in y_rest]
    if x_ndim == 2 and y_ndim == 2:
        out_shape.append(1)
    return torch.bmm(xm, ym).reshape(out_shape)


def transpose(x: torch.Tensor) -> torch.Tensor:
    """Every axis reversed (tf.transpose without perm)."""
    return x.permute(tuple(reversed(range(x.dim()))))


def gather(reference: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """reference[indices] along axis 0; an index out of range is refused, as TF's CPU kernel does."""
    indices = torch.as_tensor(indices, device=reference.device).long()
    if indices.numel() and (indices.min() < 0 or indices.max() >= reference.shape[0]):
        raise ValueError(f"gather: 'indices' must be in [0, {reference.shape[0]}), got values in "
                         f"[{int(indices.min())}, {int(indices.max())}]")
    return reference[indices]


# -- reductions ----------------------------------------------------------------------------------

def _axes(x: torch.Tensor, axis: int | Sequence[int] | None) -> tuple[int, ...]:
    """The non-negative axes ``axis`` names (every axis for None), each refused when out of range."""
    if axis is None:
        return tuple(range(x.dim()))
    listed = [axis] if isinstance(axis, int) else list(axis)
    out = []
    for a in listed:
        if not -builtins.max(x.dim(), 1) <= a < builtins.max(x.dim(), 1):
            raise ValueError(f"'axis' {axis!r} is out of range for a tensor of rank {x.dim()}")
        out.append(a % builtins.max(x.dim(), 1))
    return tuple(dict.fromkeys(out))


def _reduce(fn: Callable[..., torch.Tensor], x: torch.Tensor, axis: Any, keepdims: bool) -> torch.Tensor:
    dims = _axes(x, axis)
    if x.dim() == 0:
        return fn(x, dim=(), keepdim=keepdims) if dims == () else fn(x.reshape(1), dim=0, keepdim=False)
    if not dims:
        return x.clone()
    return fn(x, dim=dims, keepdim=keepdims)


def _float_if_bool(x: torch.Tensor) -> torch.Tensor:
    """tf_keras casts a boolean input to floatx before mean/var/std."""
    return x.to(_torch_dtype(floatx())) if x.dtype == torch.bool else x


def max(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001
    return _reduce(torch.amax, x, axis, keepdims)


def min(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001
    return _reduce(torch.amin, x, axis, keepdims)


def sum(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001
    return _reduce(torch.sum, x, axis, keepdims)


def _prod(x: torch.Tensor, dim: tuple[int, ...] | int, keepdim: bool) -> torch.Tensor:
    dims = (dim,) if isinstance(dim, int) else dim
    for d in sorted(dims, reverse=True):  # torch.prod takes one axis at a time
        x = torch.prod(x, dim=d, keepdim=keepdim)
    return x


def prod(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(_prod, x, axis, keepdims)


def mean(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.mean, _float_if_bool(x), axis, keepdims)


def var(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    """Population variance (divides by n), as tf.math.reduce_variance."""
    return _reduce(lambda t, dim, keepdim: torch.var(t, dim=dim, keepdim=keepdim, correction=0),
                   _float_if_bool(x), axis, keepdims)


def std(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    """sqrt of the population variance, as tf.math.reduce_std."""
    return torch.sqrt(var(x, axis, keepdims))


def any(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001
    return _reduce(lambda t, dim, keepdim: torch.amax(t, dim=dim, keepdim=keepdim), x.bool(), axis, keepdims)


def all(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:  # noqa: A001
    return _reduce(lambda t, dim, keepdim: torch.amin(t, dim=dim, keepdim=keepdim), x.bool(), axis, keepdims)


def logsumexp(x: torch.Tensor, axis: Any = None, keepdims: bool = False) -> torch.Tensor:
    return _reduce(torch.logsumexp, x, axis, keepdims)


def cumsum(x: torch.Tensor, axis: int = 0) -> torch.Tensor:
    return torch.cumsum(x, dim=axis)


def cumprod(x: torch.Tensor, axis: int = 0) -> torch.Tensor:
    return torch.cumprod(x, dim=axis)


def argmax(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    """Index of the first maximum (int64); NaN counts as the maximum, as TF's CPU kernel."""
    return torch.argmax(x, dim=axis)


def argmin(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return torch.argmin(x, dim=axis)


# -- element-wise --------------------------------------------------------------------------------

def square(x: torch.Tensor) -> torch.Tensor:
    return x * x


def abs(x: torch.Tensor) -> torch.Tensor:  # noqa: A001
    return torch.abs(x)


def sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)): tf_keras clips negatives to 0 first, so they give 0, not NaN."""
    return torch.sqrt(torch.clamp(x, min=0))


def exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x)


def log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x)


def round(x: torch.Tensor) -> torch.Tensor:  # noqa: A001
    """Half to even, as tf.round."""
    return torch.round(x)


def sign(x: torch.Tensor) -> torch.Tensor:
    """-1, 0 or 1; NaN stays NaN (tf.sign), where torch.sign gives 0."""
    return torch.where(torch.isnan(x), x, torch.sign(x))


def pow(x: torch.Tensor, a: float) -> torch.Tensor:  # noqa: A001
    """x ** a with C's pow at -inf (tf.pow): (-inf) ** a is +inf for a > 0 and +0 for a < 0 when a
    is not an odd integer, where torch gives NaN for a non-integer a."""
    out = torch.pow(x, a)
    if float(a) != int(a) if math.isfinite(float(a)) else True:
        out = torch.where(x == -math.inf, torch.full_like(out, math.inf if a > 0 else 0.0), out)
    return out


def clip(x: torch.Tensor, min_value: float | None, max_value: float | None) -> torch.Tensor:
    """clip_by_value; max_value < min_value means max_value = min_value; None means unbounded."""
    if isinstance(min_value, (int, float)) and isinstance(max_value, (int, float)) and max_value < min_value:
        max_value = min_value
    return torch.clamp(x, min=-math.inf if min_value is None else min_value,
                       max=math.inf if max_value is None else max_value)


def equal(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.eq(x, y)


def not_equal(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.ne(x, y)


def greater(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.gt(x, y)


def greater_equal(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.ge(x, y)


def less(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.lt(x, y)


def less_equal(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.le(x, y)


#: Keras 1's names (the seed document's), kept as aliases of Keras 2's.
lesser = less
lesser_equal = less_equal


def maximum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise max; on a tie the whole gradient goes to x (tf.maximum's gradient), where
    torch.maximum splits it in halves; NaN propagates."""
    return torch.where((x >= y) | torch.isnan(x), x, y)


def minimum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise min; on a tie the gradient goes to x, as tf.minimum's; NaN propagates."""
    return torch.where((x <= y) | torch.isnan(x), x, y)


def sin(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x)


def cos(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x)


# -- normalization -------------------------------------------------------------------------------

def _batch_norm_formula(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, beta: torch.Tensor | None,
                        gamma: torch.Tensor | None, epsilon: float) -> torch.Tensor:
    """tf.nn.batch_normalization: x * inv + (beta - mean * inv), inv = rsqrt(var + eps) * gamma."""
    inv = torch.rsqrt(var + epsilon)
    if gamma is not None:
        inv = inv * gamma
    return x * inv + ((beta if beta is not None else 0) - mean * inv)


def batch_normalization(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, beta: torch.Tensor | None,
                        gamma: torch.Tensor | None, axis: int = -1, epsilon: float = 1e-3) -> torch.Tensor:
    """(x - mean) / sqrt(var + epsilon) * gamma + beta.  A 4-D x takes TF's fused kernel, which
    raises epsilon to at least 1.001e-5 and flattens mean/var/beta/gamma to the channel axis."""
    if x.dim() == 4:
        epsilon = builtins.max(epsilon, FUSED_BATCH_NORM_MIN_EPSILON)
        channel = axis % 4
        shape = [1] * 4
        shape[channel] = x.shape[channel]
        mean, var = mean.reshape(shape), var.reshape(shape)
        beta = beta.reshape(shape) if beta is not None else None
        gamma = gamma.reshape(shape) if gamma is not None else None
    return _batch_norm_formula(x, mean, var, beta, gamma, epsilon)


def normalize_batch_in_training(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                                reduction_axes: Sequence[int], epsilon: float = 1e-3
                                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(normalized x, batch mean, batch variance) over ``reduction_axes``.

    The porting trap: a 4-D x reduced over (0, 1, 2) takes TF's fused kernel, whose variance
    output is the unbiased one (times n / (n - 1)) and whose epsilon is at least 1.001e-5; every
    other case returns the biased variance (tf.nn.moments).  (0, 2, 3) on a 4-D x is fused only
    on a GPU build of TF; this follows the CPU oracle, where it is not."""
    axes = [a % x.dim() for a in reduction_axes]
    keep = [i for i in range(x.dim()) if i not in axes]
    mean = torch.mean(x, dim=axes, keepdim=True)
    var = torch.mean(torch.square(x - mean), dim=axes, keepdim=True)  # biased, as tf.nn.moments
    fused = x.dim() == 4 and list(reduction_axes) == [0, 1, 2]
    eps = builtins.max(epsilon, FUSED_BATCH_NORM_MIN_EPSILON) if fused else epsilon
    target = [1 if i in axes else x.shape[i] for i in range(x.dim())]
    g = gamma.reshape(target) if gamma is not None else None
    b = beta.reshape(target) if beta is not None else None
    normed = _batch_norm_formula(x, mean, var, b, g, eps)
    out_shape = [x.shape[i] for i in keep]
    mean, var = mean.reshape(out_shape), var.reshape(out_shape)
    if fused:
        n = int(np.prod([x.shape[a] for a in axes]))
        var = var * (n / builtins.max(n - 1, 1))
    return normed, mean, var


def l2_normalize(x: torch.Tensor, axis: int | Sequence[int] | None = None) -> torch.Tensor:
    """x / sqrt(max(sum(x**2, axis), 1e-12)), as tf.linalg.l2_normalize."""
    dims = _axes(x, axis)
    square_sum = torch.sum(x * x, dim=dims, keepdim=True)
    return x * torch.rsqrt(torch.clamp(square_sum, min=L2_NORMALIZE_EPSILON))


# -- shapes --------------------------------------------------------------------------------------

def concatenate(tensors: Sequence[torch.Tensor], axis: int = -1) -> torch.Tensor:
    return torch.cat([to_dense(t) for t in tensors], dim=axis if tensors[0].dim() else 0)


def reshape(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    return x.reshape(tuple(int(d) for d in shape))


def permute_dimensions(x: torch.Tensor, pattern: Sequence[int]) -> torch.Tensor:
    if sorted(pattern) != list(range(x.dim())):
        raise ValueError(f"permute_dimensions: 'pattern' must be a permutation of range({x.dim()}), got {tuple(pattern)!r}")
    return x.permute(tuple(pattern))


def repeat_elements(x: torch.Tensor, rep: int, axis: int) -> torch.Tensor:
    """Each slice along ``axis`` repeated ``rep`` times in a row (np.repeat)."""
    return torch.repeat_interleave(x, rep, dim=axis)


def repeat(x: torch.Tensor, n: int) -> torch.Tensor:
    """(batch, dim) -> (batch, n, dim)."""
    if x.dim() != 2:
        raise ValueError(f"repeat: 'x' must have rank 2, got shape {tuple(x.shape)}")
    return x.unsqueeze(1).expand(x.shape[0], n, x.shape[1]).clone()


def arange(start: int, stop: int | None = None, step: int = 1, dtype: str = "int32") -> torch.Tensor:
    """np.arange; one argument means [0, start); a negative single argument gives an empty tensor."""
    if stop is None:
        start, stop = 0, builtins.max(start, 0)
    if (stop - start) * step < 0:
        raise ValueError(f"arange: 'stop' ({stop}) must be reachable from 'start' ({start}) with 'step' ({step}), "
                         "as tf.range requires")
    ints = _all_ints(start, stop, step)
    values = list(range(int(start), int(stop), int(step))) if ints else np.arange(start, stop, step).tolist()
    return torch.tensor(values, dtype=torch.int32 if ints else torch.float32).to(_torch_dtype(dtype))


def _all_ints(*values: Any) -> bool:
    return builtins.all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)


def tile(x: torch.Tensor, n: int | Sequence[int]) -> torch.Tensor:
    """x tiled n[i] times along axis i; like tf.tile, ``n`` must have one entry per axis (an int is one entry)."""
    reps = [n] if isinstance(n, int) else list(n)
    if len(reps) != x.dim():
        raise ValueError(f"tile: 'n' must have one entry per axis of x (rank {x.dim()}), got {n!r}")
    return x.repeat(*reps) if reps else x.clone()


def flatten(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1)


def batch_flatten(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def expand_dims(x: torch.Tensor, axis: int = -1) -> torch.Tensor:
    return x.unsqueeze(axis)


def squeeze(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Drop ``axis``, which must have size 1 (tf.squeeze refuses another; torch.squeeze would not)."""
    if x.shape[axis] != 1:
        raise ValueError(f"squeeze: axis {axis} of 'x' must have size 1, got shape {tuple(x.shape)}")
    return x.squeeze(axis)


def stack(x: Sequence[torch.Tensor], axis: int = 0) -> torch.Tensor:
    return torch.stack(list(x), dim=axis)


def one_hot(indices: torch.Tensor, num_classes: int) -> torch.Tensor:
    """float32 one-hot on a new last axis; an index outside [0, num_classes) gives a row of zeros (tf.one_hot)."""
    classes = torch.arange(num_classes, device=indices.device)
    return (indices.long().unsqueeze(-1) == classes).to(torch.float32)


def reverse(x: torch.Tensor, axes: int | Sequence[int]) -> torch.Tensor:
    return torch.flip(x, dims=[axes] if isinstance(axes, int) else list(axes))


def _data_format(data_format: str | None) -> str:
    data_format = image_data_format() if data_format is None else data_format
    if data_format not in IMAGE_DATA_FORMATS:
        raise ValueError(f"'data_format' must be one of {IMAGE_DATA_FORMATS}, got {data_format!r}")
    return data_format


def _zero_pad(x: torch.Tensor, pairs: Sequence[Sequence[int]], first_axis: int) -> torch.Tensor:
    """Zeros before/after each of the axes from ``first_axis`` on (F.pad lists the last axis first)."""
    flat: list[int] = []
    for before, after in reversed([tuple(p) for p in pairs]):
        flat += [int(before), int(after)]
    trailing = x.dim() - first_axis - len(pairs)
    return F.pad(x, [0, 0] * trailing + flat)


def temporal_padding(x: torch.Tensor, padding: Sequence[int] = (1, 1)) -> torch.Tensor:
    """Zeros before/after axis 1 of a 3-D tensor."""
    return _zero_pad(x, [padding], 1)


def spatial_2d_padding(x: torch.Tensor, padding: Sequence[Sequence[int]] = ((1, 1), (1, 1)),
                       data_format: str | None = None) -> torch.Tensor:
    return _zero_pad(x, padding, 1 if _data_format(data_format) == "channels_last" else 2)


def spatial_3d_padding(x: torch.Tensor, padding: Sequence[Sequence[int]] = ((1, 1), (1, 1), (1, 1)),
                       data_format: str | None = None) -> torch.Tensor:
    return _zero_pad(x, padding, 1 if _data_format(data_format) == "channels_last" else 2)


def bias_add(x: torch.Tensor, bias: torch.Tensor, data_format: str | None = None) -> torch.Tensor:
    """x + bias on the channel axis (last for channels_last, 1 for channels_first).  A bias of rank
    x.ndim - 1 is *reshaped* (not transposed) to (1, channels) + its other sizes for channels_first,
    exactly as tf_keras does."""
    data_format = _data_format(data_format)
    if bias.dim() != 1 and bias.dim() != x.dim() - 1:
        raise ValueError(f"bias_add: 'bias' must have rank 1 or {x.dim() - 1} (the rank of x minus 1), "
                         f"got shape {tuple(bias.shape)}")
    if bias.dim() == 1:
        if data_format == "channels_first" and x.dim() > 2:
            return x + bias.reshape((1, -1) + (1,) * (x.dim() - 2))
        return x + bias
    if x.dim() in (3, 4, 5) and data_format == "channels_first":
        return x + bias.reshape((1, bias.shape[-1]) + tuple(bias.shape[:-1]))
    return x + bias.unsqueeze(0)


# -- convolution and pooling: the layers' code, called (one copy of the numerics) ----------------

#: The layer classes whose TF padding rules and kernels K.conv*/K.pool* reuse, by rank.
_CONV_LAYERS = {1: "Conv1D", 2: "Conv2D", 3: "Conv3D"}
_POOL_LAYERS = {("max", 2): "MaxPooling2D", ("avg", 2): "AveragePooling2D",
                ("max", 3): "MaxPooling3D", ("avg", 3): "AveragePooling3D"}
POOL_MODES = ("max", "avg")


def _tuple(value: Any) -> Any:
    """A list argument as a tuple (the layers' configs take ints or tuples)."""
    return tuple(value) if isinstance(value, list) else value


def _conv(rank: int, x: torch.Tensor, kernel: torch.Tensor, strides: Any, padding: str, data_format: str | None,
          dilation_rate: Any) -> torch.Tensor:
    """x convolved with a Keras-layout kernel (spatial..., in, out) by keraspec.impl's Conv layer
    of this rank: its padding rule (same/valid/causal as TF) and its conv kernel, with the given
    kernel tensor (so gradients reach it) instead of a stored weight."""
    from . import convolutional  # the layer modules import the spec; loaded only when convolving

    if kernel.dim() != rank + 2:
        raise ValueError(f"conv{rank}d: 'kernel' must have rank {rank + 2} (spatial..., in, out), got shape {tuple(kernel.shape)}")
    layer = getattr(convolutional, _CONV_LAYERS[rank])(
        filters=int(kernel.shape[-1]), kernel_size=tuple(kernel.shape[:rank]), strides=_tuple(strides), padding=padding,
        data_format=_data_format(data_format), dilation_rate=_tuple(dilation_rate), use_bias=False, dtype=dtype(x))
    layer._check_shape(tuple(x.shape))
    channels = x.shape[layer._channel_axis]
    if channels != kernel.shape[-2] * layer.groups:
        raise ValueError(f"conv{rank}d: x's channel axis ({channels}) must equal kernel.shape[-2] ({kernel.shape[-2]})")
    padded, torch_padding = layer._padded(layer._to_channels_first(x))
    torch_kernel = kernel.permute(rank + 1, rank, *range(rank)).contiguous()  # the Conv layers' weight layout
    y = convolutional._CONV[rank](padded, torch_kernel, None, layer.strides, torch_padding, layer.dilation_rate, 1)
    return layer._from_channels_first(y)


def conv1d(x: torch.Tensor, kernel: torch.Tensor, strides: int = 1, padding: str = "valid",
           data_format: str | None = None, dilation_rate: int = 1) -> torch.Tensor:
    return _conv(1, x, kernel, strides, padding, data_format, dilation_rate)


def conv2d(x: torch.Tensor, kernel: torch.Tensor, strides: Sequence[int] = (1, 1), padding: str = "valid",
           data_format: str | None = None, dilation_rate: Sequence[int] = (1, 1)) -> torch.Tensor:
    return _conv(2, x, kernel, strides, padding, data_format, dilation_rate)


def conv3d(x: torch.Tensor, kernel: torch.Tensor, strides: Sequence[int] = (1, 1, 1), padding: str = "valid",
           data_format: str | None = None, dilation_rate: Sequence[int] = (1, 1, 1)) -> torch.Tensor:
    return _conv(3, x, kernel, strides, padding, data_format, dilation_rate)


def conv2d_transpose(x: torch.Tensor, kernel: torch.Tensor, output_shape: Sequence[int], strides: Sequence[int] = (1, 1),
                     padding: str = "valid", data_format: str | None = None,
                     dilation_rate: Sequence[int] = (1, 1)) -> torch.Tensor:
    """The transpose of conv2d (Keras 1's deconv2d) with a kernel (rows, cols, out, in) and the
    full ``output_shape`` (batch, rows, cols, channels in data_format's order); computed by
    keraspec.impl's Conv2DTranspose layer with the output padding that reaches output_shape."""
    from torch.func import functional_call

    from . import convolutional
    from .spatial import deconv_output_length

    data_format = _data_format(data_format)
    if kernel.dim() != 4:
        raise ValueError(f"conv2d_transpose: 'kernel' must have rank 4 (rows, cols, out, in), got shape {tuple(kernel.shape)}")
    strides, dilation_rate = tuple(strides), tuple(dilation_rate)
    spatial_in = x.shape[2:] if data_format == "channels_first" else x.shape[1:3]
    spatial_out = tuple(output_shape[2:]) if data_format == "channels_first" else tuple(output_shape[1:3])
    # The layer's output padding that gives output_shape: None (the default length) where that
    # reaches it on every axis, else per axis an explicit padding below max(stride, dilation).
    axes = list(zip(spatial_in, kernel.shape[:2], strides, dilation_rate, spatial_out))
    output_padding: tuple[int, ...] | None = None
    if not builtins.all(deconv_output_length(n, k, s, d, padding, None) == out for n, k, s, d, out in axes):
        chosen = []
        for n, k, s, d, out in axes:
            reachable = [op for op in range(builtins.max(s, d)) if deconv_output_length(n, k, s, d, padding, op) == out]
            if not reachable:
                raise ValueError(f"conv2d_transpose: 'output_shape' {tuple(output_shape)} is not reachable from input "
                                 f"shape {tuple(x.shape)} with kernel {tuple(kernel.shape[:2])}, strides {strides}, "
                                 f"padding {padding!r}")
            chosen.append(reachable[0])
        output_padding = tuple(chosen)
    layer = convolutional.Conv2DTranspose(
        filters=int(kernel.shape[2]), kernel_size=tuple(kernel.shape[:2]), strides=strides, padding=padding,
        output_padding=output_padding, data_format=data_format, dilation_rate=dilation_rate, use_bias=False,
        dtype=dtype(x))
    layer.build(tuple(x.shape))
    # The layer's call with the given kernel in its weight layout (in, out, rows, cols), so gradients reach it.
    return functional_call(layer, {"kernel": kernel.permute(3, 2, 0, 1).contiguous()}, (x,))


def _pool(rank: int, x: torch.Tensor, pool_size: Sequence[int], strides: Sequence[int], padding: str,
          data_format: str | None, pool_mode: str) -> torch.Tensor:
    """x pooled by keraspec.impl's pooling layer of this rank and mode (TF's padding rules; an
    average over a 'same' border window counts only the real cells)."""
    from . import pooling  # loaded only when pooling

    if pool_mode not in POOL_MODES:
        raise ValueError(f"pool{rank}d: 'pool_mode' must be one of {POOL_MODES}, got {pool_mode!r}")
    layer = getattr(pooling, _POOL_LAYERS[(pool_mode, rank)])(
        pool_size=_tuple(pool_size), strides=_tuple(strides), padding=padding, data_format=_data_format(data_format),
        dtype=dtype(x))
    return layer(x)


def pool2d(x: torch.Tensor, pool_size: Sequence[int], strides: Sequence[int] = (1, 1), padding: str = "valid",
           data_format: str | None = None, pool_mode: str = "max") -> torch.Tensor:
    return _pool(2, x, pool_size, strides, padding, data_format, pool_mode)


def pool3d(x: torch.Tensor, pool_size: Sequence[int], strides: Sequence[int] = (1, 1, 1), padding: str = "valid",
           data_format: str | None = None, pool_mode: str = "max") -> torch.Tensor:
    return _pool(3, x, pool_size, strides, padding, data_format, pool_mode)


def resize_images(x: torch.Tensor, height_factor: int, width_factor: int, data_format: str,
                  interpolation: str = "nearest") -> torch.Tensor:
    """Rows and columns scaled by integer factors as tf.image.resize (half-pixel centres): the
    UpSampling2D layer of keraspec.impl under tf_keras's rules (tf_keras's UpSampling2D calls this
    function), so the resize numerics exist once.  data_format is required, as in tf_keras.  Every
    interpolation but nearest computes in float32 and returns float32, as tf.image.resize does."""
    from . import reshaping
    from .flavor import use_flavor

    if data_format not in IMAGE_DATA_FORMATS:
        raise ValueError(f"resize_images: 'data_format' must be one of {IMAGE_DATA_FORMATS}, got {data_format!r}")
    if interpolation != "nearest":
        # tf.image.resize computes every method but nearest in float32 and returns float32.
        x = x.to(torch.float32)
    with use_flavor("tf_keras"):
        return reshaping.UpSampling2D(size=(height_factor, width_factor), data_format=data_format,
                                      interpolation=interpolation, dtype=dtype(x))(x)


def resize_volumes(x: torch.Tensor, depth_factor: int, height_factor: int, width_factor: int,
                   data_format: str) -> torch.Tensor:
    """Each cell repeated along depth, height and width: keraspec.impl's UpSampling3D (tf_keras's
    UpSampling3D calls this function)."""
    from . import reshaping
    from .flavor import use_flavor

    if data_format not in IMAGE_DATA_FORMATS:
        raise ValueError(f"resize_volumes: 'data_format' must be one of {IMAGE_DATA_FORMATS}, got {data_format!r}")
    with use_flavor("tf_keras"):
        return reshaping.UpSampling3D(size=(depth_factor, height_factor, width_factor), data_format=data_format,
                                      dtype=dtype(x))(x)


# -- control flow --------------------------------------------------------------------------------

def _broadcast_mask(mask_t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-step mask (batch, 1, ...) shaped to broadcast against ``like`` (batch, ...)."""
    mask_t = mask_t.reshape(mask_t.shape[0], -1)[:, :1] if mask_t.dim() > like.dim() else mask_t
    return mask_t.reshape(tuple(mask_t.shape) + (1,) * (like.dim() - mask_t.dim()))


def rnn(step_function: Callable[[Any, tuple[Any, ...]], tuple[Any, Sequence[Any]]], inputs: torch.Tensor,
        initial_states: Sequence[torch.Tensor], go_backwards: bool = False, mask: torch.Tensor | None = None,
        constants: Sequence[Any] | None = None, unroll: bool = False, input_length: Any = None,
        time_major: bool = False, zero_output_for_mask: bool = False, return_all_outputs: bool = True
        ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """tf_keras's step loop: ``(last_output, outputs, new_states)``.

    ``step_function(input_t, states + constants)`` returns ``(output_t, new_states)``.  With a mask
    (batch, time), a masked step keeps the previous states and outputs the previous output -- or
    zeros with ``zero_output_for_mask``.  ``go_backwards`` walks the time axis (and the mask) in
    reverse, and the outputs stay in that reversed order (tf_keras does not flip them back);
    ``last_output`` is the output of the last step walked.  An ``input_length`` tensor (batch,)
    without a mask masks the steps past each length.  ``unroll`` changes nothing eagerly (the
    loop is a Python loop either way)."""
    if inputs.dim() < 3:
        raise ValueError(f"rnn: 'inputs' must have rank >= 3 (batch, time, ...), got shape {tuple(inputs.shape)}")
    steps = inputs if time_major else inputs.transpose(0, 1)
    if mask is not None:
        mask = torch.as_tensor(mask, device=inputs.device).bool()
        if mask.dim() == 2:
            mask = mask.unsqueeze(-1)
        if not time_major:
            mask = mask.transpose(0, 1)
        if go_backwards:
            mask = mask.flip(0)
    elif isinstance(input_length, torch.Tensor):
        lengths = input_length.reshape(-1).to(inputs.device)
        time = torch.arange(steps.shape[0], device=inputs.device).unsqueeze(1)
        if go_backwards:  # tf_keras's rule: the steps after max_len - 1 - length, walking backwards
            mask = ((lengths.max() - 1 - lengths).unsqueeze(0) < time).unsqueeze(-1)
        else:
            mask = (lengths.unsqueeze(0) > time).unsqueeze(-1)
    if go_backwards:
        steps = steps.flip(0)
    states = tuple(initial_states)
    extra = tuple(constants or ())
    outputs: list[torch.Tensor] = []
    previous: torch.Tensor | None = None
    for t in range(steps.shape[0]):
        output, new_states = step_function(steps[t], states + extra)
        new_states = tuple(new_states)
        if mask is not None:
            mask_t = mask[t]
            if previous is None:
                previous = torch.zeros_like(output)
            fill = torch.zeros_like(output) if zero_output_for_mask else previous
            output = torch.where(_broadcast_mask(mask_t, output), output, fill)
            new_states = tuple(torch.where(_broadcast_mask(mask_t, s), n, s) for s, n in zip(states, new_states))
        previous, states = output, new_states
        if return_all_outputs or not outputs:
            outputs.append(output)
        else:
            outputs[0] = output
    stacked = torch.stack(outputs)
    return outputs[-1], stacked if time_major else stacked.transpose(0, 1), list(states)


def switch(condition: Any, then_expression: Any, else_expression: Any) -> torch.Tensor:
    """A scalar condition picks one expression (callables are called only then); a tensor
    condition picks element-wise: of rank > 1 it aligns with the expressions' leading axes, of
    rank 1 it broadcasts against their *trailing* axis (tf.where's rule), which tf_keras leaves as is."""
    condition = torch.as_tensor(condition)
    if condition.dtype != torch.bool:
        condition = condition.bool()
    if condition.dim() == 0:
        chosen = then_expression if bool(condition) else else_expression
        return chosen() if callable(chosen) else chosen
    then_value = then_expression() if callable(then_expression) else then_expression
    else_value = else_expression() if callable(else_expression) else else_expression
    expr_ndim = then_value.dim()
    if condition.dim() > expr_ndim:
        raise ValueError(f"switch: the rank of 'condition' ({condition.dim()}) must be <= the rank of "
                         f"'then_expression' and 'else_expression' ({expr_ndim})")
    if condition.dim() > 1:
        condition = condition.reshape(tuple(condition.shape) + (1,) * (expr_ndim - condition.dim()))
    return torch.where(condition, then_value, else_value)


def in_train_phase(x: Any, alt: Any, training: Any = None) -> Any:
    """x when training (``training``, else the learning phase) is 1/True, alt otherwise; callables are called."""
    phase = learning_phase() if training is None else training
    chosen = x if bool(phase) else alt
    return chosen() if callable(chosen) else chosen


def in_test_phase(x: Any, alt: Any, training: Any = None) -> Any:
    return in_train_phase(alt, x, training=training)


def map_fn(fn: Callable[[Any], torch.Tensor], elems: torch.Tensor, name: str | None = None,
           dtype: Any = None) -> torch.Tensor:
    """fn applied to each slice of elems along axis 0, stacked."""
    return torch.stack([fn(e) for e in elems])


def foldl(fn: Callable[[Any, Any], Any], elems: torch.Tensor, initializer: Any = None, name: str | None = None) -> Any:
    """fn(acc, x) over elems' slices from the first; the first slice is the initializer when none is given."""
    items = list(elems)
    acc, rest = (items[0], items[1:]) if initializer is None else (initializer, items)
    for item in rest:
        acc = fn(acc, item)
    return acc


def foldr(fn: Callable[[Any, Any], Any], elems: torch.Tensor, initializer: Any = None, name: str | None = None) -> Any:
    """foldl from the last slice."""
    return foldl(fn, torch.flip(elems, dims=[0]) if isinstance(elems, torch.Tensor) else list(reversed(elems)),
                 initializer)


# -- activations ---------------------------------------------------------------------------------

def relu(x: torch.Tensor, alpha: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> torch.Tensor:
    """tf_keras's relu, step by step: x if x > threshold (threshold != 0) else 0, clipped to
    max_value, minus alpha * relu(threshold - x)."""
    if alpha != 0.0:
        if max_value is None and threshold == 0:
            # tf.nn.leaky_relu's alpha is a float32 attribute, so a float64 x gets float32(alpha).
            return F.leaky_relu(x, negative_slope=float(np.float32(alpha)))
        negative_part = torch.relu(-x + threshold) if threshold != 0 else torch.relu(-x)
    clip_max = max_value is not None
    if threshold != 0:
        x = x * (x > threshold).to(x.dtype)
    elif max_value == 6:
        # tf.nn.relu6: its gradient is 0 at exactly 6, where a clamp's would be 1.
        x = F.relu6(x)
        clip_max = False
    else:
        x = torch.relu(x)
    if clip_max:
        x = torch.clamp(x, 0, max_value)
    if alpha != 0.0:
        x = x - alpha * negative_part
    return x


def elu(x: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """TF's Elu kernel; alpha != 1 scales the negative branch afterwards, as tf_keras does."""
    res = _activations.elu(x)
    return res if alpha == 1 else torch.where(x > 0, res, alpha * res)


def _with_logits(output: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mark ``output`` with the logits it came from: tf_keras's crossentropies then use them."""
    output._keras_logits = logits  # type: ignore[attr-defined]
    return output


def softmax(x: torch.Tensor, axis: int | Sequence[int] = -1) -> torch.Tensor:
    if x.dim() <= 1:
        raise ValueError(f"softmax: 'x' must have rank >= 2, got shape {tuple(x.shape)}")
    if isinstance(axis, int):
        return _with_logits(torch.softmax(x, dim=axis), x)
    dims = _axes(x, axis)
    numerator = torch.exp(x - torch.amax(x, dim=dims, keepdim=True))
    return _with_logits(numerator / torch.sum(numerator, dim=dims, keepdim=True), x)


def softplus(x: torch.Tensor) -> torch.Tensor:
    return _activations.softplus(x)


def softsign(x: torch.Tensor) -> torch.Tensor:
    return _activations.softsign(x)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return _with_logits(torch.sigmoid(x), x)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 2's: clip(0.2 x + 0.5, 0, 1) (Keras 3's is relu6(x + 3) / 6)."""
    return _activations._hard_sigmoid_tf_keras(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


# -- losses --------------------------------------------------------------------------------------

def _logits_of(output: torch.Tensor, from_logits: bool) -> tuple[torch.Tensor, bool]:
    """tf_keras's _get_logits: an output marked by softmax/sigmoid is replaced by its logits."""
    logits = getattr(output, "_keras_logits", None)
    return (logits, True) if logits is not None else (output, from_logits)


def categorical_crossentropy(target: torch.Tensor, output: torch.Tensor, from_logits: bool = False,
                             axis: int = -1) -> torch.Tensor:
    """-sum(target * log(p)) over ``axis``; probabilities are first divided by their sum and
    clipped to [epsilon, 1 - epsilon]."""
    if tuple(target.shape) != tuple(output.shape):
        raise ValueError(f"categorical_crossentropy: 'target' and 'output' must have the same shape, got "
                         f"{tuple(target.shape)} and {tuple(output.shape)}")
    output, from_logits = _logits_of(output, from_logits)
    if from_logits:
        return -torch.sum(target * torch.log_softmax(output, dim=axis), dim=axis)
    output = output / torch.sum(output, dim=axis, keepdim=True)
    eps = epsilon()
    output = torch.clamp(output, eps, 1.0 - eps)
    return -torch.sum(target * torch.log(output), dim=axis)


def sparse_categorical_crossentropy(target: torch.Tensor, output: torch.Tensor, from_logits: bool = False,
                                    axis: int = -1, ignore_class: int | None = None) -> torch.Tensor:
    """-log p[target]; probabilities are clipped to [epsilon, 1 - epsilon] and their log is
    treated as logits, so rows that do not sum to 1 are renormalized (tf_keras's actual rule)."""
    if ignore_class is not None:
        raise ValueError("sparse_categorical_crossentropy: 'ignore_class' is not implemented by keraspec.impl.backend")
    output, from_logits = _logits_of(output, from_logits)
    if not from_logits:
        eps = epsilon()
        output = torch.log(torch.clamp(output, eps, 1 - eps))
    rank = output.dim()
    axis %= rank
    if axis != rank - 1:
        output = output.permute([*range(axis), *range(axis + 1, rank), axis])
    classes = output.shape[-1]
    target = target.long()
    if target.numel() and (target.min() < 0 or target.max() >= classes):
        raise ValueError(f"sparse_categorical_crossentropy: 'target' must be in [0, {classes}), got values in "
                         f"[{int(target.min())}, {int(target.max())}]")
    result_shape = output.shape[:-1]
    log_probs = torch.log_softmax(output.reshape(-1, classes), dim=-1)
    picked = torch.gather(log_probs, 1, target.reshape(-1, 1)).reshape(-1)
    return -picked.reshape(result_shape if target.dim() == rank - 1 or rank >= 3 else (-1,))


def binary_crossentropy(target: torch.Tensor, output: torch.Tensor, from_logits: bool = False) -> torch.Tensor:
    """Element-wise; probabilities are clipped to [epsilon, 1 - epsilon] *and* epsilon is added
    inside both logs (tf_keras does both)."""
    output, from_logits = _logits_of(output, from_logits)
    if from_logits:
        # sigmoid_cross_entropy_with_logits: max(x, 0) - x * z + log1p(exp(-|x|)).
        return torch.clamp(output, min=0) - output * target + torch.log1p(torch.exp(-torch.abs(output)))
    eps = epsilon()
    output = torch.clamp(output, eps, 1.0 - eps)
    bce = target * torch.log(output + eps)
    bce = bce + (1 - target) * torch.log(1 - output + eps)
    return -bce


def in_top_k(predictions: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Whether each row's target class is among its k largest predictions; classes tied at the
    k-th value all count as in the top k; a row with any non-finite prediction gives False (TF's
    kernel cannot rank it)."""
    if predictions.dim() != 2 or targets.dim() != 1 or targets.shape[0] != predictions.shape[0]:
        raise ValueError(f"in_top_k: 'predictions' must be (batch, classes) and 'targets' (batch,), got "
                         f"{tuple(predictions.shape)} and {tuple(targets.shape)}")
    targets = targets.long()
    in_range = (targets >= 0) & (targets < predictions.shape[1])
    target_value = torch.gather(predictions, 1, targets.clamp(0, predictions.shape[1] - 1).unsqueeze(1))
    larger = torch.sum(predictions > target_value, dim=1)
    return in_range & torch.all(torch.isfinite(predictions), dim=1) & (larger < k)


# -- random --------------------------------------------------------------------------------------

def _generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator | None:
    """A generator seeded with ``seed`` (the same seed gives the same tensor), or None for torch's
    global one (tf_keras draws a fresh random seed when none is given)."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


def random_normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0, dtype: str | None = None,
                  seed: int | None = None) -> torch.Tensor:
    """Normal draws of ``shape``.  Seeded draws are reproducible here, but not the numbers TF draws."""
    out = torch.randn(tuple(shape), generator=_generator(seed), dtype=_torch_dtype(dtype))
    return out * stddev + mean


def random_uniform(shape: Sequence[int], minval: float = 0.0, maxval: float = 1.0, dtype: str | None = None,
                   seed: int | None = None) -> torch.Tensor:
    """Uniform draws in [minval, maxval)."""
    out = torch.rand(tuple(shape), generator=_generator(seed), dtype=_torch_dtype(dtype))
    return out * (maxval - minval) + minval


def random_binomial(shape: Sequence[int], p: float = 0.0, dtype: str | None = None, seed: int | None = None) -> torch.Tensor:
    """1 with probability p, else 0 (tf_keras: uniform <= p), in dtype."""
    return (random_uniform(shape, dtype=dtype, seed=seed) <= p).to(_torch_dtype(dtype))


def random_bernoulli(shape: Sequence[int], p: float = 0.0, dtype: str | None = None, seed: int | None = None) -> torch.Tensor:
    return random_binomial(shape, p, dtype, seed)


def truncated_normal(shape: Sequence[int], mean: float = 0.0, stddev: float = 1.0, dtype: str | None = None,
                     seed: int | None = None) -> torch.Tensor:
    """Normal draws more than 2 standard deviations from the mean drawn again (tf.random.truncated_normal)."""
    out = torch.empty(tuple(shape), dtype=_torch_dtype(dtype))
    torch.nn.init.trunc_normal_(out, 0.0, 1.0, -2.0, 2.0, generator=_generator(seed))
    return out * stddev + mean


def random_uniform_variable(shape: Sequence[int], low: float, high: float, dtype: str | None = None,
                            name: str | None = None, seed: int | None = None) -> torch.Tensor:
    """A variable (a tensor that requires grad) of uniform draws in [low, high)."""
    return random_uniform(shape, low, high, dtype, seed).requires_grad_(True)


def dropout(x: torch.Tensor, level: float, noise_shape: Sequence[int] | None = None, seed: int | None = None) -> torch.Tensor:
    """Each element zeroed with probability ``level``, the kept ones scaled by 1 / (1 - level); a
    ``noise_shape`` shares one draw along its axes of size 1 (tf.nn.dropout)."""
    if not 0 <= level < 1:
        raise ValueError(f"dropout: 'level' must be in [0, 1), got {level!r}")
    shape = tuple(x.shape) if noise_shape is None else tuple(noise_shape)
    keep = torch.rand(shape, generator=_generator(seed, x.device), device=x.device) >= level
    return x * keep.to(x.dtype) / (1 - level)


# -- CTC -----------------------------------------------------------------------------------------

def ctc_label_dense_to_sparse(labels: torch.Tensor, label_lengths: torch.Tensor) -> torch.Tensor:
    """The first label_lengths[i] labels of each row as a sparse COO tensor of labels' shape
    (tf_keras returns a tf.SparseTensor with the same indices, values and dense shape)."""
    lengths = torch.as_tensor(label_lengths, device=labels.device).reshape(-1).long()
    positions = torch.arange(labels.shape[1], device=labels.device)
    mask = positions.unsqueeze(0) < lengths.unsqueeze(1)
    indices = mask.nonzero().t()
    return torch.sparse_coo_tensor(indices, labels[mask], tuple(labels.shape))


def ctc_batch_cost(y_true: torch.Tensor, y_pred: torch.Tensor, input_length: torch.Tensor,
                   label_length: torch.Tensor) -> torch.Tensor:
    """CTC loss per batch entry, shape (batch, 1).  tf_keras's rules: the blank is the *last*
    class; y_pred holds probabilities, turned into log(y_pred + epsilon) and then -- inside
    tf.nn.ctc_loss, which takes logits -- log-softmaxed again, so rows that do not sum to 1 are
    renormalized.  An impossible alignment gives inf, as TF's does."""
    if y_pred.dim() != 3:
        raise ValueError(f"ctc_batch_cost: 'y_pred' must be (batch, time, classes), got shape {tuple(y_pred.shape)}")
    input_lengths = input_length.reshape(-1).long()
    target_lengths = label_length.reshape(-1).long()
    if target_lengths.numel() and int(target_lengths.max()) > y_true.shape[1]:
        raise ValueError(f"ctc_batch_cost: 'label_length' must be <= y_true.shape[1] ({y_true.shape[1]})")
    log_probs = torch.log_softmax(torch.log(y_pred.permute(1, 0, 2) + epsilon()), dim=-1)
    # The labels within each row's length, concatenated in row order (torch's 1-D target form).
    within = torch.arange(y_true.shape[1], device=y_true.device).unsqueeze(0) < target_lengths.unsqueeze(1)
    targets = y_true[within].long()
    loss = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=y_pred.shape[-1] - 1,
                      reduction="none", zero_infinity=False)
    return loss.unsqueeze(1)


# -- what the module offers ----------------------------------------------------------------------

#: Names that look public but are helpers, not Keras backend functions.
_NOT_BACKEND_FUNCTIONS = frozenset({"annotations", "builtins", "math", "np", "torch", "F", "Any", "Callable",
                                    "Iterable", "Sequence"})


def implemented() -> list[str]:
    """Every backend function this module defines (for the spec's status check)."""
    return sorted(name for name, obj in globals().items()
                  if callable(obj) and not name.startswith("_") and name not in _NOT_BACKEND_FUNCTIONS
                  and getattr(obj, "__module__", None) == __name__ and name != "implemented")
