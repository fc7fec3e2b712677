"""The ops spec: Keras 2's backend functions (``K.*``), one YAML file per group in ``spec/ops/``.

    >>> from keraspec.spec import ops
    >>> ops.lookup("batch_dot").output_shape({"x": [4, 2, 3], "y": [4, 3, 5], "axes": None})
    (4, 2, 5)

Separate from the layer spec (``spec/model.py``) but built the same way: validated by a JSON Schema
(``spec/ops_schema.json``), loaded with ``yaml.safe_load`` only, rules written in the expression
language of ``spec/expr.py``.  ``keraspec op NAME`` prints one function's spec.

File format -- ``group``, ``doc``, ``functions``; per function:

- ``name`` (tf_keras's), ``seed_name`` where the seed document (004-backend.txt) spells it
  otherwise (Keras 1's ``lesser``, ``deconv2d``; its typo ``truncated_normall``), ``in_seed: false``
  for a tf_keras.backend function the seed does not list.
- ``status``: ``implemented`` (in ``keraspec.impl.backend``), ``planned`` (not yet) or ``removed``
  (graph-era, or gone from modern Keras); the last two need a ``reason``.  ``eager``: the closest
  honest meaning of a graph-era function on eager torch tensors.
- ``signature``, ``doc``; ``args`` in *draw order* (the signature gives the call order): ``name``,
  ``kind`` (tensor, tensor_list, axis, int, float, bool, str, int_tuple, dtype, callable, any),
  ``default`` / ``required``, ``domain``, ``doc``, and ``draw``, how the conformance strategies
  draw it -- tensors: ``rank`` (an int, an expression or ``{min, max}``), ``shape`` (an
  expression), ``like`` / ``broadcast`` (another tensor), ``set`` (axis -> size expressions),
  ``dtype`` (the case's float dtype unless named), ``values`` (normal, ties, positive, unit,
  simplex along ``axis``, indices in [``low``, ``high``), bool); tensor lists: ``count`` and
  ``vary`` (the axis whose size each draws anew); axes: ``of`` (a tensor, or two for a pair) or
  ``ranks`` (an expression), ``forms`` (none, int, tuple, pair; negative values are drawn too),
  ``exclude``; scalars: ``choices``, ``min``/``max``, a computed ``value``, or ``permutation`` of a
  tensor's axes.  ``aux``: helper values drawn first (not arguments); the rules also see
  ``sizes`` (eight drawn axis sizes) and ``dtype`` (the case's dtype).
- ``let``: named helper expressions the rules may use (batch_dot's normalized axes).
- ``returns``: ``shape`` (an expression, or a list for a tuple output) over the arguments -- a
  tensor argument is its shape, an axis argument also gives ``NAME_axes`` (its sorted
  non-negative axes, every axis for None) -- and ``dtype`` (a tensor argument's name means its
  dtype, another argument's name its value, ``floatx`` the default float type).
- ``numerics``: ``class`` and ``length`` for the tolerance policy, ``gradient`` (class and length
  where the gradient's differ: a broadcast or tiled argument's gradient is a sum), and
  ``edge_values`` with the ``reason`` for any left out.
- ``gradients`` (the tensor arguments whose gradients are compared), ``gradient_outputs``,
  ``stochastic``, ``dtypes``.
- ``oracles``: ``tf_keras`` (an import path) and, where Keras 3 has it, ``keras3`` with
  ``function``, ``args`` (keras.ops argument -> expression of ours), ``when`` (the cases the
  mapping covers) and a ``note``.  ``oracle_limits``: valid cases an oracle cannot run
  (``oracles``, ``when``, ``dtypes``, ``reason``); the strategies redraw past them.
- ``conformance``: why the harness does not compare an implemented function (global state,
  in-place updates, callables); tests/impl/test_backend.py covers those.
"""

from __future__ import annotations

import argparse
import difflib
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import UnknownLayerError
from .expr import Expr, ExprError, compile_expr
from .model import EDGE_VALUES

