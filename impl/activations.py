"""Keras activation functions in PyTorch, looked up by the names Keras accepts.

Every activation that ``keras.activations.get`` (Keras 3) or ``tf_keras.activations.get`` (Keras 2)
resolves from a string is here, with the semantics of that oracle running on TensorFlow.  Where the
two disagree (see :data:`DIFFERENCES`) both definitions exist and the *flavor* picks one
(:mod:`keraspec.impl.flavor`).

The functions take and return ``torch.Tensor`` of any floating dtype on any device, are
differentiable, and call the fused ``torch.nn.functional`` kernel wherever its semantics are the
same as Keras's.  Where they are not, the function is written out, and the docstring says why:
``softplus`` (TensorFlow's cut-off), ``hard_tanh`` (gradient at the kinks), ``sparsemax`` (Keras's
threshold formula), and four float64/float32 details of TensorFlow that are far above float64
rounding: ``gelu``'s and ``leaky_relu``'s constants are float32-rounded even in float64,
``F.hardsigmoid``'s backward uses a float32 1/6, and torch's CPU float32 square root (which
``squareplus`` amplifies by cancellation) is not correctly rounded.

``tf_keras``'s ``activations.get`` also resolves the *layer classes* ``ReLU``, ``LeakyReLU``,
``PReLU``, ``ELU``, ``Softmax`` and ``ThresholdedReLU`` (and even ``get``/``serialize``), because
it collects every callable in two modules; calling one of those on a tensor does not compute an
activation, so they are deliberately not listed here.
"""

from __future__ import annotations

import difflib
import math
import struct
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F

from .flavor import FLAVORS, get_flavor, resolve_flavor, set_flavor, use_flavor

Activation = Callable[[torch.Tensor], torch.Tensor]
Identifier = str | Mapping[str, Any] | Callable[..., Any] | None

#: ``with flavor("tf_keras"): ...`` -- the same context manager as :func:`flavor.use_flavor`.
flavor = use_flavor


# -- the functions ---------------------------------------------------------------------------------
def linear(x: torch.Tensor) -> torch.Tensor:
    """Identity; returns ``x`` itself (no copy), as Keras does."""
    return x


def relu(x: torch.Tensor) -> torch.Tensor:
    """``max(x, 0)``."""
    return F.relu(x)


def relu6(x: torch.Tensor) -> torch.Tensor:
    """``min(max(x, 0), 6)``."""
    return F.relu6(x)


def _float32(value: float) -> float:
    """``value`` rounded to float32 (TensorFlow passes op attributes like ``alpha`` as float32)."""
    return struct.unpack("f", struct.pack("f", value))[0]


#: ``tf.nn.leaky_relu``'s ``alpha`` is a float32 op attribute, so even a float64 input is scaled by
#: float32(0.2) = 0.20000000298...; in float32 and below this is the same number as 0.2.
_LEAKY_SLOPE = _float32(0.2)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """``x`` if ``x > 0`` else ``0.2 * x`` (both oracles default the slope to 0.2; see ``_LEAKY_SLOPE``)."""
    return F.leaky_relu(x, _LEAKY_SLOPE)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``1 / (1 + exp(-x))``."""
    return torch.sigmoid(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent."""
    return torch.tanh(x)


def exponential(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)``."""
    return torch.exp(x)


_SOFTPLUS_CUTOFF: dict[torch.dtype, float] = {
    dtype: -(math.log(torch.finfo(dtype).eps) + 2.0)
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
}


def _softplus_cutoff(dtype: torch.dtype) -> float:
    cutoff = _SOFTPLUS_CUTOFF.get(dtype)
    if cutoff is None:
        cutoff = -(math.log(torch.finfo(dtype).eps) + 2.0) if dtype.is_floating_point else 20.0
    return cutoff


def softplus(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + exp(x))``.

    TensorFlow's kernel returns ``x`` itself once ``x > -(log(eps) + 2)`` of the dtype (13.9 in
    float32, 34.0 in float64) where torch's default cut-off is a fixed 20; in float64 the gap
    between 20 and 34 is ~1e-9 absolute, far above float64 rounding, so the cut-off is TF's.
    """
    return F.softplus(x, beta=1.0, threshold=_softplus_cutoff(x.dtype))


