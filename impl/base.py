"""The Keras-compatible base layer.

Every layer in :mod:`keraspec.impl` is a ``torch.nn.Module`` that also speaks Keras:

* constructed with Keras's arguments and defaults, validated against the spec (a bad value
  raises ``ValueError``/``TypeError`` naming the parameter and the rule it broke);
* built lazily on the first call (or explicitly with ``build(input_shape)``);
* called as ``layer(x, training=False, mask=None)`` on tensors in Keras's layout;
* ``get_weights()`` / ``set_weights()`` in Keras's order and shapes -- weights are *stored* in
  whatever layout the torch op wants, converted once when they are set, never per call;
* ``get_config()`` / ``from_config()``, ``compute_output_shape()``, ``compute_mask()``, ``losses``;
* Keras's dtype policies: a dtype name, or ``'mixed_float16'`` / ``'mixed_bfloat16'`` -- weights
  stored in float32 (``variable_dtype``, also ``dtype``), inputs cast to and computation and outputs
  in float16 / bfloat16 (``compute_dtype``); the weights are cast for the call by the base layer
  (:meth:`Layer._call_with_compute_weights`), so a layer's ``call`` needs no dtype code.

A layer class implements ``build``, ``call``, ``compute_output_shape`` and, if it masks,
``compute_mask``; configuration, weights and serialization are handled here.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import ml_dtypes
import numpy as np
import torch

from keraspec import spec as _spec

from . import activations, constraints, initializers, regularizers
from .flavor import get_flavor

Shape = tuple[int | None, ...]

_TORCH_DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
#: The arguments every Keras layer takes (one list, in the spec); the ones beyond name, dtype and
#: trainable (input shapes, dynamic, autocast) are accepted and have no effect on a torch layer.
BASE_ARGUMENTS = _spec.BASE_LAYER_ARGUMENTS


def torch_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return _TORCH_DTYPES[name]
    except KeyError:
        raise ValueError(f"unsupported dtype {name!r}; expected one of {sorted(_TORCH_DTYPES)}") from None


def dtype_name(dtype: torch.dtype) -> str:
    for name, value in _TORCH_DTYPES.items():
        if value == dtype:
            return name
    raise ValueError(f"unsupported dtype {dtype}")


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A detached CPU copy as numpy; bfloat16 becomes ``ml_dtypes.bfloat16``, as Keras returns it.

    A copy, not a view: ``.numpy()`` of a CPU tensor shares its memory, so a later ``set_weights``
    (or an optimizer step) would change arrays ``get_weights`` returned earlier -- Keras's never change."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.uint16).numpy().view(ml_dtypes.bfloat16).copy()
    return tensor.numpy().copy()


def from_numpy(value: Any) -> torch.Tensor:
    """A tensor from an array-like, including ``ml_dtypes.bfloat16`` arrays (which torch cannot read)."""
    array = np.asarray(value)
    if array.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(np.ascontiguousarray(array).view(np.uint16)).view(torch.bfloat16)
    return torch.as_tensor(array)


#: Keras's mixed-precision policies: name -> (compute dtype, variable dtype) (one table, in the spec).
MIXED_POLICIES = _spec.MIXED_POLICIES


@dataclass(frozen=True)
class DTypePolicy:
    """Keras's dtype policy: a dtype name (compute and variable dtype both that dtype) or
    ``'mixed_float16'`` / ``'mixed_bfloat16'`` (weights stored in float32, inputs, computation and
    outputs in float16 / bfloat16).  ``layer.dtype`` is the variable dtype, as in Keras."""

    name: str
    compute_dtype: str
    variable_dtype: str

    @classmethod
    def from_name(cls, name: str) -> DTypePolicy:
        if name in MIXED_POLICIES:
            return cls(name, *MIXED_POLICIES[name])
        try:
            torch_dtype(name)
        except ValueError:
            raise ValueError(
                f"unsupported dtype {name!r}; expected one of {sorted(_TORCH_DTYPES)} "
                f"or a mixed-precision policy ({', '.join(MIXED_POLICIES)})"
            ) from None
        return cls(name, name, name)

    @property
    def is_mixed(self) -> bool:
        return self.compute_dtype != self.variable_dtype

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    def serialize(self) -> dict[str, Any]:
        """Keras 3's ``dtype_policies.serialize``."""
        return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": self.name}, "registered_name": None}

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


