"""Oracle adapters: build the real Keras layer and run it.

Two oracles, both Keras on TensorFlow: ``keras3`` (the ``keras`` package, TensorFlow backend) and
``tf_keras`` (Keras 2).  They differ only in import path and in how they name and serialize
things, so one adapter class serves both.  TensorFlow is imported lazily, quietly, and with the
settings that make it reproducible (no oneDNN reordering, no TF32).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from keraspec.spec import ORACLE_PACKAGES, ORACLES, LayerSpec, compute_dtype

#: The learning rate of the training-step check's plain SGD step (the oracle's optimizer and ours):
#: a power of two, exact in every dtype, since Keras keeps the learning rate in a float32 variable
#: (0.01 would step a float64 weight by float32(0.01)).
TRAINING_STEP_LEARNING_RATE = 2.0**-7


class OracleUnavailable(RuntimeError):
    """The oracle's packages are not installed (e.g. a GPU machine with PyTorch only)."""


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    # TensorFlow's C++ start-up lines bypass TF_CPP_MIN_LOG_LEVEL; silence fd 2 around the import.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@cache
def tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        with _quiet_stderr():
            import tensorflow as tf
    except ImportError as exc:
        raise OracleUnavailable(f"TensorFlow is not installed ({exc}); install the 'oracle' extra") from None
    tf.get_logger().setLevel("ERROR")
    tf.config.experimental.enable_tensor_float_32_execution(False)
    return tf


def available(name: str) -> bool:
    try:
        get(name)
    except OracleUnavailable:
        return False
    return True


@dataclass
class OracleRun:
    """What the oracle computed for one case.  ``error`` is set instead when it raised."""

    weights: list[np.ndarray] = field(default_factory=list)
    weight_names: list[str] = field(default_factory=list)
    trainable: list[bool] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    output_shape: Any = None  # the oracle's compute_output_shape on the (None-batch) input shape
    #: compute_output_shape on the input shape with every free axis unknown (None), or "error: ..."
    output_shape_unknown: Any = None
    outputs: list[np.ndarray] = field(default_factory=list)
    output_mask: np.ndarray | None = None
    grad_inputs: list[np.ndarray] = field(default_factory=list)
    grad_weights: list[np.ndarray] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    updated_weights: list[np.ndarray] = field(default_factory=list)  # after the call (moving statistics)
    error: str | None = None
    #: Set when the forward pass ran but TensorFlow could not differentiate it (no registered gradient).
    grad_error: str | None = None
    #: Every weight after one SGD step with the gradients above and the weights' constraints applied,
    #: as the oracle's own optimizer does it.
    stepped_weights: list[np.ndarray] = field(default_factory=list)
    #: Set when the forward and backward passes ran but the oracle's optimizer step failed.
    step_error: str | None = None
    #: Per probe input (inputs the built layer may refuse): the oracle's error, or None and its output.
    probe_errors: list[str | None] = field(default_factory=list)
    probe_outputs: list[np.ndarray] = field(default_factory=list)


