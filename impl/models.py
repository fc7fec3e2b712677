"""Whole Keras models over keraspec layers: ``Sequential``, the functional ``Model`` and ``Input``.

A model is a graph of *nodes*: one node per call of a layer, naming the tensors it reads (by the
node and output index that produced them, as Keras's ``keras_history`` does).  The graph is built
symbolically -- ``Input`` returns a :class:`KerasTensor` (a shape, a dtype and its history) and
:func:`apply` records a layer call on KerasTensors -- or read from a Keras config
(:meth:`Model.from_config`, :func:`model_from_json`, :func:`keraspec.impl.saving.load_model`).

Running a model runs its nodes in topological order on ``torch.Tensor``s; masks travel with the
tensors (the base layer reads and sets ``_keras_mask``), so an ``Embedding(mask_zero=True)``
masks every layer downstream exactly as Keras propagates masks.

A model remembers the flavour (``keras3`` or ``tf_keras``) its layers were built under
(``model.flavor``): the flavour is fixed when a layer is constructed, so a tf_keras file keeps
Keras 2 semantics (hard_sigmoid, defaults) whatever the caller's flavour is later.
"""

from __future__ import annotations

import inspect
import json
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from . import layers as _layers
from .base import Layer, Shape, torch_dtype
from .flavor import get_flavor, use_flavor

#: The Keras class names a model config is serialized under.
MODEL_CLASS_NAMES = frozenset({"Functional", "Model", "Sequential"})


class ModelConfigError(ValueError):
    """A model config keraspec cannot build: an unknown layer class, a config value a layer refuses,
    a graph that does not connect.  The message names the layer (and parameter and value)."""


class UnsupportedLayerError(ModelConfigError):
    """A layer class keraspec.impl does not implement."""

    def __init__(self, class_name: str, layer_name: str | None) -> None:
        self.class_name = class_name
        self.layer_name = layer_name
        where = f" (layer '{layer_name}')" if layer_name else ""
        super().__init__(f"keraspec.impl has no layer class {class_name!r}{where}; it cannot build this model")


class UnsafeConfigError(ModelConfigError):
    """A config holding code (a Lambda layer's bytecode) while ``safe_mode`` is on."""


# -- symbolic tensors ---------------------------------------------------------------------------
@dataclass(frozen=True)
class KerasTensor:
    """A symbolic tensor of a functional graph: its shape (None for unknown axes), dtype name, and
    where it comes from -- ``(layer, node_index, tensor_index)`` as Keras's ``keras_history``."""

    shape: Shape
    dtype: str
    history: tuple[Layer, int, int]
    #: Read by Layer.__call__ to record a call instead of computing one (``Dense(3)(inputs)``).
    _keraspec_symbolic: ClassVar[bool] = True

    @property
    def name(self) -> str:
        layer, node_index, tensor_index = self.history
        return f"{layer.name}/{node_index}/{tensor_index}"

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


@dataclass
class Node:
    """One call of ``layer``: ``inputs`` is the call's tensor argument as the layer takes it (one
    reference or a list of them), each reference ``(layer_name, node_index, tensor_index)``;
    ``kwargs`` are the other call arguments (from a config)."""

    layer: Layer
    inputs: Any
    kwargs: dict[str, Any] = field(default_factory=dict)
    index: int = 0  # the node's index among its layer's nodes

    def references(self) -> list[tuple[str, int, int]]:
        """Every tensor the call reads: its inputs, then tensors among its kwargs (Keras 3's ``mask``)."""
        refs = list(_flatten_refs(self.inputs))
        for value in self.kwargs.values():
            refs += _flatten_refs(value)
        return refs


def _flatten_refs(inputs: Any) -> Iterator[tuple[str, int, int]]:
    if isinstance(inputs, tuple) and len(inputs) == 3 and isinstance(inputs[0], str):
        yield inputs
    elif isinstance(inputs, list):
        for item in inputs:
            yield from _flatten_refs(item)


def _is_ref(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str)


def _map_refs(inputs: Any, fn: Callable[[tuple[str, int, int]], Any]) -> Any:
    """``inputs`` with every tensor reference replaced by ``fn(reference)``; literals (an op's
    constant operand) stay as they are."""
    if _is_ref(inputs):
        return fn(inputs)
    if isinstance(inputs, list):
        return [_map_refs(item, fn) for item in inputs]
    return inputs


def Input(shape: Sequence[int | None] | None = None, batch_size: int | None = None, name: str | None = None,
          dtype: str | None = None, batch_shape: Sequence[int | None] | None = None) -> KerasTensor:
    """Keras's ``Input``: an InputLayer and the symbolic tensor it outputs."""
    layer = _layers.get("InputLayer")(shape=tuple(shape) if shape is not None else None, batch_size=batch_size,
                                      batch_shape=tuple(batch_shape) if batch_shape is not None else None,
                                      name=name, dtype=dtype or "float32")
    tensor = KerasTensor(tuple(layer.batch_shape), layer.dtype, (layer, 0, 0))
    layer.__dict__["_keraspec_nodes"] = [Node(layer, [], index=0)]
    return tensor


def apply(layer: Layer, inputs: Any, **kwargs: Any) -> KerasTensor | list[KerasTensor]:
    """Record ``layer(inputs)`` on KerasTensors (what Keras's ``layer(keras_tensor)`` does).

    The output shape comes from a probe run of the layer on zeros (unknown axes probed as 1 and
    reported as None again), which also builds the layer."""
    flat = list(_flatten_tensors(inputs))
    if not flat:
        raise TypeError(f"apply({layer.name}): inputs must be KerasTensors from Input or an earlier apply")
    nodes = layer.__dict__.setdefault("_keraspec_nodes", [])
    node = Node(layer, _map_tensors(inputs, lambda t: (t.history[0].name, t.history[1], t.history[2])),
                dict(kwargs), index=len(nodes))
    shapes = _probe_output_shapes(layer, inputs, kwargs)
    nodes.append(node)
    outs = [KerasTensor(shape, dtype, (layer, node.index, i)) for i, (shape, dtype) in enumerate(shapes)]
    _KNOWN_LAYERS[id(layer)] = layer
    for t in flat:
        _KNOWN_LAYERS[id(t.history[0])] = t.history[0]
    return outs[0] if len(outs) == 1 else outs


