"""Keras 3's serialized form of initializers, regularizers and constraints, shared by those modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def keras_serialize(obj: Any, base: type, get: Callable[[Any], Any], module: str) -> dict[str, Any] | None:
    """``{"module": module, "class_name": ..., "config": ..., "registered_name": None}`` for ``obj``
    (an instance of ``base``, or anything ``get`` resolves to one); ``None`` stays ``None``."""
    if obj is None:
        return None
    if not isinstance(obj, base):
        obj = get(obj)
    if not isinstance(obj, base):
        raise ValueError(f"Cannot serialize {obj!r}: it is not a keraspec {base.__name__}.")
    return {"module": module, "class_name": type(obj).__name__, "config": obj.get_config(), "registered_name": None}
