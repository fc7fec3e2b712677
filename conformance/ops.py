"""The ops harness: keraspec.impl.backend (or any module with K.* names) against tf_keras.backend
and keras.ops, driven by the ops spec (``spec/ops/*.yaml``).

Nothing here knows a function by name: what is drawn (shapes that broadcast, axes None / negative /
tuples / pairs, dtypes, ties, indices, edge values), how each oracle is called (keras.ops argument
mapping), what the output shape and dtype must be, which arguments have gradients, the numerics
class for the tolerance and the oracle's limits all come from the spec.

Checks (one test function each, ``conformance/tests/test_ops.py``):

``op_forward``    outputs of ours and the oracle's, under the tolerance policy; output shapes and
                  dtypes against the spec's rules (dtypes against tf_keras's too: the seeds' API);
                  inputs with edge values in a quarter of the examples where the spec allows them.
``op_gradients``  gradients of sum(output * cotangent) with respect to the spec's ``gradients``
                  arguments: torch autograd vs tf.GradientTape (tf_keras only; normal values).
``op_stochastic`` a stochastic function's draws: the same distribution as the oracle's (z
                  statistics of mean, variance, mean |x|; stats.Z_BOUND) and seeded reproducibility.

Results are the suite's JSON-lines records (``CaseRecord``) with the function's name in the
``layer`` field and ``ops/<group>`` as the family; known mismatches of ops live in
``ops_known_mismatches.yaml`` beside this module (the registry format, ``layer`` = function name).
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import reject
from hypothesis import strategies as st

from keraspec.spec import ops as ops_spec
from keraspec.spec.expr import compile_expr

from . import registry
from .catalogue import OP_CHECKS
from .harness import ComparisonFailure, Measurement
from .stats import Z_BOUND, Moments, compare_moments
from .strategies import EDGE_FRACTION, edge_value_table
from .tolerance import EPS, compare, tolerance

#: The module under test (``KERASPEC_OPS_IMPL``): any module with the K.* names.
DEFAULT_OPS_IMPL = "keraspec.impl.backend"
OPS_IMPL_ENV = "KERASPEC_OPS_IMPL"
OPS_REGISTRY_PATH = Path(str(resources.files("keraspec.conformance"))) / "ops_known_mismatches.yaml"
#: Sizes drawn for tensor axes: small (the tensors are tiny), never 0 (TF refuses some empty reductions).
AXIS_SIZE = (1, 4)
#: How many sizes the spec's ``sizes`` name holds (for shapes written as ``sizes[:n]``).
SIZES_DRAWN = 8
#: How often a case is redrawn when an oracle limit or a keras.ops mapping's ``when`` rules it out.
MAX_REDRAWS = 20
#: The share of forward examples fed edge values (where the spec allows them).
EDGE_CASE_WEIGHT = ("normal", "normal", "normal", "edge")
#: The value kinds of a tensor that edge values may be planted into (others are structured:
#: probabilities that sum to 1, indices, booleans).
EDGE_TARGET_VALUES = ("normal", "ties", "positive", "unit")


@dataclass
class OpCase:
    """One drawn call: the arguments as numpy arrays (a list of them for a tensor list) or Python
    values, the names the spec's rules see (``env``: tensor shapes, scalars, lets), the float
    dtype, the input values (``normal`` or ``edge``) and the seed of the cotangents."""

    name: str
    dtype: str
    args: dict[str, Any]
    env: dict[str, Any]
    values: str
    seed: int
    tensor_dtypes: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What the report shows of the case (shapes, not arrays)."""
        shown: dict[str, Any] = {}
        for key, value in self.args.items():
            if isinstance(value, np.ndarray):
                shown[key] = f"array{value.shape} {value.dtype}"
            elif isinstance(value, list) and value and isinstance(value[0], np.ndarray):
                shown[key] = [f"array{v.shape} {v.dtype}" for v in value]
            else:
                shown[key] = value
        return {"function": self.name, "dtype": self.dtype, "values": self.values, "seed": self.seed, "args": shown}

    # The registry's `when` predicates read these (registry.Entry.matches_case).
    @property
    def config(self) -> dict[str, Any]:
        return {k: v for k, v in self.args.items() if k not in self.tensor_dtypes}

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(self.env[k]) for k in self.tensor_dtypes if isinstance(self.env.get(k), list)
                and all(isinstance(d, int) for d in self.env[k])]