#: Layers seen by ``apply``, so that a Model built from KerasTensors finds the layers its node
#: references name (by id; a reference holds only the name).  Weak: a layer nobody holds is dropped.
_KNOWN_LAYERS: weakref.WeakValueDictionary[int, Layer] = weakref.WeakValueDictionary()


def _flatten_tensors(inputs: Any) -> Iterator[KerasTensor]:
    if isinstance(inputs, KerasTensor):
        yield inputs
    elif isinstance(inputs, (list, tuple)):
        for item in inputs:
            yield from _flatten_tensors(item)


def _map_tensors(inputs: Any, fn: Callable[[KerasTensor], Any]) -> Any:
    if isinstance(inputs, KerasTensor):
        return fn(inputs)
    return [_map_tensors(item, fn) for item in inputs]


def _probe_tensor(shape: Shape, dtype: str) -> torch.Tensor:
    return torch.zeros([1 if s is None else int(s) for s in shape], dtype=torch_dtype(dtype))


def _probe_output_shapes(layer: Layer, inputs: Any, kwargs: Mapping[str, Any]) -> list[tuple[Shape, str]]:
    probe = _map_tensors(inputs, lambda t: _probe_tensor(t.shape, t.dtype))
    with torch.no_grad():
        out = layer(probe, **kwargs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    first = next(_flatten_tensors(inputs))
    result = []
    for o in outs:
        shape = tuple(o.shape)
        if first.shape and first.shape[0] is None and shape:
            shape = (None,) + shape[1:]
        result.append((shape, _dtype_name(o.dtype)))
    return result


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# -- the functional model -----------------------------------------------------------------------
class Model(Layer):
    """Keras's functional ``Model``: ``Model(inputs, outputs)`` over KerasTensors, or
    ``Model.from_config`` of a Keras 3 or tf_keras config.  It is itself a layer (nested models)."""

    #: The Keras class name this model serializes as.
    keras_class_name = "Functional"

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None, trainable: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(name=name, trainable=trainable, **kwargs)
        self.flavor = get_flavor()
        self._nodes: list[Node] = []
        self._input_refs: list[tuple[str, int, int]] = []
        self._output_refs: list[tuple[str, int, int]] = []
        self._inputs_nested = False
        self._outputs_nested = False
        self._keras_classes: dict[str, str] = {}
        self.layer_list = torch.nn.ModuleList()
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model: give both inputs and outputs (KerasTensors)")
            self._init_from_tensors(inputs, outputs)

    # -- construction ---------------------------------------------------------------------------
    def _init_from_tensors(self, inputs: Any, outputs: Any) -> None:
        self._inputs_nested = isinstance(inputs, (list, tuple))
        self._outputs_nested = isinstance(outputs, (list, tuple))
        ins = list(_flatten_tensors(inputs))
        outs = list(_flatten_tensors(outputs))
        # Walk back from the outputs: every node that contributes, in creation order.
        nodes: dict[tuple[int, int], Node] = {}
        layers_by_name: dict[str, Layer] = {}
        stack = [t.history for t in outs]
        while stack:
            layer, node_index, _ = stack.pop()
            layers_by_name.setdefault(layer.name, layer)
            key = (id(layer), node_index)
            if key in nodes:
                continue
            node = layer.__dict__["_keraspec_nodes"][node_index]
            nodes[key] = node
            for ref in node.references():
                stack.append(self._find_layer_history(ref, layer))
        input_names = {t.history[0].name for t in ins}
        for name in input_names:
            if name not in layers_by_name:
                raise ValueError(f"Model: input '{name}' does not lead to the outputs")
        ordered = self._topological([n for n in nodes.values()])
        for node in ordered:
            if node.layer not in list(self.layer_list):
                self.layer_list.append(node.layer)
        self._nodes = ordered
        self._input_refs = [(t.history[0].name, t.history[1], t.history[2]) for t in ins]
        self._output_refs = [(t.history[0].name, t.history[1], t.history[2]) for t in outs]
        self._index_layers()
        self.built = True

    @staticmethod
    def _find_layer_history(ref: tuple[str, int, int], consumer: Layer) -> tuple[Layer, int, int]:
        name, node_index, tensor_index = ref
        for layer in list(_KNOWN_LAYERS.values()):
            if layer.name == name and node_index < len(layer.__dict__.get("_keraspec_nodes", [])):
                return layer, node_index, tensor_index
        raise ValueError(f"Model: layer '{consumer.name}' reads from unknown layer '{name}'")

    def _index_layers(self) -> None:
        names = [layer.name for layer in self.layer_list]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ModelConfigError(f"Model '{self.name}': layer names must be unique, found {duplicates} twice")
        self.__dict__["_by_name"] = {layer.name: layer for layer in self.layer_list}

    def _topological(self, nodes: list[Node]) -> list[Node]:
        """Nodes ordered so that each runs after the nodes it reads (stable: config order kept)."""
        produced = {(n.layer.name, n.index) for n in nodes}
        done: set[tuple[str, int]] = set()
        ordered: list[Node] = []
        pending = list(nodes)
        while pending:
            progressed = False
            rest = []
            for node in pending:
                needs = {(r[0], r[1]) for r in node.references()}
                if all(need in done or need not in produced for need in needs):
                    ordered.append(node)
                    done.add((node.layer.name, node.index))
                    progressed = True
                else:
                    rest.append(node)
            if not progressed:
                names = ", ".join(sorted({n.layer.name for n in rest}))
                raise ModelConfigError(f"Model '{self.name}': the graph has a cycle or a missing input at layers {names}")
            pending = rest
        return ordered

    # -- the Keras surface ----------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The model's layers in Keras's order (a functional model's include its InputLayers)."""
        return list(self.layer_list)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Model '{self.name}': no layer at index {index} (it has {len(self.layers)})")
            return self.layers[index]
        if name is None:
            raise ValueError("get_layer: give a name or an index")
        try:
            return self.__dict__["_by_name"][name]
        except KeyError:
            raise ValueError(f"Model '{self.name}': no layer named {name!r}; its layers are {[l.name for l in self.layers]}") from None

    @property
    def inputs(self) -> list[KerasTensor]:
        return [self._ref_tensor(ref) for ref in self._input_refs]

    @property
    def outputs(self) -> list[KerasTensor]:
        return [self._ref_tensor(ref) for ref in self._output_refs]

    def _ref_tensor(self, ref: tuple[str, int, int]) -> KerasTensor:
        layer = self.get_layer(ref[0])
        shapes = self._node_output_shapes().get((ref[0], ref[1]), [])
        shape = shapes[ref[2]] if ref[2] < len(shapes) else None
        return KerasTensor(shape, getattr(layer, "compute_dtype", "float32"), (layer, ref[1], ref[2]))

    @property
    def input_names(self) -> list[str]:
        return [ref[0] for ref in self._input_refs]

    @property
    def output_names(self) -> list[str]:
        return [ref[0] for ref in self._output_refs]

    @property
    def input_shape(self) -> Any:
        shapes = [self.get_layer(ref[0]).batch_shape for ref in self._input_refs]
        return shapes[0] if len(shapes) == 1 else shapes

    # -- weights --------------------------------------------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        return [f"{layer.name}/{w}" for layer in self.layers for w in layer.weight_names]

    def _ensure_built(self) -> None:
        """Keras builds a model whose input shape is known when it is made; here the layers build on
        a probe run, done once, the first time weights or shapes are asked for."""
        if self._input_refs and not self._probed:
            self._probe()

    def get_weights(self) -> list[np.ndarray]:
        """Every layer's weights, layer by layer in Keras's order (``model.get_weights()``)."""
        self._ensure_built()
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        self._ensure_built()
        weights = list(weights)
        expected = sum(len(layer.get_weights()) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"Model '{self.name}': set_weights expects {expected} arrays, got {len(weights)}")
        start = 0
        for layer in self.layers:
            count = len(layer.get_weights())
            layer.set_weights(weights[start:start + count])
            start += count

    def keras_weights(self) -> list[torch.Tensor]:
        self._ensure_built()
        return [w for layer in self.layers for w in layer.keras_weights()]

    def count_params(self) -> int:
        return sum(int(np.prod(w.shape)) for w in self.get_weights())

    def _param_counts(self) -> tuple[int, int]:
        self._ensure_built()
        trainable = non_trainable = 0
        for layer in self.layers:
            if isinstance(layer, Model):
                t, n = layer._param_counts()
                if layer.trainable:
                    trainable, non_trainable = trainable + t, non_trainable + n
                else:
                    non_trainable += t + n
                continue
            for spec_w, value in zip(layer._weights, layer.get_weights()):
                if spec_w.trainable and layer.trainable:
                    trainable += int(np.prod(value.shape))
                else:
                    non_trainable += int(np.prod(value.shape))
        return trainable, non_trainable

    @property
    def losses(self) -> list[torch.Tensor]:
        return [loss for layer in self.layers for loss in layer.losses]

    # -- running --------------------------------------------------------------------------------
    def forward(self, inputs: Any, training: bool | None = None, mask: Any = None, **kwargs: Any) -> Any:
        """Run the graph on ``inputs`` (a tensor, a list in ``inputs`` order, or a dict by input name)."""
        values = self.run_nodes(inputs, training=training, mask=mask)
        outs = [values[ref] for ref in self._output_refs]
        return outs if self._outputs_nested or len(outs) > 1 else outs[0]

    def run_nodes(self, inputs: Any, training: bool | None = None, mask: Any = None,
                  on_node: Callable[[Node, Any, Any], None] | None = None) -> dict[tuple[str, int, int], torch.Tensor]:
        """Every tensor the graph computes, by reference; ``on_node(node, inputs, outputs)`` is called
        after each node runs (the divergence check records per-layer outputs with it)."""
        flat = self._standardize_inputs(inputs)
        masks = list(mask) if isinstance(mask, (list, tuple)) else [mask] * len(flat)
        values: dict[tuple[str, int, int], torch.Tensor] = {}
        for ref, x, m in zip(self._input_refs, flat, masks):
            if not isinstance(x, torch.Tensor):
                x = torch.as_tensor(np.asarray(x))
            if m is not None:
                x = x.view_as(x)  # a new tensor object: the caller's tensor keeps no mask attribute
                x._keras_mask = m
            values[ref] = x
        input_keys = {(r[0], r[1]) for r in self._input_refs}
        with use_flavor(self.flavor):
            for node in self._nodes:
                key = (node.layer.name, node.index)
                if key in input_keys:
                    layer_in = values[(key[0], key[1], 0)]
                    out = node.layer(layer_in)
                    values[(key[0], key[1], 0)] = out
                    if on_node is not None:
                        on_node(node, layer_in, out)
                    continue
                missing = [r for r in node.references() if r not in values]
                if missing:
                    raise ModelConfigError(f"Model '{self.name}': layer '{node.layer.name}' reads {missing[0]}, "
                                           "which no earlier layer computes")
                layer_in = _map_refs(node.inputs, values.__getitem__)
                # None-valued call arguments are Keras's defaults; a node's own training value wins.
                call_kwargs = {k: _map_refs(v, values.__getitem__) for k, v in node.kwargs.items() if v is not None}
                if training is not None and "training" not in call_kwargs:
                    call_kwargs["training"] = training
                out = node.layer(layer_in, **call_kwargs)
                outs = out if isinstance(out, (list, tuple)) else [out]
                for i, o in enumerate(outs):
                    values[(node.layer.name, node.index, i)] = o
                if on_node is not None:
                    on_node(node, layer_in, out)
        return values

    def _standardize_inputs(self, inputs: Any) -> list[Any]:
        if isinstance(inputs, Mapping):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}': inputs dict lacks {missing}; it takes {self.input_names}")
            return [inputs[n] for n in self.input_names]
        flat = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != len(self._input_refs):
            raise ValueError(f"Model '{self.name}' takes {len(self._input_refs)} input(s) {self.input_names}, "
                             f"got {len(flat)}")
        return flat

    def predict(self, x: Any, batch_size: int | None = None) -> Any:
        """Inference outputs as numpy arrays (``training=False``, no gradients)."""
        with torch.no_grad():
            out = self(_to_tensors(x), training=False)
        return [o.detach().cpu().numpy() for o in out] if isinstance(out, list) else out.detach().cpu().numpy()

    def build(self, input_shape: Any = None) -> None:
        """A functional model is built when it is made; this only runs a probe to build lazy layers."""
        if not self._probed:
            self._probe()

    @property
    def _probed(self) -> bool:
        return bool(self.__dict__.get("_shapes"))

    def _probe(self) -> None:
        """Run zeros through the graph once (batch 1): builds every layer and records output shapes."""
        shapes: dict[tuple[str, int], list[Shape]] = {}
        probes = []
        for ref in self._input_refs:
            layer = self.get_layer(ref[0])
            probes.append(_probe_tensor(layer.batch_shape, layer.dtype))

        def record(node: Node, _inputs: Any, out: Any) -> None:
            outs = out if isinstance(out, (list, tuple)) else [out]
            shapes[(node.layer.name, node.index)] = [(None,) + tuple(o.shape[1:]) for o in outs]

        with torch.no_grad():
            self.run_nodes(probes, training=False, on_node=record)
        self.__dict__["_shapes"] = shapes

    def _node_output_shapes(self) -> dict[tuple[str, int], list[Shape]]:
        if not self._probed:
            self._probe()
        return self.__dict__["_shapes"]

    def compute_output_shape(self, input_shape: Any = None) -> Any:
        shapes = [self._node_output_shapes()[(r[0], r[1])][r[2]] for r in self._output_refs]
        return shapes[0] if len(shapes) == 1 and not self._outputs_nested else shapes

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None  # the output tensor already carries the mask its last layer computed

    # -- summary --------------------------------------------------------------------------------
    def summary_rows(self) -> list[tuple[str, str, Any, int, list[str]]]:
        """(name, Keras class, output shape, parameter count, inbound layer names) per layer."""
        shapes = self._node_output_shapes()
        rows = []
        for layer in self.layers:
            out = shapes.get((layer.name, 0), [None])
            shape = out[0] if len(out) == 1 else out
            inbound = []
            for node in self._nodes:
                if node.layer is layer:
                    inbound += [f"{r[0]}[{r[1]}][{r[2]}]" for r in node.references()]
            rows.append((layer.name, self.keras_class_of(layer), shape, _layer_params(layer), inbound))
        return rows

    def keras_class_of(self, layer: Layer) -> str:
        """The Keras class name a layer was configured as (its own class name when built in Python)."""
        if isinstance(layer, Model):
            return layer.keras_class_name
        if isinstance(layer, KerasOp):
            return layer.op_name
        return self._keras_classes.get(layer.name, type(layer).__name__)

    def summary(self, print_fn: Callable[[str], None] | None = None, line_length: int = 98) -> None:
        """Keras's layer table (name and class, output shape, parameter count, for a functional model
        the inbound layers) and the total, trainable and non-trainable parameter counts."""
        print_fn = print_fn or print
        functional = not isinstance(self, Sequential)
        headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if functional else [])
        rows = [[f"{name} ({cls})", _shape_text(shape), f"{params:,}"] + ([", ".join(inbound) or "-"] if functional else [])
                for name, cls, shape, params, inbound in self.summary_rows()]
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        print_fn(f'Model: "{self.name}"')
        rule = "-" * (sum(widths) + 3 * (len(widths) - 1))
        print_fn(rule)
        print_fn(" | ".join(h.ljust(w) for h, w in zip(headers, widths)))
        print_fn(rule.replace("-", "="))
        for row in rows:
            print_fn(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
        print_fn(rule)
        trainable, non_trainable = self._param_counts()
        print_fn(f" Total params: {trainable + non_trainable:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {non_trainable:,}")

    # -- serialization --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Keras 3's functional config: layers with their inbound nodes, input and output layers."""
        layer_configs = []
        for layer in self.layers:
            nodes = [n for n in self._nodes if n.layer is layer and (layer.name, n.index) not in
                     {(r[0], r[1]) for r in self._input_refs}]
            layer_configs.append({
                "module": ("keras.src.ops.numpy" if isinstance(layer, KerasOp) else
                           MODEL_MODULES[layer.keras_class_name] if isinstance(layer, Model) else "keras.layers"),
                "class_name": self.keras_class_of(layer),
                "config": layer.get_config(),
                "registered_name": None,
                "name": layer.name,
                "inbound_nodes": [{"args": _node_args(n.inputs, self) if isinstance(layer, KerasOp) else [_node_args(n.inputs, self)],
                                   "kwargs": {k: _node_args(v, self) for k, v in n.kwargs.items()}} for n in nodes],
            })
        refs = lambda rs: [list(r) for r in rs]  # noqa: E731
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layer_configs,
            "input_layers": refs(self._input_refs) if self._inputs_nested or len(self._input_refs) > 1 else list(self._input_refs[0]),
            "output_layers": refs(self._output_refs) if self._outputs_nested or len(self._output_refs) > 1 else list(self._output_refs[0]),
        }

    def to_json(self, **kwargs: Any) -> str:
        """``{"class_name", "config", ...}`` as JSON, what ``model_from_json`` reads."""
        return json.dumps(serialize_model(self), default=_json_default, **kwargs)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                    safe_mode: bool = True) -> Model:
        return build_functional(config, custom_objects=custom_objects, safe_mode=safe_mode)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, flavor={self.flavor!r}, layers={len(self.layers)}"