OPS_DIR = Path(str(resources.files("keraspec.spec"))) / "ops"
OPS_SCHEMA_PATH = Path(str(resources.files("keraspec.spec"))) / "ops_schema.json"
#: The statuses a function can have; every one but ``implemented`` needs a reason.
STATUSES = ("implemented", "planned", "removed")
#: The oracles an op can be compared with: tf_keras.backend (the seeds' API) and keras.ops.
OP_ORACLES = ("tf_keras", "keras3")
#: The dtypes a function is drawn in unless its spec says otherwise.
DEFAULT_OP_DTYPES = ("float32", "float64")
#: tf_keras's default floatx, what a ``floatx`` dtype rule means.
DEFAULT_FLOATX = "float32"


class OpsSpecError(ValueError):
    """An ops spec file that breaks the schema or a rule the schema cannot state."""


class UnknownOpError(UnknownLayerError):
    """No function of that name (or seed name) is in the ops spec.  An UnknownLayerError (an unknown
    name of the spec), so the command line answers it as bad input: one line, exit status 2."""


@dataclass(frozen=True)
class OpArg:
    """One argument of a backend function: its kind (tensor, axis, int, ...), default, domain,
    and how the conformance strategies draw it (``draw``)."""

    name: str
    kind: str
    default: Any = None
    required: bool = False
    doc: str = ""
    domain: Mapping[str, Any] = field(default_factory=dict)
    draw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpOracle:
    """Where an oracle has the function: ``function`` (an import path) and, for keras.ops, the
    argument mapping (keras3 argument -> expression of ours) and when the mapping holds."""

    function: str
    args: Mapping[str, Expr] | None = None
    when: Expr | None = None
    note: str = ""


@dataclass(frozen=True)
class OpLimit:
    """Valid arguments an oracle cannot run (the strategies do not draw them for that oracle)."""

    oracles: tuple[str, ...]
    when: Expr
    reason: str
    dtypes: tuple[str, ...] | None = None