class KerasOnTensorFlow:
    """Adapter for one Keras flavour running on TensorFlow."""

    def __init__(self, name: str):
        self.name = name
        if name == "keras3" and os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
            raise OracleUnavailable(f"KERAS_BACKEND={os.environ['KERAS_BACKEND']}: the keras3 oracle needs the tensorflow backend")
        self.tf = tensorflow()
        try:
            with _quiet_stderr():
                self.module = importlib.import_module(ORACLE_PACKAGES[name])
        except ImportError as exc:
            raise OracleUnavailable(f"{ORACLE_PACKAGES[name]} is not installed ({exc})") from None

    @property
    def version(self) -> str:
        return str(self.module.__version__)

    def versions(self) -> dict[str, str]:
        return {ORACLE_PACKAGES[self.name]: self.version, "tensorflow": self.tf.__version__}

    def layer_class(self, layer: LayerSpec) -> type:
        path = layer.oracles.get(self.name)
        if path is None:
            raise OracleUnavailable(f"{layer.name} has no {self.name} counterpart in the spec")
        module_path, _, cls_name = path.rpartition(".")
        module = importlib.import_module(module_path)
        return getattr(module, cls_name)

    def construct(self, layer: LayerSpec, config: Mapping[str, Any], dtype: str = "float32") -> Any:
        return self.layer_class(layer)(**dict(config), dtype=dtype)

    def weight_name(self, variable: Any) -> str:
        # keras3: variable.name is "kernel"; tf_keras: "dense/kernel:0".
        return variable.name.split("/")[-1].split(":")[0]

    def to_tensor(self, value: np.ndarray) -> Any:
        return self.tf.convert_to_tensor(value)

    def output_shape(self, obj: Any, input_shapes: Sequence[tuple[Any, ...]], layer: LayerSpec | None = None) -> Any:
        if layer is not None and layer.call_input_names:  # one shape per input, as the call takes them
            return _plain_shape(obj.compute_output_shape(*input_shapes))
        arg = list(input_shapes) if len(input_shapes) > 1 else input_shapes[0]
        shape = obj.compute_output_shape(arg)
        return _plain_shape(shape)

    @staticmethod
    def call(obj: Any, layer: LayerSpec, tensors: Sequence[Any], **kwargs: Any) -> Any:
        """Call the layer on its inputs as the spec says they are passed: one list, or (``call.input_names``)
        the first positionally and the others by name."""
        if layer.call_input_names:
            named = dict(zip(layer.call_input_names[1:], tensors[1:]))
            return obj(tensors[0], **named, **kwargs)
        return obj(list(tensors) if len(tensors) > 1 else tensors[0], **kwargs)

    def build(self, obj: Any, layer: LayerSpec, shapes: Sequence[tuple[Any, ...]], dtype: str) -> None:
        """Build the layer for ``shapes``; a layer whose inputs are passed by name builds on a first call
        (tf_keras's MultiHeadAttention has no build taking its inputs' shapes), on zeros."""
        if layer.call_input_names:
            zeros = [self.tf.zeros([1 if d is None else d for d in s], dtype=compute_dtype(dtype)) for s in shapes]
            self.call(obj, layer, zeros, training=False)
            return
        obj.build(list(shapes) if len(shapes) > 1 else shapes[0])

    def run(
        self,
        layer: LayerSpec,
        config: Mapping[str, Any],
        inputs: Sequence[np.ndarray],
        dtype: str,
        training: bool,
        weights: Sequence[np.ndarray] | None = None,
        weight_seed: int = 0,
        cotangent_seed: int = 1,
        input_mask: np.ndarray | list[np.ndarray | None] | None = None,
        probes: Sequence[np.ndarray] = (),
        step: bool = False,
        unknown_shapes: Sequence[tuple[Any, ...]] | None = None,
        call_arguments: Mapping[str, Any] | None = None,
    ) -> OracleRun:
        """Build, (re)set weights, run forward and backward once.  Weights are drawn from
        ``weight_seed`` unless given, so every weight (biases too) is exercised.  Then, with ``step``,
        one SGD step (constraints applied as the oracle's optimizer applies them), and a call on each
        of ``probes`` (inputs the built layer may refuse).

        Where the spec says the oracle cannot run a layout (TensorFlow has no channels_first
        conv/pooling kernels on CPU) and names the equivalent it can run, the oracle runs that on
        transposed data and everything is reported back in the requested layout.  Keras's weight
        layout does not depend on data_format, so the weights are the same.
        """
        tf = self.tf
        result = OracleRun()
        layout = layer.behaviour.oracle_layout
        swap = layout is not None and layout.transposes(config)
        requested = dict(config)
        activation = activity = None
        if swap:
            config = {**config, layout.param: "channels_last"}
            inputs = [_channels_last(x) for x in inputs]
            probes = [_channels_last(x) for x in probes]
            unknown_shapes = None if unknown_shapes is None else [_shape_last(u) for u in unknown_shapes]
            # An axis-dependent activation (softmax) must see the requested layout: run the layer
            # linear and apply the activation after transposing back ...
            act_param = layout.after_transpose.get("activation")
            if act_param is not None and config.get(act_param) not in (None, "linear"):
                activation, config = config[act_param], {**config, act_param: None}
                # ... and the activity penalty, which Keras takes on the activated output.
                reg_param = layout.after_transpose.get("activity_regularizer")
                if reg_param is not None:
                    activity, config = config.get(reg_param), {**config, reg_param: None}
        try:
            obj = self.construct(layer, config, dtype)
            result.config = obj.get_config()
            if not inputs:  # an input layer: it only declares its output
                result.output_shape = _plain_shape(obj.output.shape) if hasattr(obj, "output") else None
                return result
            shapes = [(None,) + tuple(x.shape[1:]) for x in inputs]
            # Integer inputs (indices) are constants: not differentiable, so not gradient sources.
            variables = [tf.Variable(x) if np.issubdtype(x.dtype, np.floating) else tf.constant(x) for x in inputs]
            differentiable = [v for v in variables if isinstance(v, tf.Variable)]
            self.build(obj, layer, shapes, dtype)
            if weights is None:
                rng = np.random.default_rng(weight_seed)
                weights = [_random_like(rng, w) for w in obj.get_weights()]
            obj.set_weights(list(weights))
            result.weights = [_numpy(w) for w in obj.get_weights()]
            result.weight_names = [self.weight_name(v) for v in obj.weights]
            trainable_ids = {id(v) for v in obj.trainable_weights}
            result.trainable = [id(v) in trainable_ids for v in obj.weights]
            try:
                result.output_shape = self.output_shape(obj, shapes, layer)
            except Exception as exc:  # noqa: BLE001 - some layers cannot infer statically
                result.output_shape = f"error: {type(exc).__name__}: {exc}"
            if unknown_shapes is not None:
                try:
                    result.output_shape_unknown = self.output_shape(obj, list(unknown_shapes), layer)
                except Exception as exc:  # noqa: BLE001 - the oracle's answer, for the shapes check
                    result.output_shape_unknown = f"error: {type(exc).__name__}: {exc}"[:300]
            with tf.GradientTape() as tape:
                # Plain tensors, not the variables: layers may return their input (Identity) and
                # Keras reads .ndim/_keras_mask off it; the tape still sees the variables.
                tensors = [tf.identity(v) for v in variables]
                masks = input_mask if isinstance(input_mask, list) else [input_mask]
                for tensor, mask in zip(tensors, masks):
                    if mask is not None:
                        tensor._keras_mask = tf.convert_to_tensor(mask)
                out = self.call(obj, layer, tensors, training=training, **(call_arguments or {}))
                outs = out if isinstance(out, (list, tuple)) else [out]
                if activation is not None:
                    outs = [self._activate_channels_first(activation, o) for o in outs]
                rng = np.random.default_rng(cotangent_seed)
                # The cotangent is drawn in the requested layout, as the implementation draws it.
                in_last = swap and activation is None  # outputs still in the oracle's layout
                cots = [rng.standard_normal(_shape_first(tuple(o.shape)) if in_last else tuple(o.shape)) for o in outs]
                cots = [_channels_last(c) for c in cots] if in_last else cots
                loss = tf.add_n([tf.reduce_sum(tf.cast(o, tf.float64) * c) for o, c in zip(outs, cots)])
            sources = differentiable + list(obj.trainable_weights)
            result.outputs = [_numpy(o) for o in outs]
            mask = getattr(outs[0], "_keras_mask", None)
            result.output_mask = None if mask is None else _numpy(mask)
            try:
                grads = tape.gradient(loss, sources)
            except Exception as exc:  # noqa: BLE001 - e.g. LookupError: no gradient registered for an op
                result.grad_error = f"{type(exc).__name__}: {exc}"
            else:
                n = len(differentiable)
                missing = [i for i, g in enumerate(grads[:n]) if g is None]
                if missing:  # every layer's output depends on its inputs: None is a gradient TF lacks
                    result.grad_error = f"TensorFlow gives no gradient (None) w.r.t. input(s) {missing}"
                result.grad_inputs = [_grad_array(g, t) for g, t in zip(grads[:n], differentiable)]
                result.grad_weights = [_grad_array(g, v) for g, v in zip(grads[n:], obj.trainable_weights)]
            result.losses = [float(_numpy(v)) for v in obj.losses]
            if activity is not None:
                penalty = self.module.regularizers.get(activity)
                result.losses = [float(_numpy(penalty(o))) / int(o.shape[0]) for o in outs] + result.losses
            result.updated_weights = [_numpy(w) for w in obj.get_weights()]
            if step and result.grad_error is None and obj.trainable_weights:
                try:
                    self._sgd_step(obj, grads[len(differentiable):])
                except Exception as exc:  # noqa: BLE001 - e.g. a constraint that fails on this dtype
                    result.step_error = f"{type(exc).__name__}: {exc}"[:500]
                else:
                    result.stepped_weights = [_numpy(w) for w in obj.get_weights()]
                obj.set_weights(result.updated_weights)
            for probe in probes:
                try:
                    out = obj(tf.convert_to_tensor(probe), training=False, **(call_arguments or {}))
                except Exception as exc:  # noqa: BLE001 - refusing the probe is the answer
                    result.probe_errors.append(f"{type(exc).__name__}: {exc}"[:500])
                    result.probe_outputs.append(np.zeros(0))
                else:
                    out = out[0] if isinstance(out, (list, tuple)) else out
                    if activation is not None:
                        out = self._activate_channels_first(activation, out)
                    result.probe_errors.append(None)
                    value = _numpy(out)
                    result.probe_outputs.append(_channels_first(value) if swap and activation is None else value)
            if swap:
                if activation is None:
                    result.outputs = [_channels_first(o) for o in result.outputs]
                result.grad_inputs = [_channels_first(g) for g in result.grad_inputs]
                if isinstance(result.output_shape, tuple):
                    result.output_shape = _shape_first(result.output_shape)
                if isinstance(result.output_shape_unknown, tuple):
                    result.output_shape_unknown = _shape_first(result.output_shape_unknown)
                result.config = {**result.config, layout.param: requested[layout.param]}
                if activation is not None:
                    result.config = self.construct(layer, requested, dtype).get_config()
        except Exception as exc:  # noqa: BLE001 - the oracle's own error is a result here
            result.error = f"{type(exc).__name__}: {exc}"
        return result

    def _sgd_step(self, obj: Any, grads: Sequence[Any]) -> None:
        """One plain SGD step as both oracles' ``SGD`` (no momentum) takes it: the learning rate cast to
        the variable's dtype, ``assign_sub``, then each variable's own constraint, as their optimizers
        apply constraints after the update.  (Done by hand: building an optimizer per case cost four
        times the forward and backward passes.)"""
        tf = self.tf
        for variable, grad in zip(obj.trainable_weights, grads):
            if grad is not None:
                variable.assign_sub(tf.cast(TRAINING_STEP_LEARNING_RATE, variable.dtype) * tf.cast(grad, variable.dtype))
        for variable in obj.trainable_weights:
            if getattr(variable, "constraint", None) is not None:
                variable.assign(variable.constraint(variable))

    def _activate_channels_first(self, activation: Any, channels_last: Any) -> Any:
        """The oracle's ``activation`` applied to a channels_last output moved to channels_first."""
        rank = channels_last.shape.rank
        return self.module.activations.get(activation)(self.tf.transpose(channels_last, [0, rank - 1, *range(1, rank - 1)]))

    def initial_weights(self, layer: LayerSpec, config: Mapping[str, Any], input_shapes: Sequence[tuple[Any, ...]],
                        dtype: str, min_elements: int, max_draws: int) -> list[dict[str, Any]]:
        """Per weight of a freshly built layer: its initial value, whether its initializer is
        deterministic, and the moments of at least ``min_elements`` values drawn by fresh copies of
        the layer's own initializer on the weight's shape (a fresh copy: an unseeded Keras
        initializer returns the same values on every call of one instance)."""
        from .stats import Moments

        layout = layer.behaviour.oracle_layout
        shapes = [tuple(s) for s in input_shapes]
        if layout is not None and layout.transposes(config):  # the weights' layout is the same
            config = {**config, layout.param: "channels_last"}
            shapes = [_shape_last(s) for s in shapes]
        obj = self.construct(layer, config, dtype)
        self.build(obj, layer, shapes, dtype)
        symbolic = shapes if len(shapes) > 1 else shapes[0]
        out = []
        for variable, spec_weight in zip(obj.weights, layer.built_weights(config, symbolic)):
            initial = _numpy(variable)
            entry: dict[str, Any] = {"initial": initial, "moments": None, "deterministic": True}
            init = getattr(obj, spec_weight.initializer, None) if spec_weight.initializer else None
            if init is not None and hasattr(init, "get_config") and initial.size:
                draws = [initial]
                for _ in range(min(max_draws, -(-min_elements // initial.size)) - 1):
                    draws.append(_numpy(type(init).from_config(init.get_config())(tuple(initial.shape),
                                                                                  dtype=variable.dtype)))
                entry["deterministic"] = all(np.array_equal(d, initial) for d in draws)
                entry["moments"] = Moments.of(np.stack(draws)).to_json()
            out.append(entry)
        return out

    def sample(self, layer: LayerSpec, config: Mapping[str, Any], x: np.ndarray, dtype: str, training: bool) -> np.ndarray:
        """One forward call on ``x``, for statistical checks of stochastic layers."""
        obj = self.construct(layer, config, dtype)
        return _numpy(obj(self.to_tensor(x), training=training))

    def rejects(self, layer: LayerSpec, config: Mapping[str, Any], inputs: Sequence[np.ndarray]) -> str | None:
        """The error the oracle raises for this config (at construction, build or call), or None."""
        layout = layer.behaviour.oracle_layout
        if layout is not None and layout.transposes(config):
            config = {**config, layout.param: "channels_last"}
            inputs = [_channels_last(x) for x in inputs]
        try:
            obj = self.construct(layer, config)
            if inputs:
                self.call(obj, layer, [self.to_tensor(x) for x in inputs])
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc}"
        return None


def _numpy(value: Any) -> np.ndarray:
    """A plain numpy array; bfloat16 (an ml_dtypes type that torch and npz files cannot read) is
    widened to float32, which holds every bfloat16 value exactly."""
    # (np.array() of a 0-d bfloat16 EagerTensor fails; .numpy() does not.)
    array = np.array(value.numpy() if hasattr(value, "numpy") else value)
    return array.astype(np.float32) if array.dtype.name == "bfloat16" else array


def _channels_last(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)) if a.ndim > 2 else a


def _channels_first(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, -1, 1)) if a.ndim > 2 else a