def _node_args(inputs: Any, model: Model) -> Any:
    def tensor(ref: tuple[str, int, int]) -> dict[str, Any]:
        shapes = model._node_output_shapes().get((ref[0], ref[1]), [])
        shape = shapes[ref[2]] if ref[2] < len(shapes) else None
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(shape) if shape is not None else None, "dtype": "float32",
                           "keras_history": [ref[0], ref[1], ref[2]]}}
    return _map_refs(inputs, tensor)


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _layer_params(layer: Layer) -> int:
    if isinstance(layer, Model):
        return layer.count_params()
    return sum(int(np.prod(w.shape)) for w in layer.get_weights())


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    inner = ", ".join("None" if s is None else str(s) for s in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _to_tensors(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _to_tensors(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_tensors(v) for v in x]
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


# -- Sequential ----------------------------------------------------------------------------------
class Sequential(Model):
    """Keras's ``Sequential``: a stack of single-input layers; ``add``, ``pop``, ``layers`` (without
    the InputLayer), built from an ``Input``/``InputLayer`` first layer, ``build(input_shape)``, or
    lazily on the first call."""

    keras_class_name = "Sequential"

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None, trainable: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._input_layer: Layer | None = None
        self._stack: list[Layer] = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Any) -> None:
        if isinstance(layer, KerasTensor):  # Sequential([Input(...), ...]) passes the tensor
            layer = layer.history[0]
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a keraspec layer, got {type(layer).__name__}")
        if type(layer).__name__ == "InputLayer":
            if self._input_layer is not None or self._stack:
                raise ValueError(f"Sequential '{self.name}': an InputLayer can only be the first layer")
            self._input_layer = layer
        else:
            if any(existing.name == layer.name for existing in self._stack):
                raise ValueError(f"Sequential '{self.name}': all layers must have unique names; "
                                 f"'{layer.name}' is there already")
            self._stack.append(layer)
        self._rebuild_graph()

    def pop(self) -> Layer:
        if not self._stack:
            raise TypeError(f"Sequential '{self.name}': there are no layers to pop")
        layer = self._stack.pop()
        self._rebuild_graph()
        return layer

    def build(self, input_shape: Any = None, dtype: str = "float32") -> None:
        if input_shape is not None and self._input_layer is None:
            self._input_layer = _layers.get("InputLayer")(batch_shape=tuple(input_shape), name=f"{self.name}_input",
                                                          dtype=dtype)
            self._rebuild_graph()
        if self._input_layer is None:
            raise ValueError(f"Sequential '{self.name}': build() needs an input shape (or an Input first layer)")
        super().build(input_shape)

    def _rebuild_graph(self) -> None:
        """The graph of the stack: one node per layer, each reading the one before."""
        self.__dict__.pop("_shapes", None)
        self.layer_list = torch.nn.ModuleList(([self._input_layer] if self._input_layer is not None else []) + self._stack)
        nodes = []
        previous: tuple[str, int, int] | None = None
        if self._input_layer is not None:
            nodes.append(Node(self._input_layer, [], index=0))
            previous = (self._input_layer.name, 0, 0)
            self._input_refs = [previous]
        for layer in self._stack:
            nodes.append(Node(layer, previous if previous is not None else ("__input__", 0, 0), index=0))
            previous = (layer.name, 0, 0)
        self._nodes = nodes
        self._output_refs = [previous] if previous is not None else []
        self._index_layers()
        self.built = self._input_layer is not None

    @property
    def layers(self) -> list[Layer]:
        return list(self._stack)

    @property
    def input_shape(self) -> Any:
        return self._input_layer.batch_shape if self._input_layer is not None else None

    def forward(self, inputs: Any, training: bool | None = None, mask: Any = None, **kwargs: Any) -> Any:
        if not self._stack:
            raise ValueError(f"Sequential '{self.name}' has no layers")
        x = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 else inputs
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if self._input_layer is None:  # built by the first call, as Keras does
            self.build((None,) + tuple(x.shape[1:]), dtype=_dtype_name(x.dtype))
        if mask is not None:
            x = x.view_as(x)  # a new tensor object: the caller's tensor keeps no mask attribute
            x._keras_mask = mask
        with use_flavor(self.flavor):
            if self._input_layer is not None:
                x = self._input_layer(x)
            for layer in self._stack:
                x = layer(x, training=training) if _takes_training(layer) else layer(x)
        return x

    def run_nodes(self, inputs: Any, training: bool | None = None, mask: Any = None,
                  on_node: Callable[[Node, Any, Any], None] | None = None) -> dict[tuple[str, int, int], torch.Tensor]:
        if self._input_layer is None:  # lazily built: the first call declares the input shape
            x = torch.as_tensor(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
            self.build((None,) + tuple(x.shape[1:]), dtype=_dtype_name(x.dtype))
        return super().run_nodes(inputs, training=training, mask=mask, on_node=on_node)

    def summary_rows(self) -> list[tuple[str, str, Any, int, list[str]]]:
        return [row for row in super().summary_rows() if row[1] != "InputLayer"] if self._input_layer else []

    def get_config(self) -> dict[str, Any]:
        layers = []
        if self._input_layer is not None:
            layers.append({"module": "keras.layers", "class_name": "InputLayer",
                           "config": self._input_layer.get_config(), "registered_name": None})
        for layer in self._stack:
            entry = serialize_model(layer) if isinstance(layer, Model) else {
                "module": "keras.layers", "class_name": self.keras_class_of(layer),
                "config": layer.get_config(), "registered_name": None}
            layers.append(entry)
        return {"name": self.name, "trainable": self.trainable, "layers": layers}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                    safe_mode: bool = True) -> Sequential:
        return build_sequential(config, custom_objects=custom_objects, safe_mode=safe_mode)


def _takes_training(layer: Layer) -> bool:
    return isinstance(layer, Model) or layer._call_takes_training


# -- Keras 3 operations in a functional graph --------------------------------------------------------
#: Keras 3 ops a functional config can hold as nodes (``module: keras.src.ops.*``), by class name.
#: Keras 3 writes a mask given explicitly to a layer as one of these (``NotEqual(ids, 0)``).
KERAS_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "NotEqual": torch.ne, "Equal": torch.eq, "Greater": torch.gt, "GreaterEqual": torch.ge,
    "Less": torch.lt, "LessEqual": torch.le, "LogicalAnd": torch.logical_and, "LogicalOr": torch.logical_or,
    "LogicalNot": torch.logical_not,
}