class OpSpec:
    """The spec of one backend function."""

    def __init__(self, group: str, data: Mapping[str, Any]):
        self.group = group
        self.name: str = data["name"]
        #: How the seed document (004-backend.txt) spells the function, where it differs.
        self.seed_name: str = data.get("seed_name", self.name)
        self.in_seed: bool = bool(data.get("in_seed", True))
        self.status: str = data["status"]
        self.reason: str = data.get("reason", "")
        self.doc: str = data.get("doc", "")
        self.signature: str = data.get("signature", "")
        #: The eager meaning of a graph-era function, stated.
        self.eager: str = data.get("eager", "")
        self.args: dict[str, OpArg] = {
            a["name"]: OpArg(a["name"], a["kind"], a.get("default"), bool(a.get("required", False)), a.get("doc", ""),
                             dict(a.get("domain", {})), dict(a.get("draw", {})))
            for a in data.get("args", [])
        }
        #: Helper values the strategies draw that are not arguments (e.g. where a reshape splits).
        self.aux: dict[str, dict[str, Any]] = {k: dict(v) for k, v in data.get("aux", {}).items()}
        returns = data.get("returns", {})
        shapes = returns.get("shape")
        #: One expression per output (several for a tuple-returning function).
        self.output_shape_rules: tuple[Expr, ...] = tuple(
            compile_expr(s) for s in (shapes if isinstance(shapes, list) else [shapes] if shapes is not None else []))
        dtypes = returns.get("dtype")
        self.output_dtype_rules: tuple[str, ...] = tuple(dtypes if isinstance(dtypes, list) else [dtypes] if dtypes else [])
        self.returns_doc: str = returns.get("doc", "")
        numerics = data.get("numerics", {})
        self.op_class: str = numerics.get("class", "elementwise")
        self.length_rule: Expr = compile_expr(numerics.get("length", 1))
        grad_numerics = numerics.get("gradient", {})
        #: The op class and length of the gradient where they differ from the forward's (a
        #: broadcast argument's gradient sums the cotangent over the broadcast axes).
        self.gradient_op_class: str = grad_numerics.get("class", self.op_class)
        self.gradient_length_rule: Expr = compile_expr(grad_numerics["length"]) if "length" in grad_numerics else self.length_rule
        edge = numerics.get("edge_values", {"values": list(EDGE_VALUES)})
        self.edge_values: tuple[str, ...] = tuple(edge["values"])
        self.edge_values_reason: str = edge.get("reason", "")
        self.gradients: tuple[str, ...] = tuple(data.get("gradients", []))
        #: The outputs the gradient check differentiates (None: every float output).
        self.gradient_outputs: tuple[int, ...] | None = (
            tuple(data["gradient_outputs"]) if "gradient_outputs" in data else None)
        #: Helper values the rules name, evaluated in order (see env).
        self.let: dict[str, Expr] = {k: compile_expr(v) for k, v in data.get("let", {}).items()}
        stochastic = data.get("stochastic", False)
        self.stochastic: bool = bool(stochastic)
        #: The argument that seeds a stochastic function's draws (for the reproducibility check).
        self.seed_arg: str | None = stochastic.get("seed") if isinstance(stochastic, dict) else None
        self.dtypes: tuple[str, ...] = tuple(data.get("dtypes", DEFAULT_OP_DTYPES))
        self.oracles: dict[str, OpOracle] = {}
        for oracle, o in data.get("oracles", {}).items():
            if isinstance(o, str):
                o = {"function": o}
            self.oracles[oracle] = OpOracle(
                o["function"], {k: compile_expr(v) for k, v in o["args"].items()} if "args" in o else None,
                compile_expr(o["when"]) if "when" in o else None, o.get("note", ""))
        self.oracle_limits: tuple[OpLimit, ...] = tuple(
            OpLimit(tuple(lim["oracles"]), compile_expr(lim["when"]), lim["reason"],
                    tuple(lim["dtypes"]) if "dtypes" in lim else None)
            for lim in data.get("oracle_limits", []))
        #: Where the conformance harness cannot compare the function (python values, in-place updates).
        self.conformance: str = data.get("conformance", "")
        self._check()

    def _check(self) -> None:
        if self.status != "implemented" and not self.reason:
            raise OpsSpecError(f"{self.name}: status {self.status!r} needs a reason")
        for name in self.gradients:
            if name not in self.args or self.args[name].kind not in ("tensor", "tensor_list"):
                raise OpsSpecError(f"{self.name}: gradients names {name!r}, which is not a tensor argument")
        if self.seed_arg is not None and self.seed_arg not in self.args:
            raise OpsSpecError(f"{self.name}: stochastic.seed names {self.seed_arg!r}, which is not an argument")
        for limit in self.oracle_limits:
            for oracle in limit.oracles:
                if oracle not in OP_ORACLES:
                    raise OpsSpecError(f"{self.name}: oracle limit names unknown oracle {oracle!r}")

    @property
    def implemented(self) -> bool:
        return self.status == "implemented"

    @property
    def comparable(self) -> bool:
        """Whether the conformance harness compares this function with its oracles."""
        return self.implemented and not self.conformance and bool(self.oracles)

    def tensor_args(self) -> list[OpArg]:
        return [a for a in self.args.values() if a.kind in ("tensor", "tensor_list")]

    def env(self, values: Mapping[str, Any], partial: bool = False) -> dict[str, Any]:
        """The names rules see: each tensor argument as its shape (a list; a tensor list as a list
        of shapes), every other argument as its value, ``NAME_axes``: an axis argument as the
        sorted non-negative axes of its tensor it names (every axis for None), and the ``let``
        values.  ``partial``: skip what names values not drawn yet (while drawing)."""
        env = dict(values)
        for arg in self.args.values():
            if arg.kind == "axis" and arg.name in env:
                of = arg.draw.get("of")
                shape = env.get(of) if isinstance(of, str) else None
                if shape is not None:
                    env[f"{arg.name}_axes"] = normalize_axes(env[arg.name], len(shape))
        for name, rule in self.let.items():
            try:
                env[name] = rule(env)
            except ExprError:
                if not partial:
                    raise
        return env

    def output_shape(self, values: Mapping[str, Any]) -> tuple[int, ...] | list[tuple[int, ...]]:
        """The output shape (a list of them for a tuple output) for these argument values."""
        env = self.env(values)
        shapes = [tuple(rule(env)) for rule in self.output_shape_rules]
        return shapes[0] if len(shapes) == 1 else shapes

    def output_dtypes(self, values: Mapping[str, Any], arg_dtypes: Mapping[str, str]) -> list[str]:
        """The dtype name of each output: a rule naming a tensor argument means that argument's
        dtype (``arg_dtypes``), one naming another argument that argument's value (a dtype name;
        None means floatx), one naming a ``let`` that value, ``floatx`` the default float type; anything else is a dtype name."""
        out = []
        for rule in self.output_dtype_rules:
            if rule in arg_dtypes:
                out.append(arg_dtypes[rule])
            elif rule in self.args:
                out.append(values.get(rule) or DEFAULT_FLOATX)
            elif rule in self.let:
                out.append(values[rule])
            else:
                out.append(DEFAULT_FLOATX if rule == "floatx" else rule)
        return out

    def reduction_length(self, values: Mapping[str, Any], gradient: bool = False) -> int:
        """The reduction length the tolerance scales with (of the gradient with ``gradient``)."""
        rule = self.gradient_length_rule if gradient else self.length_rule
        try:
            return max(int(rule(self.env(values, partial=True)) or 1), 1)
        except (TypeError, ValueError):
            return 1