def _dtype_from_config(dtype: Any) -> str:
    """The policy name of Keras's dtype forms: None, a dtype or policy name, a torch dtype, a
    serialized DTypePolicy (Keras 3's dict, tf_keras's ``Policy`` dict) or a policy object."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, torch.dtype):
        return dtype_name(dtype)
    if isinstance(dtype, DTypePolicy):
        return dtype.name
    if isinstance(dtype, Mapping):
        name = dtype.get("config", {}).get("name", "float32")
    elif isinstance(dtype, str):
        name = dtype
    elif isinstance(getattr(dtype, "name", None), str) and hasattr(dtype, "compute_dtype"):
        name = dtype.name  # a Keras DTypePolicy or tf_keras Policy object
    else:
        raise TypeError(f"dtype must be a dtype name or a DTypePolicy config, got {dtype!r}")
    DTypePolicy.from_name(str(name))  # raises with a clear message for unknown names
    return str(name)


@dataclass(frozen=True)
class WeightLayout:
    """How a weight is stored for torch relative to Keras's layout (a fixed axis permutation)."""

    keras_to_torch: tuple[int, ...] | None = None

    def to_torch(self, value: torch.Tensor) -> torch.Tensor:
        if self.keras_to_torch is None:
            return value
        return value.permute(self.keras_to_torch).contiguous()

    def to_keras(self, value: torch.Tensor) -> torch.Tensor:
        if self.keras_to_torch is None:
            return value
        inverse = tuple(int(i) for i in np.argsort(self.keras_to_torch))
        return value.permute(inverse)


@dataclass
class _Weight:
    name: str
    keras_shape: tuple[int, ...]
    layout: WeightLayout
    regularizer: Callable[[torch.Tensor], torch.Tensor] | None
    constraint: Callable[[torch.Tensor], torch.Tensor] | None
    trainable: bool


@dataclass(frozen=True)
class InputSpec:
    """Like Keras's InputSpec: what an input must look like.  Checked on every call (cheaply)."""

    ndim: int | None = None
    min_ndim: int | None = None
    max_ndim: int | None = None
    axes: Mapping[int, int] | None = None


_name_counts: dict[str, int] = {}


def _auto_name(cls_name: str) -> str:
    base = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", cls_name).lower()
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower()
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


