"""Recurrent layers: the cells (SimpleRNNCell, GRUCell, LSTMCell, StackedRNNCells), the general RNN
loop over any cell, and SimpleRNN, GRU and LSTM.

Weights are kept in Keras's layout (``kernel`` (features, gates * units), ``recurrent_kernel``
(units, gates * units), ``bias``), gate columns in Keras's order: LSTM [i, f, c, o], GRU [z, r, h],
GRU ``reset_after=True`` with a (2, 3 * units) bias (input row, recurrent row), ``reset_after=False``
with a (3 * units,) bias and the reset gate applied to the state *before* its matmul.

Two ways to run a sequence, which compute the same thing:

* **fused**: torch's own LSTM / GRU / Elman kernels (``torch._VF``) with the weights re-laid out for
  them (GRU's [z, r, h] columns become torch's [r, z, n] rows).  Only where the configuration is
  exactly what those kernels compute: tanh / sigmoid (relu too for SimpleRNN), GRU reset_after,
  no dropout drawn in this call, float32 / float64 on CPU; no mask (or an all-true one), or a
  right-padded mask through torch's packed sequences (its padded steps filled as Keras fills them).
* **loop**: a Python loop over time steps, for every other configuration and for any user cell
  following Keras's cell contract (``state_size``, ``output_size``, ``call(inputs, states,
  training=...)``, ``get_initial_state``).  For the built-in cells the input projection of every step
  is one matmul before the loop; the loop does only the recurrent part.

Masks follow Keras's ``backend.rnn`` exactly, holes anywhere: at a masked step the states are carried
unchanged and the output is the last unmasked step's output (zeros before the first one), or zeros
with ``zero_output_for_mask``; ``go_backwards`` reverses the inputs and the mask and returns the
outputs in the order they were computed (the reversed sequence), as Keras does.

Dropout: one mask per sequence for the inputs (batch, features) and one for the recurrent state
(batch, units), drawn at the start of a training call and reused at every step, as Keras 3's
DropoutRNNCell does (one mask shared by the gates).

:data:`FUSED` switches the fused path off for the whole module (the tests force each path with it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from keraspec.spec import SpecTypeError

from . import activations, initializers
from .base import InputSpec, Layer, Shape, from_numpy
from .flavor import get_flavor

#: Whether layers may run torch's fused recurrent kernels where a configuration allows it exactly.
FUSED = True

_FUSED_DTYPES_CPU = (torch.float32, torch.float64)

#: Parameters of the RNN base (every recurrent layer), in Keras's get_config order.
_RNN_PARAMS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask",
               "time_major")


def _nested(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _map2(fn: Any, a: Any, b: Any) -> Any:
    """``fn`` applied leaf-wise to two state structures of the same nesting (lists of tensors)."""
    if _nested(a):
        return [_map2(fn, x, y) for x, y in zip(a, b)]
    return fn(a, b)


def _map(fn: Any, a: Any) -> Any:
    if _nested(a):
        return [_map(fn, x) for x in a]
    return fn(a)


def _flatten(a: Any) -> list[torch.Tensor]:
    if _nested(a):
        return [t for x in a for t in _flatten(x)]
    return [a]


@contextlib.contextmanager
def _compute_dtype_weights(root: torch.nn.Module, dtype: torch.dtype) -> Iterator[None]:
    """Under a mixed policy, every weight of ``root``'s layers read as its compute-dtype cast while the
    block runs (the base layer's shadowing trick, applied to the cells a recurrent layer owns)."""
    shadowed: list[tuple[dict[str, Any], str]] = []
    try:
        for module in root.modules():
            if isinstance(module, Layer):
                params = module._parameters
                for w in module._weights:
                    param = params.get(w.name)
                    if param is not None and param.is_floating_point() and param.dtype != dtype:
                        module.__dict__[w.name] = param.to(dtype)
                        shadowed.append((module.__dict__, w.name))
        yield
    finally:
        for attrs, name in shadowed:
            attrs.pop(name, None)


def _dropout_mask(like: torch.Tensor, rate: float, generator: torch.Generator | None) -> torch.Tensor:
    """Keras's ``dropout(ones_like(x), rate)``: 0 with probability ``rate``, else ``1 / (1 - rate)``."""
    keep = torch.rand(like.shape, generator=generator, device=like.device, dtype=torch.float32) >= rate
    return keep.to(like.dtype) / (1.0 - rate)


# -- cells ---------------------------------------------------------------------------------------
class _Cell(Layer):
    """What the three built-in cells share.  A cell is validated by its layer's spec entry (the same
    parameters, domains and defaults) and keeps only the cell's own parameters.

    Subclasses set ``GATES`` (column blocks of the kernels) and ``_CELL_PARAMS`` and implement
    :meth:`_recurrent_step`: one step given the input projection of that step."""

    GATES: ClassVar[int] = 1
    _CELL_PARAMS: ClassVar[tuple[str, ...]] = ()

    def _configure_cell(self, arguments: Mapping[str, Any]) -> None:
        own = {k: v for k, v in arguments.items() if k not in ("self", "kwargs", "__class__")}
        self._flavor = get_flavor()
        spec_params = type(self).spec().params
        foreign = [n for n, v in own.items()
                   if n in spec_params and not spec_params[n].in_oracle(self._flavor) and v != spec_params[n].default]
        if foreign:
            raise SpecTypeError(type(self).spec().name, foreign, "unknown_argument",
                                f"unrecognized argument(s) {foreign} under the {self._flavor} flavour")
        config = type(self).spec().validate(own)
        self._config = {k: config[k] for k in self._CELL_PARAMS if k in config and spec_params[k].in_oracle(self._flavor)}
        for key, value in config.items():
            setattr(self, key, value)
        self.activation_fn = activations.get(self.activation)
        self.recurrent_activation_fn = activations.get(getattr(self, "recurrent_activation", None) or "sigmoid")
        for name in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            initializers.get(getattr(self, name))  # an unknown name fails here, as in Keras's constructor
        self._generator: torch.Generator | None = None
        self._dropout_masks: tuple[torch.Tensor | None, torch.Tensor | None] | None = None

    @property
    def state_size(self) -> Any:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    def get_initial_state(self, batch_size: int | None = None) -> list[torch.Tensor]:
        sizes = self.state_size if _nested(self.state_size) else [self.state_size]
        return [torch.zeros((batch_size, s), dtype=self._compute_dtype, device=self._device or torch.device("cpu"))
                for s in sizes]

    def build(self, input_shape: Shape) -> None:
        in_dim = int(input_shape[-1])
        gates = self.GATES * self.units
        self.add_weight("kernel", (in_dim, gates), self.kernel_initializer, self.kernel_regularizer,
                        self.kernel_constraint)
        self.add_weight("recurrent_kernel", (self.units, gates), self.recurrent_initializer,
                        self.recurrent_regularizer, self.recurrent_constraint)
        if self.use_bias:
            self.add_weight("bias", self._bias_shape(gates), self._bias_initializer(), self.bias_regularizer,
                            self.bias_constraint)
        else:
            self.bias = None
        self.input_spec = InputSpec(axes={-1: in_dim})
        self.built = True

    def _bias_shape(self, gates: int) -> tuple[int, ...]:
        return (gates,)

    def _bias_initializer(self) -> Any:
        return self.bias_initializer

    # -- dropout: one mask per sequence (Keras's DropoutRNNCell) --------------------------------------
    def _generator_for(self, device: torch.device) -> torch.Generator | None:
        seed = getattr(self, "seed", None)
        if seed is None:
            return None
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(int(seed))
        return self._generator

    def _draw_dropout_masks(self, step_input: torch.Tensor, state: torch.Tensor,
                            training: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if not training:
            return None, None
        generator = self._generator_for(step_input.device)
        dropout, recurrent = float(self.dropout), float(self.recurrent_dropout)
        return (_dropout_mask(step_input, dropout, generator) if 0.0 < dropout < 1.0 else None,
                _dropout_mask(state, recurrent, generator) if 0.0 < recurrent < 1.0 else None)

    def _uses_dropout(self, training: bool) -> bool:
        return bool(training) and (0.0 < float(self.dropout) < 1.0 or 0.0 < float(self.recurrent_dropout) < 1.0)

    # -- the step ------------------------------------------------------------------------------------
    def _input_bias(self) -> torch.Tensor | None:
        return self.bias

    def project_inputs(self, inputs: torch.Tensor, input_mask: torch.Tensor | None) -> torch.Tensor:
        """``inputs @ kernel + input bias`` for inputs of shape (..., features); the dropout mask
        (batch, features) is applied first, broadcast over a time axis if there is one."""
        if input_mask is not None:
            inputs = inputs * (input_mask if inputs.dim() == 2 else input_mask.unsqueeze(1))
        projected = torch.matmul(inputs, self.kernel)
        bias = self._input_bias()
        return projected if bias is None else projected + bias

    def _recurrent_step(self, projected: torch.Tensor, states: list[torch.Tensor],
                        recurrent_mask: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        raise NotImplementedError

    def call(self, inputs: torch.Tensor, states: Any, training: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One step: (output, new states) for ``inputs`` (batch, features) and the states."""
        states = list(states) if _nested(states) else [states]
        if self._dropout_masks is not None:  # a layer's loop drew the sequence's masks
            input_mask, recurrent_mask = self._dropout_masks
        else:
            input_mask, recurrent_mask = self._draw_dropout_masks(inputs, states[0], training)
        return self._recurrent_step(self.project_inputs(inputs, input_mask), states, recurrent_mask)

    def forward(self, inputs: Any, states: Any = None, training: bool | None = None, **kwargs: Any) -> Any:
        """Keras's ``cell(inputs, states, training=...)``: cast, build once, one step."""
        if kwargs:
            raise TypeError(f"{type(self).__name__} '{self.name}': unexpected call argument(s) {sorted(kwargs)}")
        if not isinstance(inputs, torch.Tensor):
            inputs = self._as_tensors(inputs)
        inputs = self._cast(inputs)
        if inputs.dim() != 2:
            raise ValueError(f"Input 0 of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                             f"expected ndim=2 (batch, features), found ndim={inputs.dim()}. "
                             f"Full shape received: {tuple(inputs.shape)}")
        if not self.built:
            self._build_for(inputs)
        self._check_inputs(inputs)
        if states is None:
            states = self.get_initial_state(inputs.shape[0])
        states = [self._cast(s) for s in (states if _nested(states) else [states])]
        if self._mixed:
            with _compute_dtype_weights(self, self._compute_dtype):
                return self.call(inputs, states, training=bool(training))
        return self.call(inputs, states, training=bool(training))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.output_size)


class SimpleRNNCell(_Cell):
    """``h = activation(x @ kernel + bias + h_prev @ recurrent_kernel)``."""

    spec_name = "SimpleRNN"
    GATES = 1
    _CELL_PARAMS = ("units", "activation", "use_bias", "kernel_initializer", "recurrent_initializer",
                    "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                    "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout",
                    "seed")

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure_cell(locals())

    def _recurrent_step(self, projected: torch.Tensor, states: list[torch.Tensor],
                        recurrent_mask: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        prev = states[0] if recurrent_mask is None else states[0] * recurrent_mask
        output = self.activation_fn(projected + torch.matmul(prev, self.recurrent_kernel))
        return output, [output]


class GRUCell(_Cell):
    """Keras's GRU step: gates [z, r, h]; ``h = z * h_prev + (1 - z) * hh``.  With ``reset_after`` the
    reset gate multiplies ``h_prev @ recurrent_kernel_h + recurrent_bias_h``, else it multiplies
    ``h_prev`` before the matmul."""

    spec_name = "GRU"
    GATES = 3
    _CELL_PARAMS = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
                    "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
                    "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                    "recurrent_dropout", "implementation", "reset_after", "seed")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, recurrent_constraint: Any = None, bias_constraint: Any = None,
                 dropout: float = 0.0, recurrent_dropout: float = 0.0, reset_after: bool = True,
                 seed: int | None = None, implementation: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure_cell(locals())

    def _bias_shape(self, gates: int) -> tuple[int, ...]:
        return (2, gates) if self.reset_after else (gates,)

    def _input_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def _recurrent_step(self, projected: torch.Tensor, states: list[torch.Tensor],
                        recurrent_mask: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h_prev = states[0]
        units = self.units
        masked = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        x_z, x_r, x_h = projected.split(units, dim=-1)
        kernel = self.recurrent_kernel
        if self.reset_after:
            inner = torch.matmul(masked, kernel)
            if self.bias is not None:
                inner = inner + self.bias[1]
            rec_z, rec_r, rec_h = inner.split(units, dim=-1)
            z = self.recurrent_activation_fn(x_z + rec_z)
            r = self.recurrent_activation_fn(x_r + rec_r)
            rec_h = r * rec_h
        else:
            inner = torch.matmul(masked, kernel[:, : 2 * units])
            rec_z, rec_r = inner.split(units, dim=-1)
            z = self.recurrent_activation_fn(x_z + rec_z)
            r = self.recurrent_activation_fn(x_r + rec_r)
            rec_h = torch.matmul(r * masked, kernel[:, 2 * units:])
        hh = self.activation_fn(x_h + rec_h)
        h = z * h_prev + (1 - z) * hh
        return h, [h]


class LSTMCell(_Cell):
    """Keras's LSTM step: gates [i, f, c, o]; ``c = f * c_prev + i * activation(z_c)``,
    ``h = o * activation(c)``.  ``unit_forget_bias`` initializes the forget gate's bias to ones."""

    spec_name = "LSTM"
    GATES = 4
    _CELL_PARAMS = ("units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
                    "recurrent_initializer", "bias_initializer", "unit_forget_bias", "kernel_regularizer",
                    "recurrent_regularizer", "bias_regularizer", "kernel_constraint", "recurrent_constraint",
                    "bias_constraint", "dropout", "recurrent_dropout", "implementation", "seed")

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, implementation: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure_cell(locals())

    @property
    def state_size(self) -> Any:
        return [self.units, self.units]

    def _bias_initializer(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        base = initializers.get(self.bias_initializer)
        units = self.units

        def unit_forget(shape: Shape, dtype: torch.dtype, device: Any = None) -> torch.Tensor:
            # Keras: bias_initializer for i, ones for f, bias_initializer for (c, o) in one call.
            ones = torch.ones((units,), dtype=dtype, device=device)
            return torch.cat([base((units,), dtype=dtype, device=device), ones,
                              base((2 * units,), dtype=dtype, device=device)])

        return unit_forget

    def _recurrent_step(self, projected: torch.Tensor, states: list[torch.Tensor],
                        recurrent_mask: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h_prev, c_prev = states[0], states[1]
        masked = h_prev if recurrent_mask is None else h_prev * recurrent_mask
        z = projected + torch.matmul(masked, self.recurrent_kernel)
        z_i, z_f, z_c, z_o = z.split(self.units, dim=-1)
        i = self.recurrent_activation_fn(z_i)
        f = self.recurrent_activation_fn(z_f)
        c = f * c_prev + i * self.activation_fn(z_c)
        o = self.recurrent_activation_fn(z_o)
        h = o * self.activation_fn(c)
        return h, [h, c]


class StackedRNNCells(Layer):
    """Cells applied one after the other at every step: the output of one is the input of the next;
    the states are one entry per cell (a cell's list of states, or its single state)."""

    def __init__(self, cells: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        cells = list(cells)
        if not cells:
            raise ValueError("StackedRNNCells: 'cells' must hold at least one cell, got []")
        for index, cell in enumerate(cells):
            for attribute in ("call", "state_size"):
                if not hasattr(cell, attribute):
                    raise ValueError(f"StackedRNNCells: cell {index} ({type(cell).__name__}) has no {attribute!r}, "
                                     f"which the cell contract requires")
        self.cells = torch.nn.ModuleList(cells) if all(isinstance(c, torch.nn.Module) for c in cells) else cells
        self._config = {}

    @property
    def state_size(self) -> list[Any]:
        return [c.state_size for c in self.cells]

    @property
    def output_size(self) -> int:
        last = self.cells[-1]
        return getattr(last, "output_size", None) or (last.state_size[0] if _nested(last.state_size) else last.state_size)

    def get_initial_state(self, batch_size: int | None = None) -> list[Any]:
        # As Keras 3: a cell's own get_initial_state result as it is (a list for the built-in cells),
        # else zeros -- one tensor for an int state_size, a list for a list.
        out: list[Any] = []
        for cell in self.cells:
            if getattr(cell, "get_initial_state", None) is not None:
                out.append(cell.get_initial_state(batch_size=batch_size))
            else:
                state = _initial_state_of(cell, batch_size, self._compute_dtype, self._device)
                out.append(state if _nested(cell.state_size) else state[0])
        return out

    def build(self, input_shape: Shape) -> None:
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell._device = self._device
                cell.build(shape)
                cell.built = True
            shape = (shape[0], _output_size_of(cell))
        self.built = True

    def call(self, inputs: torch.Tensor, states: Any, training: bool = False) -> tuple[torch.Tensor, list[Any]]:
        new_states = []
        for cell, state in zip(self.cells, states):
            as_list = _nested(state)
            inputs, new = _call_cell(cell, inputs, list(state) if as_list else [state], training)
            new_states.append(new if as_list else new[0])
        return inputs, new_states

    def forward(self, inputs: Any, states: Any = None, training: bool | None = None) -> Any:
        inputs = self._cast(inputs) if isinstance(inputs, torch.Tensor) else self._as_tensors(inputs)
        if not self.built:
            self._build_for(inputs)
        if states is None:
            states = self.get_initial_state(inputs.shape[0])
        return self.call(inputs, states, training=bool(training))

    # Weights are the cells' weights, in the cells' order (Keras's StackedRNNCells.weights).
    def _owners(self) -> list[Any]:
        return [c for c in self.cells if hasattr(c, "get_weights")]

    @property
    def weight_names(self) -> list[str]:
        return [n for c in self._owners() for n in c.weight_names]

    def get_weights(self) -> list[np.ndarray]:
        return [w for c in self._owners() for w in c.get_weights()]

    def keras_weights(self) -> list[torch.Tensor]:
        return [w for c in self._owners() for w in c.keras_weights()]

    def weight_to_keras(self, weight: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        for c in self._owners():
            if any(w is weight for w in c.keras_weights()):
                return c.weight_to_keras(weight, value)
        raise ValueError(f"StackedRNNCells '{self.name}': not one of its weights")

    def set_weights(self, weights: Sequence[Any]) -> None:
        counts = [len(c.get_weights()) for c in self._owners()]
        if len(weights) != sum(counts):
            raise ValueError(f"StackedRNNCells '{self.name}': set_weights expects {sum(counts)} arrays, got {len(weights)}")
        start = 0
        for c, n in zip(self._owners(), counts):
            c.set_weights(list(weights[start:start + n]))
            start += n

    def apply_constraints(self) -> None:
        for c in self._owners():
            c.apply_constraints()

    @property
    def losses(self) -> list[torch.Tensor]:
        return [loss for c in self.cells if isinstance(c, Layer) for loss in c.losses]

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy.serialize(),
                "cells": [_serialize_layer(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StackedRNNCells:
        config = dict(config)
        cells = [_deserialize_layer(c) for c in config.pop("cells")]
        return cls(cells, **config)


# -- the general RNN -----------------------------------------------------------------------------
def _output_size_of(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    if size is None:
        state_size = cell.state_size
        size = state_size[0] if _nested(state_size) else state_size
    return int(size)


def _initial_state_of(cell: Any, batch_size: int, dtype: torch.dtype, device: Any = None) -> list[Any]:
    getter = getattr(cell, "get_initial_state", None)
    if getter is not None:
        state = getter(batch_size=batch_size)
        return list(state) if _nested(state) else [state]
    sizes = cell.state_size if _nested(cell.state_size) else [cell.state_size]
    return [torch.zeros((batch_size, int(s)), dtype=dtype, device=device) for s in sizes]


def _call_cell(cell: Any, inputs: torch.Tensor, states: list[Any], training: bool) -> tuple[torch.Tensor, list[Any]]:
    if isinstance(cell, (_Cell, StackedRNNCells)):
        output, new = cell.call(inputs, states, training=training)
    else:  # a user cell: Keras's contract, call(inputs, states[, training])
        try:
            output, new = cell(inputs, states, training=training)
        except TypeError:
            output, new = cell(inputs, states)
    return output, (list(new) if _nested(new) else [new])


_CELL_CLASSES: dict[str, type] = {}


def _serialize_layer(layer: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": None}


def _deserialize_layer(config: Any) -> Any:
    if not isinstance(config, Mapping):
        return config  # already a cell
    name = config.get("class_name")
    cls = _CELL_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"cannot deserialize cell of class {name!r}: expected one of {sorted(_CELL_CLASSES)}")
    return cls.from_config(config.get("config", {}))


def _check_bool(layer: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer}: {name!r} must be a bool, got {value!r} [rule: {name}.type]")
    return bool(value)


class RNN(Layer):
    """Keras's RNN over any cell (or a list of cells, stacked).  See the module docstring for the loop's
    mask semantics and the fused path."""

    supports_masking = True

    def __init__(self, cell: Any, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 zero_output_for_mask: bool = False, time_major: bool = False, **kwargs: Any) -> None:
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell), dtype=kwargs.get("dtype"))
        elif isinstance(cell, Mapping):
            cell = _deserialize_layer(cell)
        for attribute in ("call", "state_size"):
            if not hasattr(cell, attribute):
                raise ValueError(f"RNN: argument 'cell' must have a {attribute!r} attribute (Keras's cell contract), "
                                 f"got {type(cell).__name__}")
        super().__init__(**kwargs)
        self._flavor = get_flavor()
        self._init_rnn(cell, locals())

    def _init_rnn(self, cell: Any, arguments: Mapping[str, Any]) -> None:
        layer = type(self).__name__
        for name in _RNN_PARAMS:
            setattr(self, name, _check_bool(layer, name, arguments[name]))
        if self.time_major and self._flavor != "tf_keras":
            raise SpecTypeError(layer, ["time_major"], "unknown_argument",
                                "unrecognized argument 'time_major' under the keras3 flavour (tf_keras only)")
        self.cell = cell
        state_size = cell.state_size
        self.state_size = list(state_size) if _nested(state_size) else [state_size]
        self.states: list[Any] | None = None
        self._rnn_config = {name: getattr(self, name) for name in _RNN_PARAMS}
        self.input_spec = InputSpec(ndim=3)

    # -- configuration -------------------------------------------------------------------------------
    def _rnn_config_items(self) -> dict[str, Any]:
        config = dict(self._rnn_config)
        if self._flavor == "tf_keras":
            if not config["zero_output_for_mask"]:  # tf_keras serializes it only when set
                config.pop("zero_output_for_mask")
        else:
            config.pop("time_major")
        return config

    def get_config(self) -> dict[str, Any]:
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy.serialize(),
                  "cell": _serialize_layer(self.cell)}
        config.update(self._rnn_config_items())
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RNN:
        return cls(**dict(config))

    # -- weights: the cell's ------------------------------------------------------------------------
    def _cell_has_weights(self) -> bool:
        return hasattr(self.cell, "get_weights")

    @property
    def weight_names(self) -> list[str]:
        return list(self.cell.weight_names) if self._cell_has_weights() else []

    def get_weights(self) -> list[np.ndarray]:
        return self.cell.get_weights() if self._cell_has_weights() else []

    def keras_weights(self) -> list[torch.Tensor]:
        return self.cell.keras_weights() if self._cell_has_weights() else []

    def weight_to_keras(self, weight: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self.cell.weight_to_keras(weight, value)

    def set_weights(self, weights: Sequence[Any]) -> None:
        if not self._cell_has_weights():
            if weights:
                raise ValueError(f"{type(self).__name__} '{self.name}': set_weights expects 0 arrays, got {len(weights)}")
            return
        expected = self.cell.weight_names
        if len(weights) != len(expected):
            raise ValueError(f"{type(self).__name__} '{self.name}': set_weights expects {len(expected)} arrays "
                             f"({', '.join(expected) or 'none; build the layer first'}), got {len(weights)}")
        self.cell.set_weights(weights)

    def apply_constraints(self) -> None:
        if self._cell_has_weights():
            self.cell.apply_constraints()

    # -- shapes and masks ----------------------------------------------------------------------------
    def _batch_and_time_axes(self) -> tuple[int, int]:
        return (1, 0) if self.time_major else (0, 1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if isinstance(input_shape, list) and input_shape and _nested(input_shape[0]):
            input_shape = input_shape[0]
        batch_axis, time_axis = self._batch_and_time_axes()
        batch, length = input_shape[batch_axis], input_shape[time_axis]
        output_size = _output_size_of(self.cell)
        if self.return_sequences:
            output = (length, batch, output_size) if self.time_major else (batch, length, output_size)
        else:
            output = (batch, output_size)
        if not self.return_state:
            return output
        states: list[Any] = []
        for size in self.state_size:
            if _nested(size):
                states.append([(batch, int(s)) for s in size])
            else:
                states.append((batch, int(size)))
        return [output, *states]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if _nested(mask):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None for _ in self.state_size]
        return output_mask

    # -- build ---------------------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        if isinstance(input_shape, list) and input_shape and _nested(input_shape[0]):
            input_shape = input_shape[0]
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"Input 0 of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                             f"expected ndim=3, found ndim={len(input_shape)}. Full shape received: {input_shape}")
        batch_axis, _ = self._batch_and_time_axes()
        batch = input_shape[batch_axis]
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell._device = self._device
            self.cell.build((batch, input_shape[-1]))
            self.cell.built = True
        if self.stateful and batch is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': when using stateful=True the batch size must be "
                             f"static; found a dynamic batch size in the input shape {input_shape}")
        if input_shape[-1] is not None:
            self.input_spec = InputSpec(ndim=3, axes={-1: int(input_shape[-1])})
        self.built = True

    # -- state ---------------------------------------------------------------------------------------
    def reset_states(self, states: Any = None) -> None:
        """Zero the states of a stateful layer, or set them to ``states`` (one array per state, each
        (batch, size)); tf_keras's reset_states(states)."""
        if not self.stateful:
            raise AttributeError(f"{type(self).__name__} '{self.name}': reset_states() needs stateful=True")
        if states is None:
            if self.states is not None:
                self.states = _map(torch.zeros_like, self.states)
            return
        values = list(states) if _nested(states) else [states]
        sizes = [int(s) for s in (_flatten(self.state_size) if not all(isinstance(s, int) for s in self.state_size)
                                  else self.state_size)]
        if len(values) != len(sizes):
            raise ValueError(f"{type(self).__name__} '{self.name}': reset_states expects {len(sizes)} state arrays, "
                             f"got {len(values)}")
        device = self._device or torch.device("cpu")
        tensors = []
        for index, (value, size) in enumerate(zip(values, sizes)):
            tensor = value if isinstance(value, torch.Tensor) else from_numpy(value)
            if tensor.dim() != 2 or tensor.shape[1] != size:
                raise ValueError(f"{type(self).__name__} '{self.name}': state {index} expects shape (batch, {size}), "
                                 f"got {tuple(tensor.shape)}")
            if self.states is not None and tensor.shape[0] != _flatten(self.states)[0].shape[0]:
                raise ValueError(f"{type(self).__name__} '{self.name}': state {index} has batch size {tensor.shape[0]}, "
                                 f"the layer's states have batch size {_flatten(self.states)[0].shape[0]}")
            tensors.append(tensor.to(device=device, dtype=self._compute_dtype))
        self.states = self._nest_like_state_size(tensors)

    reset_state = reset_states

    def _nest_like_state_size(self, flat: list[torch.Tensor]) -> list[Any]:
        out, index = [], 0
        for size in self.state_size:
            if _nested(size):
                out.append(flat[index:index + len(size)])
                index += len(size)
            else:
                out.append(flat[index])
                index += 1
        return out

    def get_initial_state(self, batch_size: int) -> list[Any]:
        device = self._device or torch.device("cpu")
        if isinstance(self.cell, StackedRNNCells):
            return self.cell.get_initial_state(batch_size)
        return _initial_state_of(self.cell, batch_size, self._compute_dtype, device)

    # -- call ----------------------------------------------------------------------------------------
    def call(self, inputs: Any, mask: Any = None, training: bool = False, initial_state: Any = None) -> Any:
        if isinstance(inputs, (list, tuple)):  # Keras also takes [sequences, *initial_states]
            if len(inputs) > 1 and initial_state is None:
                initial_state = list(inputs[1:])
            inputs = inputs[0]
        if _nested(mask):
            mask = mask[0]
        if inputs.dim() != 3:
            raise ValueError(f"Input 0 of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                             f"expected ndim=3, found ndim={inputs.dim()}. Full shape received: {tuple(inputs.shape)}")
        if self.time_major:  # the loop runs batch-major; the mask has the inputs' layout
            inputs = inputs.transpose(0, 1)
            mask = None if mask is None else mask.transpose(0, 1)
        batch = inputs.shape[0]
        states = self._states_for_call(initial_state, batch)
        if mask is not None:
            mask = mask.to(device=inputs.device, dtype=torch.bool)
            if tuple(mask.shape) != tuple(inputs.shape[:2]):
                raise ValueError(f"{type(self).__name__} '{self.name}': mask of shape {tuple(mask.shape)} does not fit "
                                 f"the inputs of shape {tuple(inputs.shape)} (expected (batch, timesteps))")
        if self._mixed:
            with _compute_dtype_weights(self, self._compute_dtype):
                last, outputs, new_states = self._run(inputs, states, mask, training)
        else:
            last, outputs, new_states = self._run(inputs, states, mask, training)
        if self.stateful:
            self.states = _map(lambda s: s.detach(), new_states)
        output = outputs if self.return_sequences else last
        if self.return_sequences and self.time_major:
            output = output.transpose(0, 1)
        if not self.return_state:
            return output
        if mask is not None and self.return_sequences:
            output._keras_mask = mask.transpose(0, 1) if self.time_major else mask
        return [output, *new_states]

    def _states_for_call(self, initial_state: Any, batch: int) -> list[Any] | None:
        if initial_state is None and self.stateful and self.states is not None:
            held = _flatten(self.states)[0].shape[0]
            if held != batch:
                raise ValueError(f"{type(self).__name__} '{self.name}' is stateful: the batch size of the input "
                                 f"sequences must equal the batch size of the states; expected {held}, got {batch}")
            return self.states
        if initial_state is None:
            return None  # zeros: made by the path that runs (the fused one needs a single tensor)
        given = list(initial_state) if _nested(initial_state) else [initial_state]
        flat = [self._cast(torch.as_tensor(s) if not isinstance(s, torch.Tensor) else s) for s in _flatten(given)]
        sizes = _flatten(self.state_size)
        if len(flat) != len(sizes):
            raise ValueError(f"{type(self).__name__} '{self.name}': initial_state has {len(flat)} tensors, the cell has "
                             f"{len(sizes)} states of sizes {self.state_size}")
        for index, (tensor, size) in enumerate(zip(flat, sizes)):
            if tuple(tensor.shape) != (batch, int(size)):
                raise ValueError(f"{type(self).__name__} '{self.name}': initial state {index} must have shape "
                                 f"({batch}, {size}), got {tuple(tensor.shape)}")
        return self._nest_like_state_size(flat)

    def _run(self, inputs: torch.Tensor, states: list[Any] | None, mask: torch.Tensor | None,
             training: bool) -> tuple[torch.Tensor, torch.Tensor | None, list[Any]]:
        if FUSED and self._fused_allowed(inputs, mask, training):
            return self._run_fused(inputs, states)
        if states is None:
            states = self.get_initial_state(inputs.shape[0])
        return self._run_loop(inputs, states, mask, training)

    def _fused_allowed(self, inputs: torch.Tensor, mask: torch.Tensor | None, training: bool) -> bool:
        return False  # the general RNN runs any cell with the loop; SimpleRNN / GRU / LSTM override

    def _run_fused(self, inputs: torch.Tensor, states: list[Any] | None) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        raise NotImplementedError

    def _run_loop(self, inputs: torch.Tensor, states: list[Any], mask: torch.Tensor | None,
                  training: bool) -> tuple[torch.Tensor, torch.Tensor | None, list[Any]]:
        """Keras's ``backend.rnn``: steps in order (reversed with go_backwards), states carried through
        masked steps, the output of a masked step the previous one (or zeros)."""
        cell = self.cell
        if self.go_backwards:
            inputs = inputs.flip(1)
            mask = None if mask is None else mask.flip(1)
        steps = inputs.shape[1]
        builtin = isinstance(cell, _Cell)
        if builtin:
            input_mask, recurrent_mask = cell._draw_dropout_masks(inputs[:, 0], _flatten(states)[0], training)
            projected = cell.project_inputs(inputs, input_mask)  # every step's input projection, one matmul
        else:
            self._draw_stacked_masks(cell, inputs, states, training)
        outputs: list[torch.Tensor] = []
        previous: torch.Tensor | None = None
        output = inputs.new_zeros((inputs.shape[0], _output_size_of(cell)))
        try:
            for t in range(steps):
                if builtin:
                    step_output, new_states = cell._recurrent_step(projected[:, t], states, recurrent_mask)
                else:
                    step_output, new_states = _call_cell(cell, inputs[:, t], states, training)
                if mask is None:
                    states, output = new_states, step_output
                else:
                    keep = mask[:, t].unsqueeze(-1)
                    states = _map2(lambda new, old, k=keep: torch.where(k, new, old), new_states, states)
                    if previous is None:
                        previous = torch.zeros_like(step_output)
                    carried = torch.where(keep, step_output, previous)
                    previous = carried
                    output = torch.where(keep, step_output, torch.zeros_like(step_output)) if self.zero_output_for_mask \
                        else carried
                if self.return_sequences:
                    outputs.append(output)
        finally:
            self._clear_stacked_masks(cell)
        sequence = torch.stack(outputs, dim=1) if self.return_sequences else None
        return output, sequence, states

    def _draw_stacked_masks(self, cell: Any, inputs: torch.Tensor, states: list[Any], training: bool) -> None:
        """Per-sequence dropout masks for the built-in cells of a stack (each sized by its own input)."""
        if not isinstance(cell, StackedRNNCells) or not training:
            return
        step_input = inputs[:, 0]
        for sub, state in zip(cell.cells, states):
            if isinstance(sub, _Cell):
                first = _flatten(state)[0]
                sub._dropout_masks = sub._draw_dropout_masks(step_input, first, training)
            step_input = step_input.new_zeros((step_input.shape[0], _output_size_of(sub)))

    def _clear_stacked_masks(self, cell: Any) -> None:
        if isinstance(cell, StackedRNNCells):
            for sub in cell.cells:
                if isinstance(sub, _Cell):
                    sub._dropout_masks = None


# -- SimpleRNN, GRU, LSTM ------------------------------------------------------------------------------
class _RecurrentLayer(RNN):
    """A Keras recurrent layer: its spec validates every parameter; the cell holds the weights;
    get_config is flat, as Keras's."""

    CELL: ClassVar[type[_Cell]]
    #: The name Keras gives the layer's cell.
    CELL_NAME: ClassVar[str]

    def __init__(self, arguments: Mapping[str, Any], kwargs: dict[str, Any]) -> None:
        Layer.__init__(self, **kwargs)
        self._flavor = get_flavor()
        own = {k: v for k, v in arguments.items() if k not in ("self", "kwargs", "__class__")}
        spec_params = type(self).spec().params
        foreign = [n for n, v in own.items()
                   if n in spec_params and not spec_params[n].in_oracle(self._flavor) and v != spec_params[n].default]
        if foreign:
            raise SpecTypeError(type(self).spec().name, foreign, "unknown_argument",
                                f"unrecognized argument(s) {foreign} under the {self._flavor} flavour "
                                f"(the other oracle's parameters)")
        config = self._configure(own)
        cell_args = {k: config[k] for k in self.CELL._CELL_PARAMS if k in config}
        cell = self.CELL(**cell_args, dtype=self.dtype_policy.name, trainable=self.trainable, name=self.CELL_NAME)
        self._init_rnn(cell, config)

    def get_config(self) -> dict[str, Any]:
        config = Layer.get_config(self)
        for name, p in type(self).spec().params.items():
            if not p.in_oracle(self._flavor):
                config.pop(name, None)
        if self._flavor == "tf_keras" and not config.get("zero_output_for_mask"):
            config.pop("zero_output_for_mask", None)  # tf_keras serializes it only when set
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> _RecurrentLayer:
        return cls(**dict(config))

    def _fused_dtype_ok(self, inputs: torch.Tensor) -> bool:
        return inputs.is_cuda or inputs.dtype in _FUSED_DTYPES_CPU

    def _fused_allowed(self, inputs: torch.Tensor, mask: torch.Tensor | None, training: bool) -> bool:
        cell = self.cell
        if type(cell) is not self.CELL or cell._uses_dropout(training) or not self._fused_dtype_ok(inputs):
            return False
        return inputs.shape[1] > 0 and inputs.shape[0] > 0  # the mask is _run's to judge

    def _run(self, inputs: torch.Tensor, states: list[Any] | None, mask: torch.Tensor | None,
             training: bool) -> tuple[torch.Tensor, torch.Tensor | None, list[Any]]:
        """Torch's fused kernel without a mask (or an all-true one), its packed-sequence form for a
        right-padded mask (each sample's steps valid up to its length), the loop otherwise."""
        if FUSED and self._fused_allowed(inputs, mask, training):
            if mask is None or bool(mask.all()):
                return self._run_fused(inputs, states)
            # go_backwards reverses the mask too: right padding becomes left padding, which a packed
            # sequence cannot express.
            lengths = None if self.go_backwards else _right_padded_lengths(mask)
            if lengths is not None:
                return self._run_packed(inputs, states, mask, lengths)
        if states is None:
            states = self.get_initial_state(inputs.shape[0])
        return self._run_loop(inputs, states, mask, training)

    def _run_packed(self, inputs: torch.Tensor, states: list[Any] | None, mask: torch.Tensor,
                    lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, list[Any]]:
        """A right-padded mask through torch's packed sequences.  Keras's semantics follow without a
        loop: the states after a sample's last valid step are its final states; every padded step
        outputs the last valid output (that final h) or zeros with zero_output_for_mask."""
        from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

        batch, steps = inputs.shape[0], inputs.shape[1]
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        if states is None:
            flat = [inputs.new_zeros((1, batch, self.units))] * len(self.state_size)
        else:
            flat = [s.unsqueeze(0) for s in _flatten(states)]
        flat = [s.index_select(1, packed.sorted_indices) for s in flat]
        data, finals = self._fused_call(packed.data, flat, self._torch_weights(), packed.batch_sizes)
        finals = [f.index_select(0, packed.unsorted_indices) for f in finals]
        last = finals[0]
        complete = (lengths == steps).unsqueeze(-1)
        sequence = None
        if self.return_sequences:
            padded, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                                           packed.unsorted_indices), batch_first=True, total_length=steps)
            if not self.zero_output_for_mask:
                padded = torch.where(mask.unsqueeze(-1), padded, last.unsqueeze(1))
            sequence = padded
        if self.zero_output_for_mask:
            last = torch.where(complete, last, torch.zeros_like(last))
        return last, sequence, self._nest_like_state_size(finals)

    def _weights_for_torch(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def _fused_call(self, x: torch.Tensor, flat_states: list[torch.Tensor], weights: list[torch.Tensor],
                    batch_sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Torch's kernel on batch-first ``x`` (batch, steps, features), or on packed data when
        ``batch_sizes`` is given; returns the output sequence and the final states (batch, units)."""
        raise NotImplementedError

    def _torch_weights(self) -> list[torch.Tensor]:
        """The weights in torch's layout, contiguous (torch's CPU kernels run several times slower on
        transposed views).  Where no gradient is wanted they are cached until a weight changes (its
        version counter, storage or dtype -- a mixed policy's cast is a new tensor each call)."""
        params = [self.cell._parameters[name] for name in self.cell.weight_names]
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return [w.contiguous() for w in self._weights_for_torch()]
        # Keyed on the stored parameters (a mixed policy's casts are fresh tensors whose memory may be
        # reused), and on the dtype the call computes in.
        key = (self._compute_dtype, tuple((p.data_ptr(), p._version, p.device) for p in params))
        cached = self.__dict__.get("_torch_weights_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, [w.contiguous() for w in self._weights_for_torch()])
            self.__dict__["_torch_weights_cache"] = cached
        return cached[1]

    def _run_fused(self, inputs: torch.Tensor, states: list[Any] | None) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        x = inputs.flip(1) if self.go_backwards else inputs
        if states is None:  # one zero tensor serves as every initial state (torch's kernels only read it)
            flat = [x.new_zeros((1, x.shape[0], self.units))] * len(self.state_size)
        else:
            flat = [s.unsqueeze(0) for s in _flatten(states)]
        sequence, finals = self._fused_call(x, flat, self._torch_weights())
        last = finals[0]
        return last, sequence, self._nest_like_state_size(finals)



def _right_padded_lengths(mask: torch.Tensor) -> torch.Tensor | None:
    """Per-sample lengths if every row of ``mask`` (batch, steps) is True up to its length and False
    after it (right padding) with at least one valid step; None for holes anywhere else."""
    as_int = mask.to(torch.int8)
    if bool((as_int[:, 1:] > as_int[:, :-1]).any()):
        return None
    lengths = as_int.sum(dim=1)
    if bool((lengths == 0).any()):
        return None
    return lengths


def _gru_torch_order(units: int) -> torch.Tensor:
    """Columns of Keras's [z, r, h] in torch's [r, z, n] order."""
    return torch.cat([torch.arange(units, 2 * units), torch.arange(0, units), torch.arange(2 * units, 3 * units)])


class SimpleRNN(_RecurrentLayer):
    CELL = SimpleRNNCell
    CELL_NAME = "simple_rnn_cell"

    def __init__(self, units: int, activation: Any = "tanh", use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", recurrent_initializer: Any = "orthogonal",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False, seed: int | None = None,
                 zero_output_for_mask: bool = False, time_major: bool = False, **kwargs: Any) -> None:
        super().__init__(locals(), kwargs)

    def _fused_allowed(self, inputs: torch.Tensor, mask: torch.Tensor | None, training: bool) -> bool:
        return self._config["activation"] in ("tanh", "relu") and super()._fused_allowed(inputs, mask, training)

    def _weights_for_torch(self) -> list[torch.Tensor]:
        cell = self.cell
        weights = [cell.kernel.t(), cell.recurrent_kernel.t()]
        if cell.bias is not None:
            weights += [cell.bias, torch.zeros_like(cell.bias)]
        return weights

    def _fused_call(self, x: torch.Tensor, flat_states: list[torch.Tensor], weights: list[torch.Tensor],
                    batch_sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        kernel = torch._VF.rnn_tanh if self._config["activation"] == "tanh" else torch._VF.rnn_relu
        return _fused_single_state(kernel, x, flat_states[0], weights, batch_sizes)


def _fused_single_state(kernel: Any, x: torch.Tensor, h0: torch.Tensor, weights: list[torch.Tensor],
                        batch_sizes: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One layer of torch's fused recurrence with one state (``rnn_tanh``, ``rnn_relu``, ``gru``),
    batch first, on a padded tensor or (``batch_sizes``) a packed one: (sequence, [last state])."""
    has_biases = len(weights) == 4
    if batch_sizes is None:
        sequence, h = kernel(x, h0, weights, has_biases, 1, 0.0, False, False, True)
    else:
        sequence, h = kernel(x, batch_sizes, h0, weights, has_biases, 1, 0.0, False, False)
    return sequence, [h[0]]


class GRU(_RecurrentLayer):
    CELL = GRUCell
    CELL_NAME = "gru_cell"

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, recurrent_regularizer: Any = None, bias_regularizer: Any = None,
                 activity_regularizer: Any = None, kernel_constraint: Any = None, recurrent_constraint: Any = None,
                 bias_constraint: Any = None, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 seed: int | None = None, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False, reset_after: bool = True,
                 implementation: int = 2, zero_output_for_mask: bool = False, time_major: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(locals(), kwargs)

    def _fused_allowed(self, inputs: torch.Tensor, mask: torch.Tensor | None, training: bool) -> bool:
        config = self._config
        return (config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid" and config["reset_after"]
                and super()._fused_allowed(inputs, mask, training))

    def _weights_for_torch(self) -> list[torch.Tensor]:
        cell = self.cell
        order = _gru_torch_order(cell.units).to(cell.kernel.device)
        weights = [cell.kernel.index_select(1, order).t(), cell.recurrent_kernel.index_select(1, order).t()]
        if cell.bias is not None:
            bias = cell.bias.index_select(1, order)
            weights += [bias[0], bias[1]]
        return weights

    def _fused_call(self, x: torch.Tensor, flat_states: list[torch.Tensor], weights: list[torch.Tensor],
                    batch_sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return _fused_single_state(torch._VF.gru, x, flat_states[0], weights, batch_sizes)


class LSTM(_RecurrentLayer):
    CELL = LSTMCell
    CELL_NAME = "lstm_cell"

    def __init__(self, units: int, activation: Any = "tanh", recurrent_activation: Any = "sigmoid",
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 recurrent_initializer: Any = "orthogonal", bias_initializer: Any = "zeros",
                 unit_forget_bias: bool = True, kernel_regularizer: Any = None, recurrent_regularizer: Any = None,
                 bias_regularizer: Any = None, activity_regularizer: Any = None, kernel_constraint: Any = None,
                 recurrent_constraint: Any = None, bias_constraint: Any = None, dropout: float = 0.0,
                 recurrent_dropout: float = 0.0, seed: int | None = None, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 implementation: int = 2, zero_output_for_mask: bool = False, time_major: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(locals(), kwargs)

    def _fused_allowed(self, inputs: torch.Tensor, mask: torch.Tensor | None, training: bool) -> bool:
        config = self._config
        return (config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid"
                and super()._fused_allowed(inputs, mask, training))

    def _weights_for_torch(self) -> list[torch.Tensor]:
        # Keras's [i, f, c, o] columns are torch's [i, f, g, o] rows: a transpose, no reordering.
        cell = self.cell
        weights = [cell.kernel.t(), cell.recurrent_kernel.t()]
        if cell.bias is not None:
            weights += [cell.bias, torch.zeros_like(cell.bias)]
        return weights

    def _fused_call(self, x: torch.Tensor, flat_states: list[torch.Tensor], weights: list[torch.Tensor],
                    batch_sizes: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        hx = (flat_states[0], flat_states[1])
        if batch_sizes is None:
            sequence, h, c = torch._VF.lstm(x, hx, weights, len(weights) == 4, 1, 0.0, False, False, True)
        else:
            sequence, h, c = torch._VF.lstm(x, batch_sizes, hx, weights, len(weights) == 4, 1, 0.0, False, False)
        return sequence, [h[0], c[0]]


_CELL_CLASSES.update({cls.__name__: cls for cls in (SimpleRNNCell, GRUCell, LSTMCell, StackedRNNCells)})

__all__ = ["FUSED", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNN", "SimpleRNNCell", "StackedRNNCells"]
