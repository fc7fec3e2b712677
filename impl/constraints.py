"""Keras weight constraints in PyTorch: ``w_new = constraint(w)``, applied after each update.

The weight is in *Keras's* layout and ``axis`` means what it means in Keras: for a ``Dense``
kernel ``(input_dim, units)`` the default ``axis=0`` constrains each unit's incoming weight
vector; for a ``Conv2D`` kernel ``(kh, kw, in, out)`` Keras's docs recommend ``axis=[0, 1, 2]``.
A layer that stores a weight transposed for torch converts it to Keras's layout first (or maps
the axes).

Semantics are Keras 3's (``keras`` 3.15), with ``epsilon = keras.backend.epsilon() = 1e-7`` added
to the norm in the denominators, as Keras does.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ._serialization import keras_serialize

#: ``keras.backend.epsilon()``.
EPSILON = 1e-7

Axis = int | Sequence[int]


def _dims(axis: Axis) -> int | tuple[int, ...]:
    return axis if isinstance(axis, int) else tuple(int(a) for a in axis)


def _norms(w: torch.Tensor, axis: Axis) -> torch.Tensor:
    """``sqrt(sum(w**2, axis, keepdims=True))`` in one kernel."""
    return torch.linalg.vector_norm(w, ord=2, dim=_dims(axis), keepdim=True)


class Constraint:
    """Base class: ``__call__(w) -> constrained w`` (same shape and dtype)."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Constraint:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Rescale each slice along ``axis`` whose L2 norm exceeds ``max_value`` down to it.

    ``w * clip(norm, 0, max_value) / (epsilon + norm)``.
    """

    def __init__(self, max_value: float = 2, axis: Axis = 0) -> None:
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = _norms(w, self.axis)
        desired = torch.clamp(norms, 0, self.max_value)
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """``max(w, 0)``."""

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(w, 0)


class UnitNorm(Constraint):
    """``w / (epsilon + norm)`` along ``axis``."""

    def __init__(self, axis: Axis = 0) -> None:
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Pull each slice's norm towards ``[min_value, max_value]`` at ``rate`` (1 = all the way).

    ``desired = rate * clip(norm, min_value, max_value) + (1 - rate) * norm``;
    ``w * desired / (epsilon + norm)``.
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = 0) -> None:
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        norms = _norms(w, self.axis)
        desired = self.rate * torch.clamp(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


# -- lookup ----------------------------------------------------------------------------------------
#: Every name resolved: Keras 3's class and snake_case names plus tf_keras's old aliases.
NAMES: dict[str, type[Constraint]] = {
    "MaxNorm": MaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
    "MinMaxNorm": MinMaxNorm,
    "max_norm": MaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
    "min_max_norm": MinMaxNorm,
    "maxnorm": MaxNorm,  # tf_keras only
    "nonneg": NonNeg,  # tf_keras only
    "unitnorm": UnitNorm,  # tf_keras only
}


def _lookup(name: str) -> type[Constraint]:
    cls = NAMES.get(name)
    if cls is None:
        if name in ("RadialConstraint", "radial_constraint"):
            raise ValueError(f"Constraint {name!r} (tf_keras only) is not implemented in keraspec.")
        close = difflib.get_close_matches(name, list(NAMES), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown constraint {name!r}.{hint} Known constraints: {', '.join(sorted(NAMES))}.")
    return cls


def deserialize(config: Mapping[str, Any] | str) -> Constraint:
    """A constraint from a Keras-3 / tf_keras serialized dict or a name."""
    if isinstance(config, str):
        return _lookup(config)()
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"Could not interpret constraint identifier: {config!r}")
    cls = _lookup(str(config["class_name"]))
    kwargs = dict(config.get("config") or {})
    try:
        return cls.from_config(kwargs)
    except TypeError as err:
        allowed = list(inspect.signature(cls.__init__).parameters)[1:]
        raise ValueError(f"Invalid config for constraint {cls.__name__}: {kwargs!r} (arguments: {allowed})") from err


def get(identifier: Any) -> Constraint | Callable[[torch.Tensor], torch.Tensor] | None:
    """Resolve ``identifier`` like ``keras.constraints.get``: ``None`` -> ``None``; a Constraint or
    other callable -> itself; a Constraint class or a name -> a default instance; a dict -> the
    configured instance.  Unknown names raise ``ValueError`` with the closest names."""
    if identifier is None:
        return None
    if isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, (str, Mapping)):
        return deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Constraint):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret constraint identifier: {identifier!r}")


def serialize(constraint: Constraint | str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Keras 3's serialized form (``None`` stays ``None``)."""
    return keras_serialize(constraint, Constraint, get, "keras.constraints")


# Keras's lower-case aliases of the classes.
max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

__all__ = [
    "EPSILON", "Constraint", "MaxNorm", "MinMaxNorm", "NAMES", "NonNeg", "UnitNorm", "deserialize", "get",
    "serialize",
]