class KerasOp(Layer):
    """A Keras 3 operation node (``keras.ops.not_equal(x, 0)``): exact elementwise logic on its
    operands (tensors of the graph and constants).  No weights, no mask."""

    #: The numerics class the divergence check compares it by (it has no spec entry).
    op_class = "exact"

    def __init__(self, op_name: str, name: str | None = None) -> None:
        super().__init__(name=name)
        self.op_name = op_name
        self._fn = KERAS_OPS[op_name]
        self.built = True

    def forward(self, inputs: Any, training: bool | None = None, mask: Any = None, **kwargs: Any) -> torch.Tensor:
        operands = inputs if isinstance(inputs, list) else [inputs]
        tensors = [o for o in operands if isinstance(o, torch.Tensor)]
        values = [o if isinstance(o, torch.Tensor) else torch.as_tensor(o, dtype=tensors[0].dtype) for o in operands]
        return self._fn(*values)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


# -- building from configs ------------------------------------------------------------------------
#: The module Keras 3 writes (and its deserializer requires) for each model class.
MODEL_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras", "Model": "keras"}


def serialize_model(model: Model) -> dict[str, Any]:
    """``{"module", "class_name", "config", "registered_name"}`` as Keras 3 writes a model."""
    return {"module": MODEL_MODULES[model.keras_class_name], "class_name": model.keras_class_name,
            "config": model.get_config(), "registered_name": None}


