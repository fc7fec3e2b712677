"""Lambda: a layer that wraps a user's torch function, as ``keras.layers.Lambda`` wraps a Keras one.

It has no spec entry (the suite cannot draw a function an oracle could run too); it is tested in
``tests/impl/test_lambda.py`` against Keras Lambdas written to compute the same thing.

Serialization follows Keras 3 and is safe by default:

* ``get_config()`` gives Keras 3's config.  A named function is stored by name (Keras's
  ``{"class_name": "function", "config": name, ...}``).  A Python ``lambda`` would have to be stored
  as marshalled bytecode (Keras's ``"__lambda__"`` form), so ``get_config()`` refuses it with an
  error naming the layer, unless the caller opts in with ``get_config(unsafe_bytecode=True)``.
* ``from_config(config, custom_objects=None, safe_mode=True)`` resolves a function name only in the
  caller's ``custom_objects`` dict -- it never imports a module named in a config -- and loads
  bytecode only with ``safe_mode=False``, as Keras does.
"""

from __future__ import annotations

import base64
import inspect
import marshal
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from .base import Layer


class Lambda(Layer):
    """``function(inputs, **arguments)`` as a layer; ``output_shape`` (a shape without the batch
    axis, or a function of the input shape) and ``mask`` (None, a mask, or a function of
    ``(inputs, mask)``) as in Keras."""

    def __init__(self, function: Callable[..., Any], output_shape: Any = None, mask: Any = None,
                 arguments: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda '{self.name}': 'function' must be callable, got {function!r} [parameter(s): function]")
        if output_shape is not None and not callable(output_shape):
            if not isinstance(output_shape, (list, tuple)) or not all(
                    d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0) for d in output_shape):
                raise TypeError(f"Lambda '{self.name}': 'output_shape' must be a tuple of sizes (no batch axis), a "
                                f"function of the input shape, or None; got {output_shape!r} [parameter(s): output_shape]")
            output_shape = tuple(output_shape)
        if arguments is not None and not isinstance(arguments, Mapping):
            raise TypeError(f"Lambda '{self.name}': 'arguments' must be a dict of keyword arguments, got "
                            f"{arguments!r} [parameter(s): arguments]")
        self.function = function
        self.arguments = dict(arguments or {})
        self.mask = mask
        self._output_shape = output_shape
        # Keras: a layer with a mask (function) supports masking; without, it drops the input mask.
        self.supports_masking = mask is not None  # type: ignore[misc]
        takes = _parameters(function)
        self._fn_takes_mask, self._fn_takes_training = "mask" in takes, "training" in takes

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        kwargs = dict(self.arguments)
        if self._fn_takes_mask:
            kwargs["mask"] = mask
        if self._fn_takes_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def compute_output_shape(self, input_shape: Any) -> Any:
        if callable(self._output_shape):
            return self._output_shape(input_shape)
        if self._output_shape is not None:
            batch = _first_dim(input_shape)
            return (batch, *self._output_shape)
        return self._infer_output_shape(input_shape)

    def _infer_output_shape(self, input_shape: Any) -> Any:
        """Run the function on two sets of shape-only ("meta") tensors, unknown sizes once 2 and once 3:
        an output size that differs between the runs follows an unknown input size (None)."""
        try:
            first = _shapes_of(self.call(_meta_inputs(input_shape, 2, self._compute_dtype)))
            second = _shapes_of(self.call(_meta_inputs(input_shape, 3, self._compute_dtype)))
        except Exception as exc:  # noqa: BLE001 - any failure of the user's function means "cannot infer"
            raise NotImplementedError(
                f"Lambda '{self.name}': could not infer the output shape of {_describe(self.function)} on input shape "
                f"{input_shape} ({type(exc).__name__}: {exc}); give output_shape"
            ) from None
        return _merge_shapes(first, second)

    # -- serialization ----------------------------------------------------------------------------
    def get_config(self, *, unsafe_bytecode: bool = False) -> dict[str, Any]:
        """Keras 3's config; a Python lambda (function, output_shape or mask) is refused unless
        ``unsafe_bytecode`` (its bytecode would be the config, and loading it runs code)."""
        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.serialize(),
            "function": self._serialize_function(self.function, "function", unsafe_bytecode),
        }
        if self._output_shape is not None:
            config["output_shape"] = (self._serialize_function(self._output_shape, "output_shape", unsafe_bytecode)
                                      if callable(self._output_shape) else self._output_shape)
        if self.mask is not None:
            config["mask"] = (self._serialize_function(self.mask, "mask", unsafe_bytecode) if callable(self.mask)
                              else _serialize_value(self.mask))
        config["arguments"] = {k: _serialize_value(v) for k, v in self.arguments.items()}
        return config

    def _serialize_function(self, fn: Callable[..., Any], what: str, unsafe_bytecode: bool) -> dict[str, Any]:
        if isinstance(fn, types.LambdaType) and fn.__name__ == "<lambda>":
            if not unsafe_bytecode:
                raise ValueError(
                    f"Lambda '{self.name}': cannot serialize {what}={_describe(fn)}: a Python lambda can only be stored "
                    f"as bytecode, which runs arbitrary code when loaded. Use a named function (stored by name, "
                    f"loaded from custom_objects), or get_config(unsafe_bytecode=True) if the config stays trusted."
                )
            return {"class_name": "__lambda__", "config": _dump_bytecode(fn)}
        name = getattr(fn, "__name__", None)
        if name is None:
            raise ValueError(f"Lambda '{self.name}': cannot serialize {what}={fn!r}: it has no name")
        # Keras 3's serialize_keras_object of an unregistered function: only its name is kept.
        return {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                    safe_mode: bool = True) -> Lambda:
        """Rebuild from ``get_config()``: functions by name from ``custom_objects`` only; bytecode
        (a serialized Python lambda) only with ``safe_mode=False``."""
        config = dict(config)
        name = config.get("name", "lambda")
        for key in ("function", "output_shape", "mask"):
            value = config.get(key)
            if isinstance(value, Mapping) and value.get("class_name") in ("__lambda__", "function"):
                config[key] = _load_function(name, key, value, custom_objects or {}, safe_mode)
            elif key == "output_shape" and isinstance(value, list):
                config[key] = tuple(value)
            elif key == "mask" and isinstance(value, Mapping) and value.get("class_name") == "__tensor__":
                config[key] = _deserialize_value(value)
        config["arguments"] = {k: _deserialize_value(v) for k, v in (config.get("arguments") or {}).items()}
        return cls(**config)