def softsign(x: torch.Tensor) -> torch.Tensor:
    """``x / (1 + |x|)``."""
    return F.softsign(x)


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis (Keras 3 accepts a rank-1 input)."""
    return torch.softmax(x, dim=-1)


def _softmax_tf_keras(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis; tf_keras refuses inputs of rank <= 1."""
    if x.dim() <= 1:
        raise ValueError(f"Cannot apply softmax to a tensor that is 1D. Received input shape: {tuple(x.shape)}")
    return torch.softmax(x, dim=-1)


_softmax_tf_keras.__name__ = "softmax"
_softmax_tf_keras.__qualname__ = "softmax"


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    """Log of the softmax over the last axis."""
    return F.log_softmax(x, dim=-1)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class _ExponentialLinear(torch.autograd.Function):
    """TensorFlow's Elu/Selu kernels, forward and gradient.

    They differ from torch's ``F.elu``/``F.selu`` at tiny negative inputs, which wide input
    magnitudes reach: TF computes ``exp(x) - 1`` (not ``expm1``), so ``|x|`` below half an ulp of 1
    gives exactly 0, and its gradient kernels pick the branch from the *output*'s sign
    (``EluGrad``/``SeluGrad``: ``y < 0 ? g * (y + scale * alpha) : g * scale``).  At such an ``x``
    torch's SELU gradient is ``scale * alpha`` (1.758) where TF's is ``scale`` (1.051)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float, scale: float) -> torch.Tensor:
        y = torch.where(x > 0, scale * x, (scale * alpha) * (torch.exp(x) - 1))
        ctx.save_for_backward(y)
        ctx.constants = (alpha, scale)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (y,) = ctx.saved_tensors
        alpha, scale = ctx.constants
        return grad * torch.where(y < 0, y + scale * alpha, torch.full_like(y, scale)), None, None


def elu(x: torch.Tensor) -> torch.Tensor:
    """``x`` if ``x > 0`` else ``exp(x) - 1`` (alpha 1), as TensorFlow's kernel computes it."""
    return _ExponentialLinear.apply(x, 1.0, 1.0)


def selu(x: torch.Tensor) -> torch.Tensor:
    """``scale * elu(x, alpha)`` with the SELU constants alpha=1.6732632..., scale=1.0507009...

    Both oracles call ``tf.nn.selu``, whose constants are torch's; forward and gradient follow TF's
    kernel (:class:`_ExponentialLinear`).
    """
    return _ExponentialLinear.apply(x, _SELU_ALPHA, _SELU_SCALE)


def celu(x: torch.Tensor) -> torch.Tensor:
    """``max(x, 0) + alpha * expm1(min(x, 0) / alpha)`` with alpha 1."""
    return F.celu(x, 1.0)


#: ``sqrt(1/2)`` rounded to float32: ``tf.nn.gelu`` builds its constant with
#: ``cast(0.7071067811865476, dtype)``, which goes through a float32 tensor first.
_SQRT_HALF_FLOAT32 = _float32(math.sqrt(0.5))


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU, ``0.5 x erfc(-x / sqrt 2)``.

    Both oracles' ``activations.gelu`` default to ``approximate=False``; note that
    ``keras.ops.gelu`` (not used by the string ``"gelu"``) defaults to the tanh approximation.

    In float64, TensorFlow multiplies by ``sqrt(1/2)`` *rounded to float32* (relative error
    ~1e-8, i.e. ~1e-9 absolute in the output -- millions of float64 ulps), so float64 is written
    out with that constant to agree with the oracles; every other dtype uses the fused kernel,
    where the constant is exact at the working precision anyway.
    """
    if x.dtype == torch.float64:
        return 0.5 * x * torch.special.erfc(x * -_SQRT_HALF_FLOAT32)
    # torch's fused kernel gives NaN at +inf and overflows to inf near the largest finite value,
    # where TF's 0.5 * x * (1 + erf(x / sqrt 2)) gives x; above _GELU_IDENTITY_FROM GELU is x, so the
    # kernel sees x clipped there and the excess is added back (cheaper than torch.where on CPU).
    clipped = x.clamp(max=_GELU_IDENTITY_FROM)
    return F.gelu(clipped) + (x - clipped)


#: Where GELU equals x in float32 and narrower dtypes: erf(x / sqrt 2) rounds to 1 beyond x = 6.
_GELU_IDENTITY_FROM = 8.0


def silu(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)`` (also called swish)."""
    return F.silu(x)