def _holds_bytecode(value: Mapping[str, Any]) -> bool:
    """Keras 3's serialized lambda (``{"class_name": "__lambda__"}``), or a tf_keras Lambda layer
    whose ``function_type`` (or ``output_shape_type``) is ``"lambda"`` (base64 marshalled bytecode)."""
    if value.get("class_name") == "__lambda__":
        return True
    config = value.get("config")
    return (value.get("class_name") == "Lambda" and isinstance(config, Mapping)
            and "lambda" in (config.get("function_type"), config.get("output_shape_type")))


def check_safe(config: Any, safe_mode: bool, where: str = "model") -> None:
    """Refuse a config that carries code (a lambda's bytecode) unless ``safe_mode`` is False.

    Walks the whole config, nested models included.  A Lambda that names its function (resolved
    from ``custom_objects``, never imported) is not code and passes."""
    if not safe_mode:
        return
    stack: list[tuple[Any, str]] = [(config, where)]
    while stack:
        value, layer_name = stack.pop()
        if isinstance(value, Mapping):
            inner = value.get("config")
            name = (inner.get("name") if isinstance(inner, Mapping) else None) or value.get("name") or layer_name
            if _holds_bytecode(value):
                raise UnsafeConfigError(
                    f"layer '{name}' holds Python bytecode (a serialized lambda); loading it would run that code, "
                    "so it is refused with safe_mode=True (pass safe_mode=False only for a file you trust)")
            stack.extend((v, name) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, layer_name) for v in value)