# -- helpers -----------------------------------------------------------------------------------------
def _parameters(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # builtins without a signature take neither
        return set()


def _describe(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _first_dim(shape: Any) -> Any:
    while isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return shape[0] if shape else None


def _meta_inputs(shape: Any, unknown: int, dtype: torch.dtype) -> Any:
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [_meta_inputs(s, unknown, dtype) for s in shape]
    return torch.empty([unknown if d is None else int(d) for d in shape], dtype=dtype, device="meta")


def _shapes_of(outputs: Any) -> Any:
    if isinstance(outputs, (list, tuple)):
        return [_shapes_of(o) for o in outputs]
    return tuple(outputs.shape)


def _merge_shapes(first: Any, second: Any) -> Any:
    if isinstance(first, list):
        return [_merge_shapes(a, b) for a, b in zip(first, second)]
    return tuple(a if a == b else None for a, b in zip(first, second))


def _serialize_value(value: Any) -> Any:
    """Keras's form of an argument or mask: tensors as ``__tensor__`` dicts, containers recursively."""
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().numpy()
        return {"class_name": "__tensor__", "config": {"value": array.tolist(), "dtype": str(array.dtype)}}
    if isinstance(value, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": value.tolist(), "dtype": str(value.dtype)}}
    if isinstance(value, (list, tuple)):
        return [_serialize_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _serialize_value(v) for k, v in value.items()}
    return value


def _deserialize_value(value: Any) -> Any:
    if isinstance(value, Mapping) and value.get("class_name") in ("__tensor__", "__numpy__"):
        array = np.asarray(value["config"]["value"], dtype=value["config"]["dtype"])
        return torch.from_numpy(array) if value["class_name"] == "__tensor__" else array
    if isinstance(value, list):
        return [_deserialize_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _deserialize_value(v) for k, v in value.items()}
    return value


def _dump_bytecode(fn: types.FunctionType) -> dict[str, Any]:
    """Keras's ``func_dump``: base64 of the marshalled code, the defaults and the closure's values."""
    code = base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")
    closure = tuple(cell.cell_contents for cell in fn.__closure__) if fn.__closure__ else None
    return {"code": code, "defaults": fn.__defaults__, "closure": closure}


def _load_function(layer: str, key: str, value: Mapping[str, Any], custom_objects: Mapping[str, Any],
                   safe_mode: bool) -> Callable[..., Any]:
    if value["class_name"] == "function":
        name = value.get("config")
        fn = custom_objects.get(name) if isinstance(name, str) else None
        if not callable(fn):
            raise ValueError(
                f"Lambda '{layer}': {key} names the function {name!r}, which is not in custom_objects; pass "
                f"custom_objects={{{name!r}: {name}}} (keraspec never imports a module a config names)"
            )
        return fn
    if safe_mode:
        raise ValueError(
            f"Lambda '{layer}': {key} is a serialized Python lambda (bytecode); loading it runs arbitrary code, so it "
            f"is refused by default. If you trust the config, pass safe_mode=False, as Keras asks."
        )
    inner = value["config"]
    code = marshal.loads(base64.decodebytes(inner["code"].encode("ascii")))  # opted in: safe_mode=False
    closure = inner.get("closure")
    cells = tuple(types.CellType(c) for c in closure) if closure else None
    defaults = tuple(inner["defaults"]) if inner.get("defaults") is not None else None
    return types.FunctionType(code, globals(), code.co_name, defaults, cells)


__all__ = ["Lambda"]
