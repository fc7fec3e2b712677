"""Keras weight regularizers in PyTorch: ``penalty = regularizer(weight)``, a scalar tensor.

Formulas, defaults, validation and ``get_config()`` are Keras 3's (``keras`` 3.15):

* ``L1(l1=0.01)``: ``l1 * sum(|w|)``;
* ``L2(l2=0.01)``: ``l2 * sum(w**2)`` (tf_keras writes ``2 * l2 * tf.nn.l2_loss(w)``, the same);
* ``L1L2(l1=0.0, l2=0.0)``: the sum of the two terms that are non-zero;
* ``OrthogonalRegularizer(factor=0.01, mode="rows")``.

Keras 3 keeps ``L1.l1`` and ``OrthogonalRegularizer.factor`` as float32 tensors, so their
``get_config()`` reports the float32-rounded number (``0.01`` -> ``0.009999999776482582``);
``L2`` and ``L1L2`` keep Python floats.  When *applied*, every factor goes through
``ops.cast(factor, x.dtype)``, which converts a Python float via a float32 tensor, so even a
float64 weight is penalised with the float32-rounded factor.  This module reproduces both.
(tf_keras rounds every factor to float32, in its config too.)

The weight is in Keras's layout; the penalties are layout-independent sums except
``OrthogonalRegularizer``, whose rows/columns are those of the Keras-layout 2-D kernel.
"""

from __future__ import annotations

import difflib
import inspect
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ._serialization import keras_serialize

#: ``keras.backend.epsilon()``.
EPSILON = 1e-7


def _float32(value: float) -> float:
    """``value`` rounded to float32 and back, as ``float(ops.convert_to_tensor(value))`` gives."""
    return struct.unpack("f", struct.pack("f", value))[0]


def validate_float_arg(value: Any, name: str) -> float:
    """A non-negative finite number as ``float``; anything else raises ``ValueError`` (Keras 3's rule)."""
    if not isinstance(value, (float, int)) or math.isinf(value) or math.isnan(value) or value < 0:
        raise ValueError(
            f"Invalid value for argument {name}: expected a non-negative float.Received: {name}={value}"
        )
    return float(value)