def _swish(x: torch.Tensor) -> torch.Tensor:
    """``x * sigmoid(x)``; tf_keras's own name for silu."""
    return F.silu(x)


_swish.__name__ = _swish.__qualname__ = "swish"


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 3: ``relu6(x + 3) / 6`` -- 0 below -3, 1 above 3.

    ``F.hardsigmoid``'s backward multiplies by a float32 1/6 even for float64, so float64 is
    written out; the other dtypes use the fused kernel.
    """
    if x.dtype == torch.float64:
        return F.relu6(x + 3.0) / 6.0
    return F.hardsigmoid(x)


def _hard_sigmoid_tf_keras(x: torch.Tensor) -> torch.Tensor:
    """tf_keras: ``clip(0.2 * x + 0.5, 0, 1)`` -- 0 below -2.5, 1 above 2.5.

    ``torch.clamp`` lets the gradient through at the clip points, as ``tf.clip_by_value`` does.
    """
    return torch.clamp((x * 0.2).add_(0.5), 0.0, 1.0)


_hard_sigmoid_tf_keras.__name__ = _hard_sigmoid_tf_keras.__qualname__ = "hard_sigmoid"


def hard_silu(x: torch.Tensor) -> torch.Tensor:
    """``x * relu6(x + 3) / 6`` (also called hard swish)."""
    return F.hardswish(x)


def mish(x: torch.Tensor) -> torch.Tensor:
    """``x * tanh(softplus(x))``."""
    return F.mish(x)


def glu(x: torch.Tensor) -> torch.Tensor:
    """Gated linear unit over the last axis: ``a * sigmoid(b)`` for the two halves ``a``, ``b``."""
    if x.dim() == 0 or x.shape[-1] % 2 != 0:
        raise ValueError(f"axis size must be divisible by 2. Received: x.shape={tuple(x.shape)} with axis=-1")
    return F.glu(x, dim=-1)


def sparse_plus(x: torch.Tensor) -> torch.Tensor:
    """0 for ``x <= -1``, ``(x + 1)**2 / 4`` for ``-1 < x < 1``, ``x`` for ``x >= 1``."""
    return torch.where(x <= -1.0, 0.0, torch.where(x < 1.0, 0.25 * (x + 1.0).square(), x))


def squareplus(x: torch.Tensor) -> torch.Tensor:
    """``(x + sqrt(x**2 + b)) / 2`` with b = 4, computed as Keras computes it so it rounds alike.

    For negative ``x`` the sum cancels, so a one-ulp error in the square root becomes a large
    relative (and, for large ``|x|``, absolute) error in the result.  TensorFlow's square root is
    correctly rounded; torch's vectorised float32 square root on CPU is not (about 15% of
    results are one ulp off in torch 2.13), so on CPU float32 takes its square root in float64,
    which rounds back to the correctly rounded float32 value.
    """
    s = x.square() + 4.0
    if s.dtype == torch.float32 and s.device.type == "cpu":
        s = s.double().sqrt_().float()
    else:
        s = torch.sqrt(s)
    return (x + s) / 2.0


def soft_shrink(x: torch.Tensor) -> torch.Tensor:
    """``x - 0.5`` above 0.5, ``x + 0.5`` below -0.5, else 0."""
    return F.softshrink(x, 0.5)


def hard_shrink(x: torch.Tensor) -> torch.Tensor:
    """``x`` where ``|x| > 0.5``, else 0."""
    return F.hardshrink(x, 0.5)


def tanh_shrink(x: torch.Tensor) -> torch.Tensor:
    """``x - tanh(x)``."""
    return F.tanhshrink(x)


def hard_tanh(x: torch.Tensor) -> torch.Tensor:
    """``clip(x, -1, 1)``.

    ``torch.clamp`` rather than ``F.hardtanh``: at exactly +-1 TF's ``clip_by_value`` (and clamp)
    pass the gradient through, hardtanh's backward blocks it.
    """
    return torch.clamp(x, -1.0, 1.0)


def log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``log(sigmoid(x))``, computed stably."""
    return F.logsigmoid(x)