def _shape_last(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    return (shape[0], *shape[2:], shape[1]) if len(shape) > 2 else tuple(shape)


def _shape_first(shape: tuple[Any, ...]) -> tuple[Any, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) > 2 else shape


def _random_like(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, size=w.shape).astype(w.dtype)


def _grad_array(grad: Any, like: Any) -> np.ndarray:
    if grad is None:
        return _numpy(np.zeros(tuple(like.shape), dtype=like.dtype.as_numpy_dtype))
    if hasattr(grad, "indices") and hasattr(grad, "dense_shape"):  # tf.IndexedSlices, a gather's gradient
        import tensorflow as tf

        grad = tf.convert_to_tensor(grad)
    return _numpy(grad)


def _plain_shape(shape: Any) -> Any:
    if hasattr(shape, "as_list"):
        return tuple(shape.as_list())
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)) or hasattr(
        shape[0] if isinstance(shape, (list, tuple)) and shape else None, "as_list"
    ):
        return [_plain_shape(s) for s in shape]
    return tuple(None if d is None else int(d) for d in shape)


@cache
def get(name: str) -> KerasOnTensorFlow:
    """The adapter for ``keras3`` or ``tf_keras``; raises OracleUnavailable when not installed."""
    if name not in ORACLES:
        raise ValueError(f"unknown oracle {name!r}; expected one of {ORACLES}")
    return KerasOnTensorFlow(name)