def build_layer(entry: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                safe_mode: bool = True) -> Layer:
    """A keraspec layer (or nested model) from one serialized layer ``{"class_name", "config"}``."""
    if not isinstance(entry, Mapping) or "class_name" not in entry:
        raise ModelConfigError(f"a layer entry must be a dict with 'class_name' and 'config', got {str(entry)[:80]}")
    class_name = str(entry["class_name"])
    config = dict(entry.get("config") or {})
    layer_name = config.get("name") or entry.get("name")
    if class_name in MODEL_CLASS_NAMES:
        builder = build_sequential if class_name == "Sequential" else build_functional
        return builder(config, custom_objects=custom_objects, safe_mode=safe_mode)
    check_safe(entry, safe_mode)
    if str(entry.get("module", "")).startswith("keras.src.ops") and class_name not in (custom_objects or {}):
        if class_name not in KERAS_OPS:
            raise UnsupportedLayerError(class_name, layer_name)
        return KerasOp(class_name, name=layer_name)
    cls = (custom_objects or {}).get(class_name)
    if cls is None:
        try:
            cls = _layers.get(class_name)
        except KeyError:
            raise UnsupportedLayerError(class_name, layer_name) from None
    config = _keras2_config(class_name, config) if get_flavor() == "tf_keras" else config
    config = _drop_inactive_excluded(cls, class_name, layer_name, config)
    # A layer whose from_config resolves functions (Lambda) gets the caller's custom_objects and safe_mode.
    takes = inspect.signature(cls.from_config).parameters
    extra = {k: v for k, v in (("custom_objects", custom_objects), ("safe_mode", safe_mode)) if k in takes}
    try:
        layer = cls.from_config(config, **extra)
    except (ValueError, TypeError) as exc:
        raise ModelConfigError(f"layer '{layer_name}' ({class_name}): {_one_line(exc)}") from None
    return layer


#: Values of the spec's excluded parameters that switch the feature off (the config reports them even
#: when unused): tf_keras's depthwise ``groups`` is always 1.  None and False are off for every one.
INACTIVE_EXCLUDED_VALUES: dict[str, Any] = {"groups": 1}