def sparse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """0 for ``x <= -1``, 1 for ``x >= 1``, ``(x + 1) / 2`` between (zero gradient at the ends)."""
    return torch.where(x <= -1.0, 0.0, torch.where(x >= 1.0, 1.0, 0.5 * (x + 1.0)))


def sparsemax(x: torch.Tensor) -> torch.Tensor:
    """Keras 3's sparsemax over the last axis, *as Keras 3.15 computes it*.

    Keras (every backend) takes the threshold as ``tau = (sum_{j in support} cumsum_j - 1) / k``
    -- the sum of all the supported cumulative sums -- where Martins & Astudillo's sparsemax uses
    the cumulative sum at ``k`` only.  The two agree when the support has one element; otherwise
    Keras's outputs no longer sum to one.  The conformance target is Keras, so this mirrors it.
    """
    if x.dim() == 0:
        raise ValueError("sparsemax needs an input of rank >= 1; received a scalar")
    z_sorted = torch.sort(x, dim=-1, descending=True).values
    cumsum = torch.cumsum(z_sorted, dim=-1)
    r = torch.arange(1, x.shape[-1] + 1, device=x.device).to(x.dtype)
    support = z_sorted - (cumsum - 1.0) / r > 0
    k = support.sum(dim=-1, keepdim=True).to(x.dtype)
    tau = (torch.where(support, cumsum, 0.0).sum(dim=-1, keepdim=True) - 1.0) / k
    return torch.clamp_min(x - tau, 0.0)


def threshold(x: torch.Tensor, threshold: float, default_value: float) -> torch.Tensor:
    """``x`` where ``x > threshold``, else ``default_value``.

    Keras 3 resolves the string ``"threshold"`` to this function although it needs two more
    arguments, so ``Activation("threshold")`` only fails when called; the same happens here.
    """
    return torch.where(x > threshold, x, default_value)


# -- the tables ------------------------------------------------------------------------------------
_BOTH = ("keras3", "tf_keras")
_K3 = ("keras3",)

#: Activation name -> the oracles that resolve that string.
ACTIVATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "celu": _K3,
        "elu": _BOTH,
        "exponential": _BOTH,
        "gelu": _BOTH,
        "glu": _K3,
        "hard_shrink": _K3,
        "hard_sigmoid": _BOTH,
        "hard_silu": _K3,
        "hard_swish": _K3,
        "hard_tanh": _K3,
        "leaky_relu": _BOTH,
        "linear": _BOTH,
        "log_sigmoid": _K3,
        "log_softmax": _BOTH,
        "mish": _BOTH,
        "relu": _BOTH,
        "relu6": _BOTH,
        "selu": _BOTH,
        "sigmoid": _BOTH,
        "silu": _BOTH,
        "soft_shrink": _K3,
        "softmax": _BOTH,
        "softplus": _BOTH,
        "softsign": _BOTH,
        "sparse_plus": _K3,
        "sparse_sigmoid": _K3,
        "sparsemax": _K3,
        "squareplus": _K3,
        "swish": _BOTH,
        "tanh": _BOTH,
        "tanh_shrink": _K3,
        "threshold": _K3,
    }
)