def normalize_axes(axis: Any, rank: int) -> list[int]:
    """The sorted, non-negative axes ``axis`` (None, an int or a sequence) names in a tensor of ``rank``."""
    if axis is None:
        return list(range(rank))
    listed = [axis] if isinstance(axis, int) else list(axis)
    return sorted({a % rank for a in listed}) if rank else []


# -- loading -------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _validator() -> Any:
    document = json.loads(OPS_SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(document)
    cls.check_schema(document)
    return cls(document)


def load_file(path: Path) -> dict[str, Any]:
    """One ops spec file, parsed with safe_load and validated against the ops schema."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise OpsSpecError(f"{path.name}: {where}: {error.message}")
    return data


@lru_cache(maxsize=None)
def load_all(ops_dir: Path = OPS_DIR) -> dict[str, OpSpec]:
    """Every function of the ops spec, keyed by its tf_keras name, in file order."""
    out: dict[str, OpSpec] = {}
    for path in sorted(ops_dir.glob("*.yaml")):
        data = load_file(path)
        for entry in data["functions"]:
            if entry["name"] in out:
                raise OpsSpecError(f"{path.name}: function {entry['name']!r} is also in group {out[entry['name']].group!r}")
            out[entry["name"]] = OpSpec(data["group"], entry)
    return out


def functions(group: str | None = None, status: str | None = None) -> list[str]:
    """Names of the spec's functions, optionally of one group and/or status."""
    return [n for n, s in load_all().items() if (group is None or s.group == group) and (status is None or s.status == status)]


def groups() -> list[str]:
    return sorted({s.group for s in load_all().values()})


def lookup(name: str) -> OpSpec:
    """The spec of a function by its tf_keras name, seed name, or ``K.name``; unknown names suggest close ones."""
    table = {}
    for key, s in load_all().items():
        table[key] = s
        table.setdefault(s.seed_name, s)
    bare = name.removeprefix("K.").removeprefix("keras.backend.").removeprefix("tf_keras.backend.")
    if bare in table:
        return table[bare]
    close = difflib.get_close_matches(bare, list(table), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownOpError(f"no backend function named {name!r} in the ops spec{hint}")


# -- description and the `keraspec op` command ---------------------------------------------------

def describe(s: OpSpec) -> str:
    """A readable, plain-text description of a function's spec."""
    head = f"K.{s.name}  ({s.group}; {s.status})"
    if s.seed_name != s.name:
        head += f"  seed document: {s.seed_name}"
    parts = [head]
    if s.signature:
        parts.append(s.signature)
    if s.doc:
        parts.append(textwrap.fill(s.doc, 100))
    if s.reason:
        parts.append(textwrap.fill(f"{s.status}: {s.reason}", 100))
    if s.eager:
        parts.append(textwrap.fill(f"eager meaning: {s.eager}", 100))
    if s.args:
        rows = []
        for a in s.args.values():
            default = "(required)" if a.required else repr(a.default)
            domain = ", ".join(f"{k} {v}" for k, v in a.domain.items())
            rows.append([a.name, a.kind, default, domain, a.doc])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(["name", "kind", "default", "domain", "doc"])]
        lines = ["  ".join(h.ljust(w) for h, w in zip(["name", "kind", "default", "domain", "doc"], widths)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        parts.append("\narguments:\n" + "\n".join(lines))
    if s.output_shape_rules:
        parts.append("\noutput shape: " + "; ".join(r.source for r in s.output_shape_rules))
        parts.append("output dtype: " + "; ".join(s.output_dtype_rules))
    if s.returns_doc:
        parts.append(textwrap.fill(s.returns_doc, 100))
    if s.implemented:
        parts.append(f"numerics: {s.op_class}" + (f", length {s.length_rule.source}" if s.op_class == "reduction" else ""))
        parts.append(f"dtypes: {', '.join(s.dtypes)}; gradients: {', '.join(s.gradients) or 'none'}; "
                     f"stochastic: {'yes' if s.stochastic else 'no'}")
        if s.edge_values_reason:
            parts.append(f"edge values: {', '.join(s.edge_values)} ({s.edge_values_reason})")
    for oracle, o in s.oracles.items():
        mapping = ""
        if o.args is not None:
            mapping = " with " + ", ".join(f"{k}={v.source}" for k, v in o.args.items())
        parts.append(f"oracle {oracle}: {o.function}{mapping}" + (f" when {o.when.source}" if o.when else "")
                     + (f" -- {o.note}" if o.note else ""))
    for limit in s.oracle_limits:
        parts.append(f"not comparable with {', '.join(limit.oracles)} when {limit.when.source}: {limit.reason}")
    if s.conformance:
        parts.append(textwrap.fill(f"conformance: {s.conformance}", 100))
    return "\n".join(parts)


def _cmd_op(args: argparse.Namespace) -> int:
    """Print a function's spec; an unknown name raises UnknownOpError, which ``keraspec`` prints
    as one line with exit status 2."""
    if args.name is None:
        for group in groups():
            names = [f"{n}" + ("" if load_all()[n].implemented else f" ({load_all()[n].status})") for n in functions(group)]
            print(f"{group}: {', '.join(names)}")
        return 0
    print(describe(lookup(args.name)))
    return 0


def register_command(subparsers: Any) -> None:
    """The ``keraspec op NAME`` subcommand (entry point of the ``keraspec.commands`` group)."""
    p = subparsers.add_parser(
        "op", help="show a Keras backend function's spec (K.NAME); without NAME, every function by group",
        epilog="exit status: 0 -- the description; 2 -- an unknown function (one line naming it).")
    p.add_argument("name", nargs="?", help="the function's name, e.g. batch_dot or K.batch_dot")
    p.set_defaults(func=_cmd_op)


__all__: Sequence[str] = ["OP_ORACLES", "OpArg", "OpLimit", "OpOracle", "OpSpec", "OpsSpecError", "STATUSES",
                          "UnknownOpError", "describe", "functions", "groups", "load_all", "lookup", "normalize_axes"]