def _drop_inactive_excluded(cls: type[Layer], class_name: str, layer_name: str | None,
                            config: dict[str, Any]) -> dict[str, Any]:
    """Drop the spec's excluded parameters (quantization, LoRA, ...) where their value is off; an
    active one is a config keraspec cannot run: an error naming layer, parameter and value."""
    try:
        spec = cls.spec()
    except KeyError:
        return config
    kept = dict(config)
    for key, reason in spec.excluded_params.items():
        if key not in kept or key in spec.params:
            continue
        value = kept[key]
        if value is None or value is False or INACTIVE_EXCLUDED_VALUES.get(key, object()) == value:
            del kept[key]
        else:
            raise ModelConfigError(f"layer '{layer_name}' ({class_name}): parameter {key!r} = {value!r} is not supported "
                                   f"by keraspec ({' '.join(str(reason).split())})")
    return kept


def _keras2_config(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """tf_keras's config spellings the layer constructors do not take (a model's input shape is
    declared on its first layer in Keras 2): those only declare the input, so they are dropped."""
    if class_name == "InputLayer" and "batch_input_shape" in config:
        config = dict(config)
        config["batch_shape"] = config.pop("batch_input_shape")
    elif class_name != "Embedding":
        config = {k: v for k, v in config.items() if k not in ("batch_input_shape", "input_dim_unused")}
    return config


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _parse_ref(value: Any, layer_name: str) -> Any:
    """A tensor reference from a Keras 3 ``__keras_tensor__`` dict or a tf_keras ``[name, node, tensor]``."""
    if isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__":
        history = value["config"]["keras_history"]
        return (str(history[0]), int(history[1]), int(history[2]))
    if isinstance(value, list):
        return [_parse_ref(v, layer_name) for v in value]
    raise ModelConfigError(f"layer '{layer_name}': a call argument keraspec cannot read: {str(value)[:80]}")


def _parse_nodes(entry: Mapping[str, Any], layer: Layer) -> list[Node]:
    """The calls of a layer from its ``inbound_nodes`` (Keras 3's args/kwargs dicts, or tf_keras's
    lists of ``[layer_name, node_index, tensor_index, kwargs]``)."""
    nodes = []
    for index, raw in enumerate(entry.get("inbound_nodes") or []):
        if isinstance(raw, Mapping):  # Keras 3
            args = list(raw.get("args") or [])
            kwargs = dict(raw.get("kwargs") or {})
            if not args:
                raise ModelConfigError(f"layer '{layer.name}': a call with no tensor argument")
            if isinstance(layer, KerasOp):  # an op's operands: tensors and constants, in order
                inputs = [_parse_ref(a, layer.name) if _is_tensor_config(a) else _parse_constant(a, layer) for a in args]
            else:
                inputs = _parse_ref(args[0], layer.name)
                if args[1:]:
                    raise ModelConfigError(f"layer '{layer.name}': call arguments beyond the input are not supported: "
                                           f"{str(args[1:])[:80]}")
            kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: Keras's default
            if "mask" in kwargs:  # Keras 3 serializes a mask given explicitly as a tensor of the graph
                kwargs["mask"] = _parse_ref(kwargs["mask"], layer.name)
            if isinstance(inputs, list) and len(inputs) == 1 and not _is_multi_input(layer) and not isinstance(layer, KerasOp):
                inputs = inputs[0]
        else:  # tf_keras: [[name, node_index, tensor_index, kwargs], ...]
            refs = [(str(item[0]), int(item[1]), int(item[2])) for item in raw]
            kwargs = dict(raw[0][3]) if raw and len(raw[0]) > 3 and raw[0][3] else {}
            inputs = refs[0] if len(refs) == 1 and not _is_multi_input(layer) else refs
        nodes.append(Node(layer, inputs, kwargs, index=index))
    return nodes


def _is_tensor_config(value: Any) -> bool:
    return (isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__") or (
        isinstance(value, list) and bool(value) and all(_is_tensor_config(v) for v in value))


def _parse_constant(value: Any, layer: Layer) -> Any:
    if isinstance(value, (int, float, bool)) and not isinstance(value, Mapping):
        return value
    raise ModelConfigError(f"layer '{layer.name}' ({layer.op_name}): operand {str(value)[:80]} is not a tensor or a number")


def _is_multi_input(layer: Layer) -> bool:
    if isinstance(layer, Model):
        return len(layer._input_refs) > 1
    try:
        return type(layer).spec().input.max_count > 1
    except KeyError:
        return False


def _refs_of(spec: Any) -> list[tuple[str, int, int]]:
    """input_layers/output_layers: one ``[name, node, tensor]`` or a list of them."""
    if isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str):
        return [(spec[0], int(spec[1]), int(spec[2]))]
    if isinstance(spec, Mapping):
        return [r for v in spec.values() for r in _refs_of(v)]
    return [(str(s[0]), int(s[1]), int(s[2])) for s in spec]