#: Activation name -> how keras3 and tf_keras differ on it (names in only one oracle are in
#: :data:`ACTIVATIONS`; every name not listed here behaves identically in both).
DIFFERENCES: Mapping[str, str] = MappingProxyType(
    {
        "hard_sigmoid": (
            "keras3: relu6(x + 3) / 6 (0 below -3, 1 above 3, slope 1/6); "
            "tf_keras: clip(0.2 * x + 0.5, 0, 1) (0 below -2.5, 1 above 2.5, slope 0.2)"
        ),
        "softmax": (
            "tf_keras raises ValueError on inputs of rank <= 1 ('Cannot apply softmax to a tensor that is 1D'); "
            "keras3 normalises a rank-1 input along its only axis"
        ),
        "swish": (
            "same function x * sigmoid(x); keras3 treats 'swish' as an alias of silu and serializes it as 'silu', "
            "tf_keras serializes it as 'swish'"
        ),
        "silu": (
            "same function x * sigmoid(x); keras3 serializes it as 'silu', tf_keras resolves 'silu' to its swish "
            "function and serializes it as 'swish'"
        ),
    }
)

_COMMON: dict[str, Activation] = {
    "elu": elu,
    "exponential": exponential,
    "gelu": gelu,
    "leaky_relu": leaky_relu,
    "linear": linear,
    "log_softmax": log_softmax,
    "mish": mish,
    "relu": relu,
    "relu6": relu6,
    "selu": selu,
    "sigmoid": sigmoid,
    "softplus": softplus,
    "softsign": softsign,
    "tanh": tanh,
}

_BY_FLAVOR: dict[str, dict[str, Callable[..., torch.Tensor]]] = {
    "keras3": {
        **_COMMON,
        "celu": celu,
        "glu": glu,
        "hard_shrink": hard_shrink,
        "hard_sigmoid": hard_sigmoid,
        "hard_silu": hard_silu,
        "hard_swish": hard_silu,
        "hard_tanh": hard_tanh,
        "log_sigmoid": log_sigmoid,
        "silu": silu,
        "soft_shrink": soft_shrink,
        "softmax": softmax,
        "sparse_plus": sparse_plus,
        "sparse_sigmoid": sparse_sigmoid,
        "sparsemax": sparsemax,
        "squareplus": squareplus,
        "swish": silu,
        "tanh_shrink": tanh_shrink,
        "threshold": threshold,
    },
    "tf_keras": {
        **_COMMON,
        "hard_sigmoid": _hard_sigmoid_tf_keras,
        "silu": _swish,
        "softmax": _softmax_tf_keras,
        "swish": _swish,
    },
}

#: Alias -> the name the flavour's ``get_config`` writes.
_CANONICAL: dict[str, dict[str, str]] = {
    "keras3": {"swish": "silu", "hard_swish": "hard_silu"},
    "tf_keras": {"silu": "swish"},
}

#: Our function objects -> their (keras3-canonical) name, for serializing a callable.
_NAME_OF: dict[Callable[..., Any], str] = {}
for _table in _BY_FLAVOR.values():
    for _name, _fn in _table.items():
        _NAME_OF.setdefault(_fn, _CANONICAL["keras3"].get(_name, _name))
_NAME_OF[_swish] = "swish"
del _table, _name, _fn

assert all(set(_BY_FLAVOR[f]) == {n for n, o in ACTIVATIONS.items() if f in o} for f in FLAVORS)


# -- lookup ----------------------------------------------------------------------------------------
def _unknown(name: str) -> ValueError:
    lowered = {n.lower(): n for n in ACTIVATIONS}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown activation function {name!r}.{hint} Known activations: {', '.join(sorted(ACTIVATIONS))}."
    )


def _check_available(name: str, flavor_name: str) -> None:
    if name not in ACTIVATIONS:
        raise _unknown(name)
    oracles = ACTIVATIONS[name]
    if flavor_name not in oracles:
        other = " and ".join(oracles)
        raise ValueError(
            f"Activation {name!r} exists only in {other}, not in {flavor_name}; "
            f"switch flavor (keraspec.impl.flavor.use_flavor({oracles[0]!r})) or choose another activation."
        )