class Layer(torch.nn.Module):
    """Base of every keraspec layer: the Keras surface over a torch module."""

    #: Keras class name whose spec entry validates the config (None: the class's own name).
    spec_name: ClassVar[str | None] = None
    #: Whether an input mask passes through (Keras's ``supports_masking``).
    supports_masking: ClassVar[bool] = False

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype: Any = None,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        unknown = [k for k in kwargs if k not in BASE_ARGUMENTS]
        if unknown:
            raise TypeError(f"{type(self).__name__}: unrecognized keyword argument(s) {unknown}")
        self.name = name or _auto_name(type(self).__name__)
        # The Keras this layer imitates where the oracles disagree, fixed at construction (as a
        # Keras layer's behaviour is fixed by the package that built it).
        self._flavor = get_flavor()
        # Keras's dtype surface: ``dtype_policy`` (its name goes into get_config), ``compute_dtype``
        # (inputs are cast to it; the call computes and outputs in it), ``variable_dtype`` (weights
        # are stored in it) and ``dtype``, an alias of ``variable_dtype``.
        self.dtype_policy = DTypePolicy.from_name(_dtype_from_config(dtype))
        self.compute_dtype = self.dtype_policy.compute_dtype
        self.variable_dtype = self.dtype_policy.variable_dtype
        self.dtype = self.variable_dtype
        self.trainable = trainable
        self.built = False
        self.input_spec: InputSpec | Sequence[InputSpec] | None = None
        self.activity_regularizer: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._config: dict[str, Any] = {}
        self._weights: list[_Weight] = []
        self._activity_losses: list[torch.Tensor] = []
        self._device: torch.device | None = None
        self._compute_dtype = torch_dtype(self.compute_dtype)
        self._mixed = self.dtype_policy.is_mixed
        takes = _call_arguments(type(self))
        self._call_takes_training, self._call_takes_mask = takes["training"], takes["mask"]
        self._computes_mask = self.supports_masking or type(self).compute_mask is not Layer.compute_mask

    @property
    def _tf_keras(self) -> bool:
        """Whether this layer imitates tf_keras (Keras 2) rather than Keras 3."""
        return self._flavor == "tf_keras"

    # -- configuration --------------------------------------------------------------------------
    @classmethod
    def spec(cls) -> _spec.LayerSpec:
        return _spec.lookup(cls.spec_name or cls.__name__)

    def _configure(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the constructor's own arguments against the spec; keep them normalised.

        Called by subclasses as ``self._configure(locals())``.  The normalised values become
        attributes (``self.units``, ``self.kernel_size`` as a tuple, ...).
        """
        own = {k: v for k, v in arguments.items() if k not in ("self", "kwargs", "__class__")}
        config = type(self).spec().validate(own)
        self._config = config
        for key, value in config.items():
            setattr(self, key, value)
        if config.get("activity_regularizer") is not None:
            self.activity_regularizer = regularizers.get(config["activity_regularizer"])
        return config

    def get_config(self) -> dict[str, Any]:
        """Keras 3's get_config for this layer (serialized initializers, DTypePolicy dtype)."""
        params = type(self).spec().params
        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": self.dtype_policy.serialize(),
        }
        for key, value in self._config.items():
            if key in params and not params[key].in_oracle(self._flavor):
                continue  # a parameter only the other Keras has (spec ``only_in``)
            kind = params[key].type if key in params else "any"
            config[key] = _serialize(kind, value)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Layer:
        return cls(**dict(config))

    # -- weights --------------------------------------------------------------------------------
    def add_weight(
        self,
        name: str,
        shape: Sequence[int],
        initializer: Any = "zeros",
        regularizer: Any = None,
        constraint: Any = None,
        trainable: bool = True,
        layout: WeightLayout | None = None,
    ) -> torch.nn.Parameter:
        """Create a weight of Keras shape ``shape``, stored for torch as ``layout`` says."""
        keras_shape = tuple(int(s) for s in shape)
        layout = layout or WeightLayout()
        init = initializers.get(initializer)
        value = init(keras_shape, dtype=torch_dtype(self.variable_dtype), device=self._device or torch.device("cpu"))
        param = torch.nn.Parameter(layout.to_torch(value), requires_grad=trainable and self.trainable)
        self.register_parameter(name, param)
        self._weights.append(
            _Weight(
                name=name,
                keras_shape=keras_shape,
                layout=layout,
                regularizer=regularizers.get(regularizer) if regularizer is not None else None,
                constraint=constraints.get(constraint) if constraint is not None else None,
                trainable=trainable,
            )
        )
        return param

    def add_bias(self, shape: Sequence[int]) -> None:
        """The ``bias`` weight from the layer's ``bias_*`` arguments when ``use_bias``, else ``bias = None``."""
        if self.use_bias:
            self.add_weight("bias", tuple(shape), self.bias_initializer, self.bias_regularizer, self.bias_constraint)
        else:
            self.bias = None

    @property
    def weight_names(self) -> list[str]:
        return [w.name for w in self._weights]

    def get_weights(self) -> list[np.ndarray]:
        """Weights as numpy arrays in Keras's order and shapes, in the variable dtype (float32 under a
        mixed policy, as Keras returns them)."""
        return [to_numpy(w.layout.to_keras(getattr(self, w.name))) for w in self._weights]

    def keras_weights(self) -> list[torch.Tensor]:
        """The stored weight tensors (torch layout), in Keras's order; gradients flow to these."""
        return [getattr(self, w.name) for w in self._weights]

    def weight_to_keras(self, weight: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Convert ``value`` (e.g. a gradient) from ``weight``'s stored layout to Keras's layout."""
        for w in self._weights:
            if getattr(self, w.name) is weight:
                return w.layout.to_keras(value)
        raise ValueError(f"{type(self).__name__} '{self.name}': not one of its weights")

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set weights given in Keras's order and shapes; the layout conversion happens here, once.
        Values are converted to the variable dtype."""
        if len(weights) != len(self._weights):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': set_weights expects {len(self._weights)} arrays "
                f"({', '.join(self.weight_names) or 'none; build the layer first'}), got {len(weights)}"
            )
        for spec_w, value in zip(self._weights, weights):
            array = value if isinstance(value, torch.Tensor) else from_numpy(value)
            if tuple(array.shape) != spec_w.keras_shape:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': weight '{spec_w.name}' expects shape "
                    f"{spec_w.keras_shape}, got {tuple(array.shape)}"
                )
            param = getattr(self, spec_w.name)
            with torch.no_grad():
                param.copy_(spec_w.layout.to_torch(array.to(device=param.device, dtype=param.dtype)))

    def apply_constraints(self) -> None:
        """Project weights with their constraints, as a Keras optimizer does after each update."""
        with torch.no_grad():
            for w in self._weights:
                if w.constraint is not None:
                    param = getattr(self, w.name)
                    param.copy_(w.layout.to_torch(w.constraint(w.layout.to_keras(param))))

    @property
    def losses(self) -> list[torch.Tensor]:
        """Activity losses of the last call, then weight-regularizer penalties (Keras's order).

        Under a mixed policy, as in Keras 3 and tf_keras, activity losses are in the compute dtype
        (they are taken on the outputs) and weight penalties in the variable dtype (taken on the
        stored float32 weights)."""
        out = list(self._activity_losses)
        for w in self._weights:
            if w.regularizer is not None:
                out.append(w.regularizer(w.layout.to_keras(getattr(self, w.name))))
        for child in self.children():
            if isinstance(child, Layer):
                out.extend(child.losses)
        return out

    # -- build and call -------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create weights for ``input_shape`` (Keras's layout, batch axis included)."""
        self.built = True

    def call(self, inputs: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.call")

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if self.supports_masking else None

    def forward(self, inputs: Any, training: bool | None = None, mask: Any = None, **kwargs: Any) -> Any:
        """Keras's ``__call__``: check, build once, call, record activity losses, propagate masks.

        This runs on every call, so it stays lean: no attribute writes (``nn.Module.__setattr__``
        is slow) unless something changed, and the single-tensor case takes a fast path.
        """
        if type(inputs) is torch.Tensor:
            if inputs.dtype != self._compute_dtype and inputs.is_floating_point():
                inputs = self._cast(inputs)
        else:
            if _is_symbolic(inputs):  # a functional model being defined: record the call
                from .models import apply

                extra = {k: v for k, v in (("training", training), ("mask", mask)) if v is not None}
                return apply(self, inputs, **extra, **kwargs)
            inputs = self._as_tensors(inputs)
        if self.input_spec is not None:
            self._check_inputs(inputs)
        if not self.built:
            self._build_for(inputs)
        if mask is None:
            mask = _mask_of(inputs)
        if self._call_takes_training:
            kwargs["training"] = bool(training)
        if self._call_takes_mask:
            kwargs["mask"] = mask
        if self._mixed and self._weights:
            outputs = self._call_with_compute_weights(inputs, kwargs)
        else:
            outputs = self.call(inputs, **kwargs)
        if self.activity_regularizer is not None:
            outs = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
            self.__dict__["_activity_losses"] = [self.activity_regularizer(o) / o.shape[0] for o in outs]
        if (mask is not None or self._computes_mask) and isinstance(outputs, torch.Tensor):
            if getattr(outputs, "_keras_mask", None) is None or outputs is inputs:
                out_mask = self.compute_mask(inputs, mask)
                if out_mask is not None:
                    outputs._keras_mask = out_mask
        elif (mask is not None or self._computes_mask) and isinstance(outputs, (list, tuple)):
            # Keras pairs the flattened outputs with the flattened output masks: a lone mask goes to
            # the first output (Attention's result, not its scores).
            out_mask = self.compute_mask(inputs, mask)
            masks = out_mask if isinstance(out_mask, (list, tuple)) else [out_mask]
            for output, output_mask in zip(outputs, masks):
                if output_mask is not None and isinstance(output, torch.Tensor):
                    output._keras_mask = output_mask
        return outputs

    def _call_with_compute_weights(self, inputs: Any, kwargs: dict[str, Any]) -> Any:
        """``call`` under a mixed policy, with every weight read as its compute-dtype cast.

        Keras stores the variables in the variable dtype (float32) and casts them to the compute
        dtype where the call reads them (Keras 3's AutocastScope, tf_keras's AutoCastVariable).
        Here each weight is cast once per call and the cast *shadows* the parameter while ``call``
        runs: an instance attribute is found before ``nn.Module.__getattr__`` (where parameters
        live), so ``self.kernel`` in any layer's ``call`` is the compute-dtype tensor, with no
        per-layer code.  The cast is differentiable -- gradients reach the float32 parameters --
        and it is dropped when the call returns, so no second copy is kept that could go stale.
        Everything outside ``call`` (get_weights, regularizer penalties, constraints) sees the
        stored float32 parameters.
        """
        attrs, params, dtype = self.__dict__, self._parameters, self._compute_dtype
        names = [w.name for w in self._weights if params[w.name].is_floating_point()]
        for name in names:
            attrs[name] = params[name].to(dtype)
        try:
            return self.call(inputs, **kwargs)
        finally:
            for name in names:
                attrs.pop(name, None)

    def _build_for(self, inputs: Any) -> None:
        first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        self._device = first.device
        with torch.no_grad():
            self.build(_shape_of(inputs))
        self.built = True

    def _as_tensors(self, inputs: Any) -> Any:
        if isinstance(inputs, torch.Tensor):
            return self._cast(inputs)
        if isinstance(inputs, (list, tuple)):
            return [self._as_tensors(x) for x in inputs]
        if isinstance(inputs, np.ndarray):
            return self._cast(torch.from_numpy(inputs))
        raise TypeError(f"{type(self).__name__} '{self.name}': expected a torch.Tensor input, got {type(inputs).__name__}")

    def _cast(self, x: torch.Tensor) -> torch.Tensor:
        # Keras autocasts floating inputs to the layer's compute dtype; other dtypes pass as they are.
        if x.is_floating_point() and x.dtype != self._compute_dtype:
            mask = getattr(x, "_keras_mask", None)
            x = x.to(self._compute_dtype)
            if mask is not None:
                x._keras_mask = mask
        return x

    def _check_inputs(self, inputs: Any) -> None:
        if self.input_spec is None:
            return
        specs = self.input_spec if isinstance(self.input_spec, (list, tuple)) else [self.input_spec]
        tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        for index, (ispec, x) in enumerate(zip(specs, tensors)):
            self._check_one(index, ispec, x)

    def _check_one(self, index: int, ispec: InputSpec, x: torch.Tensor) -> None:
        ndim = x.dim()
        problem = None
        if ispec.ndim is not None and ndim != ispec.ndim:
            problem = f"expected ndim={ispec.ndim}, found ndim={ndim}"
        elif ispec.min_ndim is not None and ndim < ispec.min_ndim:
            problem = f"expected min_ndim={ispec.min_ndim}, found ndim={ndim}"
        elif ispec.max_ndim is not None and ndim > ispec.max_ndim:
            problem = f"expected max_ndim={ispec.max_ndim}, found ndim={ndim}"
        elif ispec.axes:
            for axis, size in ispec.axes.items():
                if x.shape[axis] != size:
                    problem = f"expected axis {axis} of the input to have size {size}, found {x.shape[axis]}"
                    break
        if problem:
            raise ValueError(
                f"Input {index} of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                f"{problem}. Full shape received: {tuple(x.shape)}"
            )

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._config.items())