# -- drawing ---------------------------------------------------------------------------------------

def _draw_scalar(draw: Any, d: Mapping[str, Any], env: Mapping[str, Any]) -> Any:
    if "value" in d:
        return compile_expr(d["value"])(env)
    if "choices" in d:
        return draw(st.sampled_from(list(d["choices"])))
    if "min" in d:
        return draw(st.integers(int(d["min"]), int(d["max"])))
    raise ops_spec.OpsSpecError(f"a draw needs value, choices or min/max, got {dict(d)}")


def _rank(draw: Any, rank: Any, env: Mapping[str, Any]) -> int:
    if isinstance(rank, int):
        return rank
    if isinstance(rank, str):
        return int(compile_expr(rank)(env))
    return draw(st.integers(rank.get("min", 0), rank.get("max", 4)))


def _sizes(draw: Any, rank: int) -> list[int]:
    return [draw(st.integers(*AXIS_SIZE)) for _ in range(rank)]


def _tensor_shape(draw: Any, d: Mapping[str, Any], env: dict[str, Any], spec: ops_spec.OpSpec | None = None,
                  name: str | None = None) -> list[int]:
    if "shape" in d:
        shape = list(compile_expr(d["shape"])(env))
    elif "like" in d:
        shape = list(env[d["like"]])
    elif "broadcast" in d:
        other = list(env[d["broadcast"]])
        dropped = draw(st.integers(0, len(other)))
        shape = [1 if draw(st.booleans()) else size for size in other[dropped:]]
    else:
        shape = _sizes(draw, _rank(draw, d.get("rank", {"min": 0, "max": 4}), env))
    if d.get("set") and spec is not None and name is not None:
        # The rules of `set` may name this tensor's own shape, and lets that depend on it.
        env.update(spec.env({**env, name: list(shape)}, partial=True))
    for axis_rule, size_rule in d.get("set", {}).items():
        axis = int(compile_expr(axis_rule)(env))
        if -len(shape) <= axis < len(shape):
            shape[axis] = int(compile_expr(size_rule)(env))
    return shape


def _draw_axis(draw: Any, d: Mapping[str, Any], env: Mapping[str, Any]) -> Any:
    of = d.get("of")
    if "ranks" in d:
        ranks = [int(r) for r in compile_expr(d["ranks"])(env)]
    else:
        ranks = [len(env[name]) for name in ([of] if isinstance(of, str) else of)]
    exclude = set(d.get("exclude", []))
    valid = [[a for a in range(r) if a not in exclude] for r in ranks]
    forms = [f for f in d.get("forms", ["none", "int", "tuple"])
             if f == "none" or (all(valid) and (f != "pair" or len(ranks) == 2))]
    if not forms:
        raise ops_spec.OpsSpecError(f"no axis can be drawn for ranks {ranks} (forms {d.get('forms')})")
    form = draw(st.sampled_from(forms))

    def signed(axis: int, rank: int) -> int:
        return axis - rank if draw(st.booleans()) else axis

    if form == "none":
        return None
    if form == "int":
        common = sorted(set.intersection(*(set(v) for v in valid)))
        axis = draw(st.sampled_from(common)) if len(ranks) > 1 else draw(st.sampled_from(valid[0]))
        return signed(axis, ranks[0]) if len(set(ranks)) == 1 else axis
    if form == "pair":
        return [signed(draw(st.sampled_from(v)), r) for v, r in zip(valid, ranks)]
    chosen = draw(st.lists(st.sampled_from(valid[0]), min_size=1, max_size=len(valid[0]), unique=True))
    return tuple(signed(a, ranks[0]) for a in chosen)