def _name_from_dict(identifier: Mapping[str, Any]) -> str:
    """The activation name inside a Keras-3 (or tf_keras new-format) serialized function dict."""
    config = identifier.get("config")
    class_name = identifier.get("class_name")
    if isinstance(config, str) and class_name in ("function", None):
        return config
    if isinstance(config, Mapping) and isinstance(config.get("name"), str) and class_name == "function":
        return config["name"]
    raise ValueError(
        f"Could not interpret activation function identifier: {dict(identifier)!r}. Expected a serialized "
        "Keras activation such as {'module': 'keras.activations', 'class_name': 'function', "
        "'config': 'relu', 'registered_name': 'relu'}."
    )


def get(identifier: Identifier, flavor: str | None = None) -> Callable[..., torch.Tensor]:
    """The activation function for ``identifier`` in ``flavor`` (default: the flavour in force).

    ``identifier`` is a name (``"relu"``), ``None`` (linear), a callable (returned unchanged, as
    Keras does) or a Keras-3 serialized function dict.  An unknown name raises ``ValueError``
    with the closest names; a name that exists only in the other oracle raises ``ValueError``
    saying which one has it.
    """
    flavor_name = resolve_flavor(flavor)
    if identifier is None:
        return linear
    if isinstance(identifier, Mapping):
        identifier = _name_from_dict(identifier)
    if isinstance(identifier, str):
        _check_available(identifier, flavor_name)
        return _BY_FLAVOR[flavor_name][identifier]
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}")


def serialize(identifier: Identifier, flavor: str | None = None) -> str:
    """What Keras puts in ``get_config()['activation']`` for ``identifier``.

    ``None`` -> ``"linear"``; aliases become the name the flavour writes (keras3: ``"swish"`` ->
    ``"silu"``, ``"hard_swish"`` -> ``"hard_silu"``; tf_keras: ``"silu"`` -> ``"swish"``).  A
    callable is named by what it is (our functions) or by its ``__name__`` (e.g. Keras's own
    ``keras.activations.relu``); a callable that is not a known activation raises ``ValueError``,
    as Keras does for unregistered functions.
    """
    flavor_name = resolve_flavor(flavor)
    if identifier is None:
        return "linear"
    if isinstance(identifier, Mapping):
        identifier = _name_from_dict(identifier)
    if isinstance(identifier, str):
        name = identifier
    elif callable(identifier):
        try:
            name = _NAME_OF.get(identifier)
        except TypeError:  # unhashable callable object
            name = None
        if name is None:
            name = getattr(identifier, "__name__", None)
            if name not in ACTIVATIONS:
                raise ValueError(
                    f"Unknown activation function {identifier!r} cannot be serialized: it is not one of the "
                    f"Keras activations ({', '.join(sorted(ACTIVATIONS))})."
                )
    else:
        raise ValueError(f"Could not interpret activation function identifier: {identifier!r}")
    _check_available(name, flavor_name)
    return _CANONICAL[flavor_name].get(name, name)


def deserialize(config: str | Mapping[str, Any], flavor: str | None = None) -> Callable[..., torch.Tensor]:
    """Inverse of :func:`serialize` (accepts a name or a serialized dict)."""
    return get(config, flavor=flavor)


__all__ = [
    "ACTIVATIONS",
    "DIFFERENCES",
    "FLAVORS",
    "celu",
    "deserialize",
    "elu",
    "exponential",
    "flavor",
    "gelu",
    "get",
    "get_flavor",
    "glu",
    "hard_shrink",
    "hard_sigmoid",
    "hard_silu",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "log_softmax",
    "mish",
    "relu",
    "relu6",
    "selu",
    "serialize",
    "set_flavor",
    "sigmoid",
    "silu",
    "soft_shrink",
    "softmax",
    "softplus",
    "softsign",
    "sparse_plus",
    "sparse_sigmoid",
    "sparsemax",
    "squareplus",
    "tanh",
    "tanh_shrink",
    "threshold",
    "use_flavor",
]