def build_functional(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                     safe_mode: bool = True) -> Model:
    """A functional Model from Keras 3's or tf_keras's config (``model.get_config()``)."""
    check_safe(config, safe_mode)
    model = Model(name=config.get("name"), trainable=bool(config.get("trainable", True)))
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ModelConfigError(f"model '{config.get('name')}': its config has no 'layers' list")
    nodes: list[Node] = []
    input_refs = _refs_of(config.get("input_layers") or [])
    input_names = {r[0] for r in input_refs}
    for entry in entries:
        layer = build_layer(entry, custom_objects, safe_mode)
        if entry.get("name") and entry["name"] != layer.name:
            layer.name = entry["name"]
        model.layer_list.append(layer)
        model._keras_classes[layer.name] = str(entry["class_name"])
        layer_nodes = _parse_nodes(entry, layer)
        if layer.name in input_names and not layer_nodes:
            layer_nodes = [Node(layer, [], index=0)]
        elif isinstance(layer, Model) and not layer_nodes:
            raise ModelConfigError(f"model '{config.get('name')}': nested model '{layer.name}' is never called")
        nodes.extend(layer_nodes)
    # tf_keras's config format numbers a nested model's calls from 1 when the model was made on an
    # Input (its node 0, input to output, is left out: tf_keras's _should_skip_first_node); ours from 0.
    keras2_format = any(isinstance(raw, list) for entry in entries for raw in (entry.get("inbound_nodes") or []))
    offsets = {layer.name: 1 for layer in model.layer_list
               if keras2_format and isinstance(layer, Model) and layer._input_refs}
    if offsets:
        shift = lambda ref: (ref[0], ref[1] - offsets.get(ref[0], 0), ref[2])  # noqa: E731
        for node in nodes:
            node.inputs = _map_refs(node.inputs, shift)
            node.kwargs = {k: _map_refs(v, shift) for k, v in node.kwargs.items()}
    else:
        shift = lambda ref: ref  # noqa: E731
    model._index_layers()
    model._nodes = model._topological(nodes)
    input_refs = [shift(r) for r in input_refs]
    model._input_refs = input_refs
    model._output_refs = [shift(r) for r in _refs_of(config.get("output_layers") or [])]
    raw_in, raw_out = config.get("input_layers"), config.get("output_layers")
    model._inputs_nested = not (isinstance(raw_in, list) and len(raw_in) == 3 and isinstance(raw_in[0], str)) and len(input_refs) > 1
    model._outputs_nested = not (isinstance(raw_out, list) and len(raw_out) == 3 and isinstance(raw_out[0], str)) and len(model._output_refs) > 1
    for ref in input_refs + model._output_refs:
        if ref[0] not in model.__dict__["_by_name"]:
            raise ModelConfigError(f"model '{model.name}': input/output layer '{ref[0]}' is not among its layers")
    model.built = True
    return model


def build_sequential(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                     safe_mode: bool = True) -> Sequential:
    """A Sequential from Keras 3's or tf_keras's config; the input shape comes from an InputLayer
    entry, a first layer's ``batch_input_shape`` (tf_keras), or ``build_input_shape``."""
    check_safe(config, safe_mode)
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ModelConfigError(f"Sequential '{config.get('name')}': its config has no 'layers' list")
    model = Sequential(name=config.get("name"), trainable=bool(config.get("trainable", True)))
    for position, entry in enumerate(entries):
        first_config = (entry.get("config") or {}) if isinstance(entry, Mapping) else {}
        if position == 0 and entry.get("class_name") != "InputLayer" and first_config.get("batch_input_shape"):
            model.add(_layers.get("InputLayer")(batch_shape=tuple(first_config["batch_input_shape"]),
                                                dtype=_plain_dtype(first_config.get("dtype")),
                                                name=f"{first_config.get('name', 'input')}_input"))
        layer = build_layer(entry, custom_objects, safe_mode)
        model.add(layer)
        model._keras_classes[layer.name] = str(entry["class_name"])
    if model._input_layer is None and config.get("build_input_shape"):
        model.build(tuple(config["build_input_shape"]))
    return model


def _plain_dtype(dtype: Any) -> str:
    if isinstance(dtype, Mapping):
        return str(dtype.get("config", {}).get("name", "float32"))
    return str(dtype or "float32")


def model_from_config(config: Mapping[str, Any], custom_objects: Mapping[str, Any] | None = None,
                      safe_mode: bool = True, flavor: str | None = None) -> Model:
    """A model from ``{"class_name": "Functional"|"Sequential"|"Model", "config": {...}}``, its layers
    built under ``flavor`` (default: the flavour in force)."""
    if not isinstance(config, Mapping) or config.get("class_name") not in MODEL_CLASS_NAMES:
        found = config.get("class_name") if isinstance(config, Mapping) else type(config).__name__
        raise ModelConfigError(f"not a model config: class_name is {found!r}, expected one of {sorted(MODEL_CLASS_NAMES)}")
    with use_flavor(flavor or get_flavor()) as active:
        check_safe(config, safe_mode)
        inner = config.get("config")
        if not isinstance(inner, Mapping):
            raise ModelConfigError("model config: 'config' must be a dict")
        builder = build_sequential if config["class_name"] == "Sequential" else build_functional
        model = builder(inner, custom_objects=custom_objects, safe_mode=safe_mode)
        _set_flavor(model, active)
    return model


def _set_flavor(model: Model, flavor: str) -> None:
    model.flavor = flavor
    for layer in model.layers:
        if isinstance(layer, Model):
            _set_flavor(layer, flavor)


def model_from_json(text: str, custom_objects: Mapping[str, Any] | None = None, safe_mode: bool = True,
                    flavor: str | None = None) -> Model:
    """``model_from_json(model.to_json())`` with Keras's JSON (``json.loads`` only)."""
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"model JSON is not valid JSON: {exc}") from None
    return model_from_config(config, custom_objects=custom_objects, safe_mode=safe_mode, flavor=flavor)


def clone_structure(model: Model) -> Model:
    """A new model of the same config (fresh weights): ``model_from_json(model.to_json())``."""
    return model_from_json(model.to_json(), flavor=model.flavor)


def iter_model_layers(model: Model) -> Iterator[tuple[str, Layer]]:
    """(path, layer) of every layer, nested models' layers included (``outer/inner``)."""
    for layer in model.layers:
        yield layer.name, layer
        if isinstance(layer, Model):
            for path, inner in iter_model_layers(layer):
                yield f"{layer.name}/{path}", inner


def load_model(path: Any, safe_mode: bool = True, custom_objects: Mapping[str, Any] | None = None) -> Model:
    """Load a Keras 3 ``.keras`` archive or a tf_keras ``.h5`` model (see keraspec.impl.saving)."""
    from .saving import load_model as _load

    return _load(path, safe_mode=safe_mode, custom_objects=custom_objects)


__all__ = ["Input", "KerasTensor", "Model", "ModelConfigError", "Node", "Sequential", "UnsafeConfigError",
           "UnsupportedLayerError", "apply", "check_safe", "clone_structure", "iter_model_layers", "load_model",
           "model_from_config", "model_from_json", "serialize_model"]