def _draw_arg(draw: Any, arg: ops_spec.OpArg, env: dict[str, Any],
              spec: ops_spec.OpSpec) -> tuple[Any, dict[str, Any] | None]:
    """The argument's value (a shape plan for tensors) and, for tensors, how to fill it."""
    d = arg.draw
    if arg.kind == "tensor":
        return _tensor_shape(draw, d, env, spec, arg.name), dict(d)
    if arg.kind == "tensor_list":
        count = draw(st.integers(d.get("count", {}).get("min", 1), d.get("count", {}).get("max", 3)))
        base = _tensor_shape(draw, {k: v for k, v in d.items() if k in ("rank", "shape", "like")}, env)
        shapes = []
        for _ in range(count):
            shape = list(base)
            if "vary" in d:
                shape[int(compile_expr(d["vary"])(env))] = draw(st.integers(*AXIS_SIZE))
            shapes.append(shape)
        return shapes, dict(d)
    if arg.kind == "axis":
        return _draw_axis(draw, d, env), None
    if "permutation" in d:
        return list(draw(st.permutations(list(range(len(env[d["permutation"]])))))), None
    return _draw_scalar(draw, d, env), None


def _fill(shape: list[int], d: Mapping[str, Any], dtype: str, env: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    kind = d.get("values", "normal")
    size = tuple(shape)
    if kind == "indices":
        low, high = int(compile_expr(d.get("low", 0))(env)), int(compile_expr(d["high"])(env))
        return rng.integers(low, max(high, low + 1), size).astype(d.get("dtype", "int32"))
    if kind == "bool":
        return np.asarray(rng.random(size) < 0.5)
    if kind == "ties":
        values = rng.integers(-2, 3, size).astype(np.float64)
    elif kind == "positive":
        values = np.abs(rng.standard_normal(size)) + 0.5
    elif kind == "unit":
        values = rng.uniform(0.02, 0.98, size)
    elif kind == "simplex":
        values = rng.uniform(0.05, 1.0, size)
        axis = int(compile_expr(d.get("axis", -1))(env)) if size else 0
        values = values / values.sum(axis=axis, keepdims=True) if size else np.ones(size)
    else:
        values = rng.standard_normal(size)
    target = d.get("dtype", "float")
    return np.asarray(values, dtype=dtype if target == "float" else target)


def _as_tuples(value: Any) -> Any:
    """YAML has lists only; the functions take tuples for shapes, strides and pairs (tf_keras's
    pool2d concatenates its strides to a tuple), and both sides accept a tuple wherever a list goes."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


@st.composite
def op_cases(draw: Any, spec: ops_spec.OpSpec, dtype: str, oracle: str, check: str) -> OpCase:
    """A call of ``spec``'s function in ``dtype`` that ``oracle`` can run (redrawn past its limits
    and, for keras.ops, past the cases its argument mapping does not cover)."""
    for _ in range(MAX_REDRAWS):
        case = _draw_case(draw, spec, dtype, check)
        if comparable(spec, case, oracle):
            return case
    reject()


def _draw_case(draw: Any, spec: ops_spec.OpSpec, dtype: str, check: str) -> OpCase:
    edge_allowed = check == "op_forward" and bool(spec.edge_values) and dtype in EPS
    values_kind = draw(st.sampled_from(EDGE_CASE_WEIGHT)) if edge_allowed else "normal"
    seed = draw(st.integers(0, 2**31 - 1))
    env: dict[str, Any] = {"sizes": [draw(st.integers(*AXIS_SIZE)) for _ in range(SIZES_DRAWN)], "dtype": dtype}
    for name, d in spec.aux.items():
        env[name] = _draw_scalar(draw, d, env)
    args: dict[str, Any] = {}
    plans: dict[str, dict[str, Any]] = {}
    for arg in spec.args.values():
        if not arg.draw:
            continue  # left to its default
        value, plan = _draw_arg(draw, arg, env, spec)
        env[arg.name] = value
        if plan is not None:
            plans[arg.name] = plan
        else:
            args[arg.name] = _as_tuples(value)
        env = spec.env(env, partial=True)
    rng = np.random.default_rng(seed)
    tensor_dtypes: dict[str, str] = {}
    for name, plan in plans.items():
        shapes = env[name] if spec.args[name].kind == "tensor_list" else [env[name]]
        arrays = [_fill(shape, plan, dtype, env, rng) for shape in shapes]
        if values_kind == "edge" and plan.get("values", "normal") in EDGE_TARGET_VALUES and plan.get("dtype", "float") == "float":
            table = edge_value_table(dtype, spec.reduction_length(env))
            for a in arrays:
                flat = a.reshape(-1)
                if not flat.size:
                    continue
                n = min(flat.size, max(len(spec.edge_values), int(flat.size * EDGE_FRACTION)))
                where = rng.choice(flat.size, n, replace=False)
                flat[where] = [table[spec.edge_values[i % len(spec.edge_values)]] for i in range(n)]
        args[name] = arrays if spec.args[name].kind == "tensor_list" else arrays[0]
        tensor_dtypes[name] = str(arrays[0].dtype) if arrays else dtype
    return OpCase(spec.name, dtype, args, spec.env(env, partial=True), values_kind, seed, tensor_dtypes)


def comparable(spec: ops_spec.OpSpec, case: OpCase, oracle: str) -> bool:
    """Whether ``oracle`` can run the case: no oracle limit applies and, for keras.ops, the
    argument mapping's ``when`` holds."""
    for limit in spec.oracle_limits:
        if oracle in limit.oracles and (limit.dtypes is None or case.dtype in limit.dtypes) and limit.when(case.env):
            return False
    o = spec.oracles[oracle]
    return o.when is None or bool(o.when(case.env))