class Regularizer:
    """Base class: ``__call__(weight) -> scalar penalty``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor | float:
        return 0.0

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError(f"{self} does not implement get_config()")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Regularizer:
        return cls(**config)

    def __repr__(self) -> str:
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class L1(Regularizer):
    """``l1 * sum(|w|)``; ``l1`` is held float32-rounded, like Keras 3."""

    def __init__(self, l1: float | None = 0.01) -> None:
        l1 = 0.01 if l1 is None else l1
        self.l1 = _float32(validate_float_arg(l1, name="l1"))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # vector_norm(ord=1) is sum(|x|) in one kernel, without the |x| temporary.
        return self.l1 * torch.linalg.vector_norm(x, ord=1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(w**2)``."""

    def __init__(self, l2: float | None = 0.01) -> None:
        l2 = 0.01 if l2 is None else l2
        self.l2 = validate_float_arg(l2, name="l2")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _float32(self.l2) * _sum_of_squares(x)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``, each term only when its factor is non-zero."""

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0) -> None:
        l1 = 0.0 if l1 is None else l1
        l2 = 0.0 if l2 is None else l2
        self.l1 = validate_float_arg(l1, name="l1")
        self.l2 = validate_float_arg(l2, name="l2")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        penalty: torch.Tensor | None = None
        if self.l1 != 0.0:
            penalty = _float32(self.l1) * torch.linalg.vector_norm(x, ord=1)
        if self.l2 != 0.0:
            term = _float32(self.l2) * _sum_of_squares(x)
            penalty = term if penalty is None else penalty + term
        if penalty is None:
            return torch.zeros((), dtype=x.dtype, device=x.device)
        return penalty

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Penalises non-orthogonality of the rows (``mode="rows"``) or columns of a 2-D kernel.

    ``factor * 0.5 * sum(|P - diag P|) / (n (n - 1) / 2)`` where ``P`` is the Gram matrix of the
    L2-normalised rows/columns (normalised as Keras does: ``x * min(rsqrt(sum x**2), 1/eps)``).
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = _float32(validate_float_arg(factor, name="factor"))
        if mode not in {"rows", "columns"}:
            raise ValueError(
                'Invalid value for argument `mode`. Expected one of {"rows", "columns"}. ' f"Received: mode={mode}"
            )
        self.mode = mode

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(
                f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={tuple(x.shape)}"
            )
        axis = 1 if self.mode == "rows" else 0
        inv_norm = torch.rsqrt(x.square().sum(dim=axis, keepdim=True))
        if 1.0 / EPSILON <= torch.finfo(x.dtype).max:  # in float16 the cap is inf: no cap, as in TF
            inv_norm = inv_norm.clamp_max(1.0 / EPSILON)
        unit = x * inv_norm
        product = unit @ unit.T if self.mode == "rows" else unit.T @ unit
        size = product.shape[0]
        off_diagonal = product.abs().sum() - torch.diagonal(product).abs().sum()
        num_pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * off_diagonal / num_pairs

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


def _sum_of_squares(x: torch.Tensor) -> torch.Tensor:
    return torch.sum(x * x)


# -- lookup ----------------------------------------------------------------------------------------
#: Every name resolved: Keras 3's class and snake_case names plus tf_keras's "l1_l2".
NAMES: dict[str, type[Regularizer]] = {
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "l1": L1,
    "l2": L2,
    "l1l2": L1L2,
    "l1_l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def _lookup(name: str) -> type[Regularizer]:
    cls = NAMES.get(name)
    if cls is None:
        close = difflib.get_close_matches(name, list(NAMES), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown regularizer {name!r}.{hint} Known regularizers: {', '.join(sorted(NAMES))}.")
    return cls


def deserialize(config: Mapping[str, Any] | str) -> Regularizer:
    """A regularizer from a Keras-3 / tf_keras serialized dict or a name."""
    if isinstance(config, str):
        return get(config)  # type: ignore[return-value]
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"Could not interpret regularizer identifier: {config!r}")
    cls = _lookup(str(config["class_name"]))
    kwargs = dict(config.get("config") or {})
    try:
        return cls.from_config(kwargs)
    except TypeError as err:
        allowed = list(inspect.signature(cls.__init__).parameters)[1:]
        raise ValueError(f"Invalid config for regularizer {cls.__name__}: {kwargs!r} (arguments: {allowed})") from err


def get(identifier: Any) -> Regularizer | Callable[[torch.Tensor], Any] | None:
    """Resolve ``identifier`` like ``keras.regularizers.get``.

    ``None`` -> ``None``; a :class:`Regularizer` or other callable -> itself; a Regularizer class
    -> a default instance; a name -> a default instance, except ``"l1_l2"``, which only tf_keras
    resolves and which there means ``L1L2(l1=0.01, l2=0.01)`` (Keras 3 rejects the string; its
    ``"l1l2"``/``"L1L2"`` give ``L1L2(0.0, 0.0)``); a dict -> the configured instance.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier == "l1_l2":
            return L1L2(l1=0.01, l2=0.01)
        return _lookup(identifier)()
    if isinstance(identifier, Mapping):
        return deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Regularizer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")


def serialize(regularizer: Regularizer | str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Keras 3's serialized form (``None`` stays ``None``)."""
    return keras_serialize(regularizer, Regularizer, get, "keras.regularizers")


# Keras's lower-case aliases of the classes.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

__all__ = [
    "EPSILON", "L1", "L1L2", "L2", "NAMES", "OrthogonalRegularizer", "Regularizer", "deserialize", "get",
    "serialize", "validate_float_arg",
]