# -- helpers ---------------------------------------------------------------------------------------
def _serialize(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "activation":
        return activations.serialize(value)
    if kind == "initializer":
        return initializers.serialize(initializers.get(value))
    if kind == "regularizer":
        return regularizers.serialize(regularizers.get(value))
    if kind == "constraint":
        return constraints.serialize(constraints.get(value))
    return value


def _call_arguments(cls: type) -> dict[str, bool]:
    params = inspect.signature(cls.call).parameters
    return {"training": "training" in params, "mask": "mask" in params}


def _shape_of(inputs: Any) -> Any:
    if isinstance(inputs, (list, tuple)):
        return [tuple(x.shape) for x in inputs]
    return tuple(inputs.shape)


def _is_symbolic(inputs: Any) -> bool:
    """Whether ``inputs`` are (or hold) keraspec.impl.models KerasTensors."""
    if isinstance(inputs, (list, tuple)):
        return any(getattr(x, "_keraspec_symbolic", False) for x in inputs)
    return getattr(inputs, "_keraspec_symbolic", False)


def _mask_of(inputs: Any) -> Any:
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return None if all(m is None for m in masks) else masks
    return getattr(inputs, "_keras_mask", None)


def iter_layers(module: Any) -> Iterable[tuple[str, type[Layer]]]:
    """(name, class) of every Layer subclass a module defines."""
    for name, obj in vars(module).items():
        if (isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer and not name.startswith("_")
                and obj.__module__ == module.__name__):
            yield name, obj