# -- running ---------------------------------------------------------------------------------------

def _import(path: str) -> Any:
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def ops_impl() -> Any:
    """The module under test."""
    return importlib.import_module(os.environ.get(OPS_IMPL_ENV, DEFAULT_OPS_IMPL))


def _to_torch(value: Any, device: str, grad: bool) -> Any:
    import torch

    if isinstance(value, np.ndarray):
        t = torch.from_numpy(value.copy()).to(device)
        return t.requires_grad_(True) if grad and t.is_floating_point() else t
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [_to_torch(v, device, grad) for v in value]
    return value


def _to_tf(value: Any) -> Any:
    import tensorflow as tf

    if isinstance(value, np.ndarray):
        return tf.constant(value)
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [tf.constant(v) for v in value]
    return value


def _flat(result: Any) -> list[Any]:
    return [x for item in result for x in _flat(item)] if isinstance(result, (tuple, list)) else [result]


def _as_array(value: Any) -> tuple[np.ndarray, str | None]:
    """A result as a numpy array and, for a tensor, its dtype name (None for Python and numpy values)."""
    import torch

    if type(value).__name__ == "IndexedSlices":  # tf.gather's gradient: sparse rows of a dense tensor
        import tensorflow as tf

        value = tf.convert_to_tensor(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy(), str(value.dtype).removeprefix("torch.")
    if hasattr(value, "numpy") and hasattr(value, "dtype") and hasattr(value.dtype, "name"):
        return np.asarray(value.numpy()), value.dtype.name
    return np.asarray(value), None


def _tensors(args: Mapping[str, Any], names: tuple[str, ...]) -> list[Any]:
    out = []
    for name in names:
        value = args[name]
        out.extend(value if isinstance(value, list) else [value])
    return out


#: Float dtypes from the widest to the narrowest (the tolerance follows the narrowest involved).
_WIDEST_FIRST = ("float64", "float32", "bfloat16", "float16")


def _narrowest(*dtypes: str) -> str:
    return max((d for d in dtypes if d in _WIDEST_FIRST), key=_WIDEST_FIRST.index)


def _compare_outputs(ours: list[Any], theirs: list[Any], spec: ops_spec.OpSpec, case: OpCase, device: str,
                     m: Measurement, what: str, check_dtypes: bool, gradient: bool = False,
                     precision: str | None = None, scale: float = 1.0) -> None:
    """Compare each pair under the tolerance policy, in the narrowest precision involved: the
    compared dtype, or ``precision`` (a gradient is only as precise as the outputs it comes from:
    a float64 input resized in float32 has a float32-accurate gradient)."""
    if len(ours) != len(theirs):
        raise AssertionError(f"{what}: {len(ours)} outputs, the oracle gives {len(theirs)}")
    length = spec.reduction_length(case.env, gradient)
    op_class = spec.gradient_op_class if gradient else spec.op_class
    for i, (a, e) in enumerate(zip(ours, theirs)):
        actual, actual_dtype = _as_array(a)
        expected, expected_dtype = _as_array(e)
        label = f"{what} {i}" if len(ours) > 1 else what
        if check_dtypes and actual_dtype is not None and expected_dtype is not None and actual_dtype != expected_dtype:
            raise AssertionError(f"{label}: dtype {actual_dtype}, the oracle gives {expected_dtype}")
        if actual.shape != expected.shape:
            raise AssertionError(f"{label}: shape {actual.shape}, the oracle gives {expected.shape}")
        if actual.dtype.kind == "f" and expected.dtype.kind == "f":
            compared = _narrowest(str(actual.dtype) if str(actual.dtype) in EPS else case.dtype, precision or "float64")
            tol = tolerance(compared, device, op_class, length, gradient=gradient, scale=scale)
            m.add(compare(actual, expected, tol, label))
        elif not np.array_equal(actual, expected):
            raise AssertionError(f"{label}: {actual!r} != the oracle's {expected!r}")


def _check_rules(spec: ops_spec.OpSpec, case: OpCase, ours: list[Any]) -> None:
    """Our output shapes and dtypes against the spec's rules."""
    if spec.output_shape_rules and all(_is_tensor_like(o) for o in ours):
        want = spec.output_shape(case.env)
        want_list = want if isinstance(want, list) else [want]
        got = [tuple(_as_array(o)[0].shape) for o in ours]
        if len(want_list) == len(got) and [tuple(w) for w in want_list] != got:
            raise AssertionError(f"output shapes {got} break the spec's rule(s) "
                                 f"{[r.source for r in spec.output_shape_rules]}: {want_list}")
    if spec.output_dtype_rules:
        want_dtypes = spec.output_dtypes(case.env, case.tensor_dtypes)
        for i, (o, dt) in enumerate(zip(ours, want_dtypes)):
            got_dtype = _as_array(o)[1]
            if got_dtype is not None and got_dtype != dt:
                raise AssertionError(f"output {i}: dtype {got_dtype} breaks the spec's rule {spec.output_dtype_rules[i]!r} ({dt})")


def _is_tensor_like(value: Any) -> bool:
    return hasattr(value, "shape")


#: The largest power of two a float64 holds is 2 ** 1023.
MAX_FLOAT64_EXPONENT = 1023
#: The op classes whose results add up many terms, so that huge terms can cancel to a small result.
_SUMMING_CLASSES = ("reduction", "recurrence")


def terms_scale(spec: ops_spec.OpSpec, case: OpCase) -> float:
    """The size of the terms a result is made of, for the tolerance policy's ``scale``: 1 for
    normal inputs (unit normal draws); for edge inputs of a summing function, the power of two
    above the largest finite input, since a sum of +-max-sized terms that cancels is only
    accurate to eps times those terms (the order of summation is no implementation's contract)."""
    if case.values != "edge" or spec.op_class not in _SUMMING_CLASSES:
        return 1.0
    finite = [np.abs(a[np.isfinite(a)]).max(initial=0.0) for a in _tensors(case.args, tuple(case.tensor_dtypes))
              if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    largest = float(max(finite, default=0.0))
    # The exponent stays finite for float64's largest values (2 ** 1024 overflows a float).
    return 2.0 ** min(math.ceil(math.log2(largest)), MAX_FLOAT64_EXPONENT) if largest > 1.0 else 1.0


def run_forward(spec: ops_spec.OpSpec, case: OpCase, oracle: str, device: str) -> Measurement:
    m = Measurement()
    ours = _flat(getattr(ops_impl(), spec.name)(**{k: _to_torch(v, device, False) for k, v in case.args.items()}))
    _check_rules(spec, case, ours)
    o = spec.oracles[oracle]
    tf_args = {k: _to_tf(v) for k, v in case.args.items()}
    if o.args is None:
        theirs = _import(o.function)(**tf_args)
    else:
        env = {**case.env, **tf_args}
        theirs = _import(o.function)(**{k: rule(env) for k, rule in o.args.items()})
    _compare_outputs(ours, _flat(theirs), spec, case, device, m, "output", check_dtypes=oracle == "tf_keras",
                     scale=terms_scale(spec, case))
    return m


def _cotangents(outputs: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [rng.standard_normal(o.shape).astype(o.dtype) for o in outputs]


def run_gradients(spec: ops_spec.OpSpec, case: OpCase, oracle: str, device: str) -> Measurement:
    import tensorflow as tf
    import torch

    m = Measurement()
    torch_args = {k: _to_torch(v, device, k in spec.gradients) for k, v in case.args.items()}
    outputs = _flat(getattr(ops_impl(), spec.name)(**torch_args))
    picked = [i for i, o in enumerate(outputs) if o.is_floating_point()
              and (spec.gradient_outputs is None or i in spec.gradient_outputs)]
    cot = _cotangents([outputs[i].detach().cpu().numpy() for i in picked], case.seed)
    inputs = _tensors(torch_args, spec.gradients)
    loss = sum((outputs[i] * torch.from_numpy(c).to(device)).sum() for i, c in zip(picked, cot))
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        ours = [g if g is not None else torch.zeros_like(x)
                for g, x in zip(torch.autograd.grad(loss, inputs, allow_unused=True), inputs)]
    else:
        ours = [torch.zeros_like(x) for x in inputs]
    tf_args = {k: _to_tf(v) for k, v in case.args.items()}
    watched = _tensors(tf_args, spec.gradients)
    with tf.GradientTape() as tape:
        for t in watched:
            tape.watch(t)
        theirs_out = _flat(_import(spec.oracles[oracle].function)(**tf_args))
        tf_loss = tf.add_n([tf.reduce_sum(theirs_out[i] * c) for i, c in zip(picked, cot)]) if picked else tf.constant(0.0)
    theirs = tape.gradient(tf_loss, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    precision = _narrowest("float64", *(str(outputs[i].dtype).removeprefix("torch.") for i in picked))
    _compare_outputs(ours, theirs, spec, case, device, m, "gradient", check_dtypes=False, gradient=True,
                     precision=precision)
    return m


def run_stochastic(spec: ops_spec.OpSpec, case: OpCase, oracle: str, device: str) -> Measurement:
    """Ours and the oracle's draws have the same distribution (two-sample z statistics of the mean,
    the variance and the mean |x|, each |z| <= stats.Z_BOUND), and ours are reproducible: the same
    seed gives the same tensor, another seed another."""
    m = Measurement()
    fn = getattr(ops_impl(), spec.name)
    ours = _flat(fn(**{k: _to_torch(v, device, False) for k, v in case.args.items()}))
    _check_rules(spec, case, ours)
    theirs = _flat(_import(spec.oracles[oracle].function)(**{k: _to_tf(v) for k, v in case.args.items()}))
    for a, e in zip(ours, theirs):
        actual, actual_dtype = _as_array(a)
        expected, expected_dtype = _as_array(e)
        if actual.shape != expected.shape or actual_dtype != expected_dtype:
            raise AssertionError(f"draws of shape {actual.shape} {actual_dtype}, the oracle's {expected.shape} {expected_dtype}")
        z = compare_moments(Moments.of(actual), Moments.of(expected))
        m.statistics += len(z)
        worst = max(z, key=lambda k: abs(z[k]))
        if abs(z[worst]) > Z_BOUND:
            raise AssertionError(f"draws differ from the oracle's in {worst}: z = {z[worst]:.2f} (|z| <= {Z_BOUND}); "
                                 + ", ".join(f"{k} z={v:.2f}" for k, v in z.items()))
    if spec.seed_arg is not None:
        again = _flat(fn(**{k: _to_torch(v, device, False) for k, v in case.args.items()}))
        if not all(np.array_equal(_as_array(a)[0], _as_array(b)[0]) for a, b in zip(ours, again)):
            raise AssertionError(f"the same {spec.seed_arg}={case.args[spec.seed_arg]} gave different draws")
        other = dict(case.args, **{spec.seed_arg: case.args[spec.seed_arg] + 1})
        moved = _flat(fn(**{k: _to_torch(v, device, False) for k, v in other.items()}))
        if all(np.array_equal(_as_array(a)[0], _as_array(b)[0]) for a, b in zip(ours, moved)):
            raise AssertionError(f"{spec.seed_arg}={case.args[spec.seed_arg]} and {spec.seed_arg}+1 gave the same draws")
    return m


RUNNERS = {"op_forward": run_forward, "op_gradients": run_gradients, "op_stochastic": run_stochastic}


# -- targets ---------------------------------------------------------------------------------------

def applicable(spec: ops_spec.OpSpec, check: str, oracle: str) -> bool:
    """Whether the spec says ``check`` applies to the function against ``oracle``."""
    if not spec.comparable or oracle not in spec.oracles:
        return False
    if check == "op_stochastic":
        return spec.stochastic
    if spec.stochastic:
        return False  # a draw is compared by its distribution, not element by element
    if check == "op_gradients":
        return oracle == "tf_keras" and bool(spec.gradients)
    return True


def targets(check: str, oracles: list[str], devices: list[str], dtypes: list[str] | None,
            names: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    """(function, oracle, device, dtype) for every applicable case of ``check``."""
    out = []
    for name, spec in ops_spec.load_all().items():
        if names and name not in names:
            continue
        for oracle in oracles:
            if not applicable(spec, check, oracle):
                continue
            for device in devices:
                for dtype in spec.dtypes:
                    if dtypes is None or dtype in dtypes:
                        out.append((name, oracle, device, dtype))
    return out


@dataclass
class _RegistryCache:
    entries: list[registry.Entry] | None = None


_REGISTRY = _RegistryCache()


def known_mismatch(scope: Mapping[str, Any], case: Any) -> registry.Entry | None:
    """The ops registry entry that covers a failing case, if any."""
    if _REGISTRY.entries is None:
        _REGISTRY.entries = registry.load(OPS_REGISTRY_PATH)
    for entry in _REGISTRY.entries:
        if entry.matches_target(scope) and (not isinstance(case, OpCase) or entry.matches_case(
                case.config, case.input_shapes, case.dtype, 0, case.values)):
            return entry
    return None


def run_op_check(request: pytest.FixtureRequest, target: tuple[str, str, str, str], check: str) -> None:
    """Run ``check`` of one (function, oracle, device, dtype) on drawn cases; record the result."""
    from .plugin import run_property  # the plugin's budget, seeding and results records

    name, oracle, device, dtype = target
    spec = ops_spec.lookup(name)
    scope = {"layer": name, "family": f"ops/{spec.group}", "check": check, "oracle": oracle, "device": device,
             "dtype": dtype, "test_id": request.node.nodeid}
    runner = RUNNERS[check]
    try:
        run_property(request, op_cases(spec, dtype, oracle, check), lambda case: runner(spec, case, oracle, device),
                     lambda case: case.describe(), scope)
    except (AssertionError, ComparisonFailure) as exc:
        entry = known_mismatch({**scope, "impl": os.environ.get(OPS_IMPL_ENV, DEFAULT_OPS_IMPL)},
                               getattr(request.node, "keraspec_info", {}).get("example_obj"))
        if entry is None:
            raise
        request.node.keraspec_info["xfail_entry"] = entry.id
        pytest.xfail(f"known mismatch {entry.id} ({entry.category}): {entry.reason} -- {str(exc).splitlines()[0]}")
