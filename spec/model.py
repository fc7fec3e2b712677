"""LayerSpec and friends: the in-memory form of the YAML spec, with validation and shape rules."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .expr import Expr, ExprError, compile_expr

#: The oracles, in report order: Keras 3 on TensorFlow (the ``keras`` package) and tf_keras (Keras 2).
#: Every other module imports this one definition.
ORACLES = ("keras3", "tf_keras")

#: Parameter types understood by the spec.  ``*_tuple`` types have a ``length`` expression.
PARAM_TYPES = (
    "int",
    "float",
    "bool",
    "str",
    "int_tuple",
    "float_tuple",
    "int_pair_tuple",
    "shape",
    "activation",
    "initializer",
    "regularizer",
    "constraint",
    "dtype",
    "any",
)
_NAMED_OBJECT_TYPES = ("activation", "initializer", "regularizer", "constraint")


class SpecConfigError(ValueError):
    """A config value breaks a domain or constraint of the spec.  Names the parameter and rule."""

    def __init__(self, layer: str, params: Sequence[str], rule: str, message: str):
        self.layer, self.params, self.rule = layer, tuple(params), rule
        super().__init__(f"{layer}: {message} [rule: {rule}; parameter(s): {', '.join(params)}]")


class SpecTypeError(TypeError):
    """A config value of the wrong type, an unknown or a missing argument."""

    def __init__(self, layer: str, params: Sequence[str], rule: str, message: str):
        self.layer, self.params, self.rule = layer, tuple(params), rule
        super().__init__(f"{layer}: {message} [rule: {rule}; parameter(s): {', '.join(params)}]")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or type(v).__name__ in ("int32", "int64")


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or _is_int(v)


@dataclass(frozen=True)
class Domain:
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple[Any, ...] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Domain:
        data = dict(data or {})
        if "choices" in data:
            data["choices"] = tuple(data["choices"])
        return cls(**data)

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{'>' if self.min_exclusive else '>='} {self.min}")
        if self.max is not None:
            parts.append(f"{'<' if self.max_exclusive else '<='} {self.max}")
        if self.choices is not None:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        return " and ".join(parts)

    def violation(self, value: Any) -> str | None:
        """The broken edge ('min', 'max', 'choices') for a scalar value, or None if it is inside."""
        if self.choices is not None and value not in self.choices:
            return "choices"
        if self.min is not None and _is_number(value):
            if value < self.min or (self.min_exclusive and value == self.min):
                return "min"
        if self.max is not None and _is_number(value):
            if value > self.max or (self.max_exclusive and value == self.max):
                return "max"
        return None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    doc: str
    default: Any = None
    required: bool = False
    nullable: bool = False
    #: The value None stands for, as Keras reports it in get_config (e.g. activation None -> "linear").
    null_means: Any = None
    domain: Domain = field(default_factory=Domain)
    length: Expr | None = None
    #: How a scalar given for a tuple-typed parameter expands ("repeat": int -> (int,) * length).
    expand: str | None = None
    #: Strategy hints (e.g. ``max`` to keep drawn sizes small); they never widen the domain.
    draw: Mapping[str, Any] = field(default_factory=dict)
    #: Oracles that accept out-of-domain values, with the reason (our implementation rejects them):
    #: oracle -> reason for every edge, or oracle -> {edge: reason} ("min", "type", ...).
    oracle_accepts: Mapping[str, Any] = field(default_factory=dict)
    #: The oracles that have this parameter (None: every oracle of the layer).
    only_in: tuple[str, ...] | None = None
    #: When a value of the parameter has an effect (an expression of the config), and assignments
    #: that make it so (``output_padding`` only matters with strides > 1).
    effective_when: Expr | None = None
    effective_make: Mapping[str, Expr] = field(default_factory=dict)

    def in_oracle(self, oracle: str) -> bool:
        return self.only_in is None or oracle in self.only_in

    @property
    def has_default(self) -> bool:
        return not self.required

    def accepted_by(self, edge: str) -> dict[str, str]:
        """oracle -> reason, for the oracles that accept a value breaking ``edge`` of this parameter."""
        out = {}
        for oracle, reason in self.oracle_accepts.items():
            if isinstance(reason, str):
                out[oracle] = reason
            elif edge in reason:
                out[oracle] = reason[edge]
        return out


@dataclass(frozen=True)
class WeightSpec:
    name: str
    shape: Expr
    when: Expr | None
    trainable: bool
    #: Where an oracle names the weight differently (tf_keras's ``depthwise_kernel`` for keras3's ``kernel``).
    oracle_names: Mapping[str, str] = field(default_factory=dict)
    #: The parameter whose initializer fills the weight at build (None: not configurable).
    initializer: str | None = None

    def name_in(self, oracle: str | None) -> str:
        return self.oracle_names.get(oracle, self.name) if oracle else self.name


@dataclass(frozen=True)
class Constraint:
    name: str
    params: tuple[str, ...]
    rule: Expr
    message: str
    #: Assignments (param -> expression) that turn a config breaking the rule into one that keeps it.
    repair: Mapping[str, Expr]
    #: Assignments that make a valid config break exactly this rule.
    violate: Mapping[str, Expr]
    #: "config": checked on the config alone; "input": needs the input shape (raised at build).
    stage: str
    oracle_accepts: Mapping[str, str]
    doc: str = ""


#: The float dtypes Keras runs layers in.
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
#: Keras's mixed-precision policies: name -> (compute dtype, variable dtype).  Variables stay
#: float32, inputs are cast to the compute dtype and the layer computes in it.
MIXED_POLICIES: dict[str, tuple[str, str]] = {"mixed_float16": ("float16", "float32"),
                                             "mixed_bfloat16": ("bfloat16", "float32")}
#: Every dtype policy the suite runs a layer in: the dtype axis of the suite, in report order.  A
#: layer whose spec names no input dtypes runs in all of them.
DTYPE_POLICIES = FLOAT_DTYPES + tuple(MIXED_POLICIES)

#: The special input values a layer can be fed, each at the layer's compute dtype: IEEE's NaN and
#: infinities, both zeros, the largest finite value of either sign (towards overflow), the smallest
#: normal and the smallest subnormal (towards underflow; TensorFlow flushes subnormals to zero on
#: CPU).  A spec's ``numerics.edge_values`` narrows the list, with the reason; by default a layer is
#: fed every one, and the oracle's propagation is the truth.
EDGE_VALUES = ("nan", "inf", "-inf", "0", "-0", "max", "-max", "tiny", "subnormal")


def compute_dtype(policy: str) -> str:
    """The dtype a layer of this dtype policy computes in (a plain dtype is its own)."""
    return MIXED_POLICIES.get(policy, (policy, policy))[0]


def variable_dtype(policy: str) -> str:
    """The dtype a layer of this dtype policy stores its weights in."""
    return MIXED_POLICIES.get(policy, (policy, policy))[1]


#: Arguments of Keras's base Layer that every layer takes; the spec leaves them to the base class.
BASE_LAYER_ARGUMENTS = ("name", "dtype", "trainable", "dynamic", "autocast", "input_dim", "input_shape",
                        "batch_input_shape", "batch_size")
#: Where each oracle's package is installed from, by oracle name.
ORACLE_PACKAGES: dict[str, str] = {"keras3": "keras", "tf_keras": "tf_keras"}


@dataclass(frozen=True)
class OraclePrecision:
    """Where an oracle computes in a lower precision than asked (``computes_in``), e.g. TF's resize
    kernels reading a float64 image as float32: the tolerance policy then uses that precision."""

    oracles: tuple[str, ...]
    dtypes: tuple[str, ...]
    computes_in: str
    when: Expr | None
    reason: str

    def applies(self, oracle: str, dtype: str, env: Mapping[str, Any]) -> bool:
        if oracle not in self.oracles or dtype not in self.dtypes:
            return False
        try:
            return self.when is None or bool(self.when(env))
        except Exception:  # noqa: BLE001 - cannot tell on this config: assume the lower precision
            return True


@dataclass(frozen=True)
class OracleLimit:
    """Valid configs an oracle cannot run, or runs wrongly (e.g. no CPU kernel for them).

    The implementation must handle them; the suite draws no such case for those oracles (``repair``)
    and the spec checker confirms the limit is still real (``example`` makes a valid config hit it).
    """

    name: str
    oracles: tuple[str, ...]
    when: Expr
    reason: str
    repair: Mapping[str, Expr]
    example: Mapping[str, Expr]
    #: Only these checks cannot be compared (e.g. ``gradients`` where TF has no gradient); None: all.
    checks: tuple[str, ...] | None = None
    #: Only in these dtypes; None: all.
    dtypes: tuple[str, ...] | None = None

    def applies(self, oracle: str, check: str | None = None, dtype: str | None = None) -> bool:
        """Whether the limit concerns this oracle, check and dtype (None: any check / dtype)."""
        return (oracle in self.oracles
                and (self.checks is None or check is None or check in self.checks)
                and (self.dtypes is None or dtype is None or dtype in self.dtypes))

    @property
    def whole_config(self) -> bool:
        """The oracle cannot run such a config at all (rather than one check of it, in some dtypes)."""
        return self.checks is None and self.dtypes is None

    def hits(self, env: Mapping[str, Any]) -> bool:
        try:
            return bool(self.when(env))
        except Exception:  # noqa: BLE001 - cannot tell on this config: keep it away from the oracle
            return True


@dataclass(frozen=True)
class OracleLayout:
    """A data layout the oracle cannot run on CPU, and how the suite runs it instead.

    ``param`` is the layout parameter; for its values in ``transpose_to_channels_last`` the oracle
    runs the channels_last layer on transposed data (Keras's weight layout does not depend on the
    layout).  ``after_transpose`` names the parameters that must see the requested layout -- an
    axis-dependent activation and the activity penalty taken on its output -- by role
    (``activation``, ``activity_regularizer``); the oracle runs without them and applies them after
    transposing back.
    """

    param: str
    transpose_to_channels_last: tuple[Any, ...]
    after_transpose: Mapping[str, str]
    doc: str = ""

    def transposes(self, config: Mapping[str, Any]) -> bool:
        return config.get(self.param) in self.transpose_to_channels_last


@dataclass(frozen=True)
class PlantedValues:
    """Input elements set to a config value (``param``), e.g. Masking's mask_value: whole steps
    (every feature of a position, ``step_fraction``) and single elements (``element_fraction``)."""

    param: str
    step_fraction: float = 0.0
    element_fraction: float = 0.0


@dataclass(frozen=True)
class Stochastic:
    """What a stochastic layer does in training, for the one statistical check.

    ``let`` binds helper values (expressions of the config, evaluated in order).  A ``bernoulli``
    layer drops each independent draw with probability ``drop_rate``; a kept element becomes
    ``kept`` and a dropped one ``dropped`` (expressions of ``x``, the input element).  A
    ``gaussian`` layer combines the input with noise of ``mean`` and ``stddev`` (``combine``:
    ``add`` -> x + noise, ``multiply`` -> x * noise).  ``broadcast_axes`` lists the input axes along
    which one draw is shared; ``follows_batch`` the parameters whose first entry is the batch size
    (unless it is 1: one draw shared across the batch); ``seed`` the parameter seeding the layer.
    """

    distribution: str
    let: Mapping[str, Expr]
    broadcast_axes: Expr
    drop_rate: Expr | None = None
    kept: Expr | None = None
    dropped: Expr | None = None
    combine: str | None = None
    mean: Expr | None = None
    stddev: Expr | None = None
    follows_batch: tuple[str, ...] = ()
    seed: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stochastic:
        def opt(key: str) -> Expr | None:
            return compile_expr(d[key]) if key in d else None

        return cls(
            distribution=d["distribution"],
            let={k: compile_expr(v) for k, v in d.get("let", {}).items()},
            broadcast_axes=compile_expr(d.get("broadcast_axes", "[]")),
            drop_rate=opt("drop_rate"), kept=opt("kept"), dropped=opt("dropped"),
            combine=d.get("combine"), mean=opt("mean"), stddev=opt("stddev"),
            follows_batch=tuple(d.get("follows_batch", ())), seed=d.get("seed"),
        )

    def scope(self, env: Mapping[str, Any]) -> dict[str, Any]:
        """``env`` with the ``let`` bindings evaluated in order."""
        scope = dict(env)
        for name, expr in self.let.items():
            scope[name] = expr(scope)
        return scope


@dataclass(frozen=True)
class Behaviour:
    """Facts about a layer the harness reads instead of knowing them by layer or parameter name."""

    oracle_layout: OracleLayout | None = None
    input_values: PlantedValues | None = None
    stochastic: Stochastic | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Behaviour:
        layout = d.get("oracle_layout")
        planted = d.get("input_values")
        return cls(
            oracle_layout=None if layout is None else OracleLayout(
                param=layout["param"], transpose_to_channels_last=tuple(layout["transpose_to_channels_last"]),
                after_transpose=dict(layout.get("after_transpose", {})), doc=layout.get("doc", "")),
            input_values=None if planted is None else PlantedValues(**planted),
            stochastic=None if "stochastic" not in d else Stochastic.from_dict(d["stochastic"]),
        )


#: The integer dtypes an input of indices can have (``inputs.indices.dtype``).
INDEX_DTYPES = ("int32", "int64")


@dataclass(frozen=True)
class IndexValues:
    """Inputs that are integer indices, not measurements: drawn in [low, high) (expressions of the
    config), in ``dtype`` whatever the layer's dtype policy; not differentiable, never scaled, and
    fed no special float values."""

    dtype: str
    low: Expr
    high: Expr


@dataclass(frozen=True)
class InputSpec:
    count: Expr  # number of input tensors (1 for most layers)
    min_count: int
    max_count: int
    rank: Expr | None  # exact rank, if fixed by the config
    min_rank: int
    max_rank: int
    #: Whether min_rank is Keras's own limit (checked by the layer) rather than a bound on draws.
    enforce_min_rank: bool
    dtypes: tuple[str, ...]
    #: Per-axis lower bounds on drawn sizes, e.g. a kernel that must fit: list-valued expression.
    min_sizes: Expr | None
    #: Axes whose size must be equal across inputs ("all" or a list), for merge layers.
    same_shape: bool
    #: Per-axis sizes forced by the config, as a list-valued expression with None for free axes.
    sizes: Expr | None
    #: Axis (negative index) that must be divisible by ``multiple_of``.
    multiple_of: Mapping[str, Expr]
    #: Why an extra leading batch axis is neither accepted nor refused by the oracles everywhere
    #: (None: a rank above the spec's is refused, so it is probed).
    extra_batch_axes: str | None = None
    #: Set when the inputs are integer indices (an embedding's token ids) rather than float values.
    indices: IndexValues | None = None
    #: Groups of (input index, axis) that share one drawn size (attention's query, value and key
    #: share their feature axis; value and key their time axis).
    tie: tuple[tuple[tuple[int, int], ...], ...] = ()


class LayerSpec:
    """One layer's spec.  Built by :mod:`keraspec.spec.loader` from the YAML files."""

    def __init__(self, data: Mapping[str, Any], family: str, object_limits: Sequence[Mapping[str, Any]] = ()):
        self.raw = data
        self.name: str = data["name"]
        self.family = family
        self.doc: str = data.get("doc", "")
        self.aliases: tuple[str, ...] = tuple(data.get("aliases", ()))
        self.oracles: dict[str, str] = dict(data.get("oracles", {}))
        self.vars: dict[str, Any] = dict(data.get("vars", {}))
        self.training: str = data.get("training", "none")
        self.masking: dict[str, Any] = dict(data.get("masking", {"supports": False}))
        numerics = dict(data.get("numerics", {}))
        self.op_class: str = numerics.get("op_class", "elementwise")
        #: The length of the reduction each output element is (the tolerance scales with it).
        self.reduction_length: Expr | None = compile_expr(numerics["length"]) if "length" in numerics else None
        self.oracle_precision: tuple[OraclePrecision, ...] = tuple(
            OraclePrecision(oracles=tuple(o["oracles"]), dtypes=tuple(o["dtypes"]), computes_in=o["computes_in"],
                            when=compile_expr(o["when"]) if "when" in o else None, reason=o["reason"])
            for o in numerics.get("oracle_precision", ()))
        # Indices take no special float values; any other input takes them all unless the spec says.
        edge = numerics.get("edge_values", {"values": () if "indices" in data.get("inputs", {}) else EDGE_VALUES})
        #: The special input values (EDGE_VALUES) the layer is defined on and is fed, and why fewer.
        self.edge_values: tuple[str, ...] = tuple(edge["values"])
        self.edge_values_reason: str = edge.get("reason", "")
        #: Per compared quantity, the degrees in the input scale of the terms it is made of, where the
        #: layer is not linear in its inputs (the tolerance policy's magnitude_scale reads them).
        self.magnitude_degree_rules: dict[str, Expr] = {
            quantity: compile_expr(str(d)) for quantity, d in numerics.get("magnitude_degree", {}).items()}
        self.excluded_params: dict[str, str] = dict(data.get("excluded_params", {}))
        self.oracle_defaults: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in data.get("oracle_defaults", {}).items()
        }
        self.behaviour: Behaviour = Behaviour.from_dict(data.get("behaviour", {}))
        self.params: dict[str, ParamSpec] = {
            name: self._param(name, p) for name, p in data.get("params", {}).items()
        }
        self.weights: tuple[WeightSpec, ...] = tuple(
            WeightSpec(
                name=w["name"],
                shape=compile_expr(w["shape"]),
                when=compile_expr(w["when"]) if "when" in w else None,
                trainable=w.get("trainable", True),
                oracle_names=dict(w.get("oracle_names", {})),
                initializer=w.get("initializer"),
            )
            for w in data.get("weights", ())
        )
        self.constraints: tuple[Constraint, ...] = tuple(self._constraint(c) for c in data.get("constraints", ()))
        self.oracle_limits: tuple[OracleLimit, ...] = tuple(
            OracleLimit(
                name=lim["name"],
                oracles=tuple(lim["oracles"]),
                when=compile_expr(lim["when"]),
                reason=lim["reason"],
                repair={k: compile_expr(v) for k, v in lim["repair"].items()},
                example={k: compile_expr(v) for k, v in lim["example"].items()},
                checks=tuple(lim["checks"]) if "checks" in lim else None,
                dtypes=tuple(lim["dtypes"]) if "dtypes" in lim else None,
            )
            for lim in data.get("oracle_limits", ())
        ) + tuple(lim for raw in object_limits if (lim := self._object_limit(raw)) is not None)
        self.input = self._inputs(data.get("inputs", {}))
        #: Arguments of the layer's call besides inputs, training and mask (Attention's
        #: ``use_causal_mask``): drawn per case like choice parameters and passed to every call.
        self.call_arguments: dict[str, ParamSpec] = {
            name: self._param(name, p) for name, p in data.get("call", {}).get("arguments", {}).items()
        }
        clash = sorted(set(self.call_arguments) & set(self.params))
        if clash:
            raise ValueError(f"{self.name}: call argument(s) {clash} are also constructor parameters")
        #: How several inputs are passed: as one list (empty), or the first positionally and the others
        #: as keyword arguments of these names (MultiHeadAttention's ``call(query, value, key)``).
        self.call_input_names: tuple[str, ...] = tuple(data.get("call", {}).get("input_names", ()))
        #: The inputs that take a mask in the masks check (default: the first; Attention's query and value).
        self.masked_inputs: tuple[int, ...] = tuple(self.masking.get("inputs", (0,)))
        self.output_shape_rule: Expr = compile_expr(data.get("output_shape", "input"))
        self.output_mask_rule: Expr | None = (
            compile_expr(self.masking["output"]) if isinstance(self.masking.get("output"), str) else None
        )

    def __repr__(self) -> str:
        return f"<LayerSpec {self.name} ({self.family})>"

    # -- construction -------------------------------------------------------------------------
    def _param(self, name: str, p: Mapping[str, Any]) -> ParamSpec:
        return ParamSpec(
            name=name,
            type=p["type"],
            doc=p.get("doc", ""),
            default=p.get("default"),
            required=p.get("required", False),
            nullable=p.get("nullable", False),
            null_means=p.get("null_means"),
            domain=Domain.from_dict(p.get("domain")),
            length=compile_expr(p["length"]) if "length" in p else None,
            expand=p.get("expand"),
            draw=dict(p.get("draw", {})),
            oracle_accepts=dict(p.get("oracle_accepts", {})),
            only_in=tuple(p["only_in"]) if "only_in" in p else None,
            effective_when=compile_expr(p["effective"]["when"]) if "effective" in p else None,
            effective_make={k: compile_expr(v) for k, v in p.get("effective", {}).get("make", {}).items()},
        )

    def _object_limit(self, raw: Mapping[str, Any]) -> OracleLimit | None:
        """A named object's oracle limit (spec/objects.yaml) as a limit of this layer: it hits when
        any parameter of the object's type takes the value."""
        params = [name for name, p in self.params.items() if p.type == raw["type"]]
        if not params or not set(raw["oracles"]) & set(self.oracles):
            return None
        value = repr(raw["value"])
        return OracleLimit(
            name=f"{raw['name']}_{raw['type']}",
            oracles=tuple(raw["oracles"]),
            when=compile_expr(f"{value} in ({', '.join(params)},)"),
            reason=raw["reason"],
            repair={name: compile_expr(f"None if {name} == {value} else {name}") for name in params},
            example={params[0]: compile_expr(value)},
            checks=tuple(raw["checks"]) if "checks" in raw else None,
            dtypes=tuple(raw["dtypes"]) if "dtypes" in raw else None,
        )

    def _constraint(self, c: Mapping[str, Any]) -> Constraint:
        return Constraint(
            name=c["name"],
            params=tuple(c["params"]),
            rule=compile_expr(c["rule"]),
            message=c["message"],
            repair={k: compile_expr(v) for k, v in c.get("repair", {}).items()},
            violate={k: compile_expr(v) for k, v in c.get("violate", {}).items()},
            stage=c.get("stage", "config"),
            oracle_accepts=dict(c.get("oracle_accepts", {})),
            doc=c.get("doc", ""),
        )

    def _inputs(self, d: Mapping[str, Any]) -> InputSpec:
        count = d.get("count", 1)
        if isinstance(count, Mapping):
            min_count, max_count, count_expr = count["min"], count["max"], compile_expr("n_inputs")
        else:
            min_count = max_count = int(count)
            count_expr = compile_expr(count)
        rank = d.get("rank", {"min": 1, "max": 5})
        if isinstance(rank, Mapping):
            rank_expr, min_rank, max_rank = None, rank.get("min", 1), rank.get("max", 5)
        else:
            rank_expr, min_rank, max_rank = compile_expr(rank), 0, 0
        return InputSpec(
            count=count_expr,
            min_count=min_count,
            max_count=max_count,
            rank=rank_expr,
            min_rank=min_rank,
            max_rank=max_rank,
            enforce_min_rank=bool(rank.get("enforce_min", False)) if isinstance(rank, Mapping) else True,
            dtypes=tuple(d.get("dtypes", DTYPE_POLICIES)),
            min_sizes=compile_expr(d["min_sizes"]) if "min_sizes" in d else None,
            same_shape=d.get("same_shape", False),
            sizes=compile_expr(d["sizes"]) if "sizes" in d else None,
            multiple_of={k: compile_expr(v) for k, v in d.get("multiple_of", {}).items()},
            extra_batch_axes=d.get("extra_batch_axes"),
            indices=IndexValues(d["indices"].get("dtype", "int32"), compile_expr(str(d["indices"].get("low", 0))),
                                compile_expr(str(d["indices"]["high"]))) if "indices" in d else None,
            tie=tuple(tuple((int(i), int(axis)) for i, axis in group) for group in d.get("tie", ())),
        )

    # -- queries --------------------------------------------------------------------------------
    def has_oracle(self, oracle: str) -> bool:
        return oracle in self.oracles

    def defaults(self, oracle: str = "keras3") -> dict[str, Any]:
        """Default value of every parameter that has one, as ``oracle`` defines it."""
        out = {name: copy.deepcopy(p.default) for name, p in self.params.items() if p.has_default}
        out.update(copy.deepcopy(self.oracle_defaults.get(oracle, {})))
        return out

    def env(self, config: Mapping[str, Any], input_shape: Any = None) -> dict[str, Any]:
        """The names an expression sees: layer vars, the config, and the input shape(s)."""
        scope: dict[str, Any] = dict(self.vars)
        scope.update(config)
        if input_shape is not None:
            shapes = _as_shape_list(input_shape)
            scope["inputs"] = shapes
            scope["input"] = shapes[0]
            scope["n_inputs"] = len(shapes)
        return scope

    # -- normalisation and validation ----------------------------------------------------------
    def normalize(self, config: Mapping[str, Any], oracle: str = "keras3") -> dict[str, Any]:
        """Fill defaults and expand short forms (an int for a tuple).  Does not validate."""
        merged = self.defaults(oracle)
        merged.update(config)
        env = dict(self.vars, **merged)
        return {k: self._normalize_value(self.params[k], v, env) if k in self.params else v for k, v in merged.items()}

    def _normalize_value(self, p: ParamSpec, value: Any, env: Mapping[str, Any]) -> Any:
        if value is None:
            return p.null_means
        if p.type in ("int_tuple", "float_tuple"):
            if _is_number(value) and p.expand == "repeat":
                return (value,) * int(p.length(env)) if p.length is not None else (value,)
            if isinstance(value, (list, tuple)):
                return tuple(value)
        if p.type == "int_pair_tuple":
            length = int(p.length(env)) if p.length is not None else 1
            if _is_int(value):
                return ((value, value),) * length
            if isinstance(value, (list, tuple)):
                if all(_is_int(v) for v in value) and length > 1:
                    return tuple((v, v) for v in value)
                if length == 1 and len(value) == 2 and all(_is_int(v) for v in value):
                    return ((value[0], value[1]),)
                return tuple(tuple(v) if isinstance(v, (list, tuple)) else v for v in value)
        if p.type == "shape" and isinstance(value, list):
            return tuple(value)
        return value

    def validate(self, config: Mapping[str, Any], oracle: str = "keras3") -> dict[str, Any]:
        """Check a config against every domain and config-stage constraint; return it normalised.

        Raises :class:`SpecTypeError` (a ``TypeError``) or :class:`SpecConfigError` (a ``ValueError``)
        naming the parameter(s) and the rule that was broken.
        """
        for key in config:
            if key not in self.params:
                hint = difflib.get_close_matches(key, list(self.params), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise SpecTypeError(self.name, [key], "unknown_argument", f"unrecognized argument {key!r}{extra}")
        for name, p in self.params.items():
            if p.required and name not in config:
                raise SpecTypeError(self.name, [name], "required", f"missing required argument {name!r}")
        normalized = self.normalize(config, oracle)
        env = dict(self.vars, **normalized)
        for name, p in self.params.items():
            self._check_value(p, normalized[name], env, raw=config.get(name, normalized[name]))
        for c in self.constraints:
            if c.stage == "config":
                self._check_constraint(c, env)
        return normalized

    def validate_input(self, config: Mapping[str, Any], input_shape: Any) -> None:
        """Check the input-stage constraints for an (already validated) config and input shape."""
        env = self.env(self.normalize(config), input_shape)
        for c in self.constraints:
            if c.stage == "input":
                self._check_constraint(c, env)

    def broken_rules(self, config: Mapping[str, Any], input_shape: Any = None) -> list[str]:
        """Every rule a config (and input shape) breaks -- not only the first; used by strategies."""
        broken: list[str] = []
        for key in config:
            if key not in self.params:
                broken.append("unknown_argument")
        for name, p in self.params.items():
            if p.required and name not in config:
                broken.append("required")
        known = {k: v for k, v in config.items() if k in self.params}
        normalized = self.normalize(known)
        env = dict(self.vars, **normalized)
        for name, p in self.params.items():
            if name not in normalized:
                continue
            try:
                self._check_value(p, normalized[name], env, raw=known.get(name, normalized[name]))
            except (SpecConfigError, SpecTypeError) as exc:
                broken.append(exc.rule)
        if any(rule.endswith(".type") for rule in broken):
            return broken  # constraints are not meaningful on ill-typed values
        for c in self.constraints:
            if c.stage == "input" and input_shape is None:
                continue
            scope = self.env(normalized, input_shape) if c.stage == "input" else env
            try:
                self._check_constraint(c, scope)
            except (SpecConfigError, TypeError, ValueError):
                broken.append(c.name)
        return broken

    def _check_constraint(self, c: Constraint, env: Mapping[str, Any]) -> None:
        try:
            ok = c.rule(env)
        except ExprError as exc:
            raise SpecConfigError(self.name, c.params, c.name, f"{c.message} ({exc})") from None
        if not ok:
            values = ", ".join(f"{p}={env.get(p, env.get('input'))!r}" for p in c.params)
            raise SpecConfigError(self.name, c.params, c.name, f"{c.message} (got {values})")

    def _check_value(self, p: ParamSpec, value: Any, env: Mapping[str, Any], raw: Any) -> None:
        def type_error(expected: str) -> SpecTypeError:
            return SpecTypeError(self.name, [p.name], f"{p.name}.type", f"{p.name!r} must be {expected}, got {raw!r}")

        def domain_error(edge: str, got: Any) -> SpecConfigError:
            return SpecConfigError(
                self.name, [p.name], f"{p.name}.{edge}", f"{p.name!r} must be {p.domain.describe()}, got {got!r}"
            )

        if value is None:
            if p.nullable or p.type == "any":
                return
            raise type_error(f"a {p.type.replace('_', ' ')} (not None)")
        t = p.type
        if t == "int":
            if not _is_int(value):
                raise type_error("an int")
        elif t == "float":
            if not _is_number(value):
                raise type_error("a number")
        elif t == "bool":
            if not isinstance(value, bool):
                raise type_error("a bool")
        elif t in ("str", "dtype"):
            if not isinstance(value, str):
                raise type_error("a string")
        elif t in ("int_tuple", "float_tuple", "int_pair_tuple", "shape"):
            scalar_ok = _is_int if t in ("int_tuple", "shape") else _is_number
            expected_len = int(p.length(env)) if p.length is not None else None
            if not isinstance(value, tuple):
                raise type_error(f"a tuple of {expected_len or 'n'}" + (" (or a single int)" if p.expand else ""))
            if expected_len is not None and len(value) != expected_len:
                raise SpecConfigError(
                    self.name, [p.name], f"{p.name}.length", f"{p.name!r} must have {expected_len} entries, got {raw!r}"
                )
            elements = [x for pair in value for x in pair] if t == "int_pair_tuple" else list(value)
            if t == "shape":
                elements = [x for x in elements if x is not None]  # None is an unknown dimension
            if t == "int_pair_tuple" and not all(isinstance(pair, tuple) and len(pair) == 2 for pair in value):
                raise type_error("an int, a tuple of ints, or a tuple of (before, after) pairs")
            if not all(scalar_ok(x) for x in elements):
                raise type_error("a tuple of " + ("ints" if scalar_ok is _is_int else "numbers"))
            for x in elements:
                edge = p.domain.violation(x)
                if edge is not None:
                    raise domain_error(edge, raw)
            return
        elif t in _NAMED_OBJECT_TYPES:
            if not isinstance(value, (str, Mapping)) and not callable(value):
                raise type_error(f"the name of a Keras {t}, its config dict, or a callable")
            if isinstance(value, str) and p.domain.choices is not None and value not in p.domain.choices:
                raise domain_error("choices", value)
            return
        edge = p.domain.violation(value)
        if edge is not None:
            raise domain_error(edge, value)

    # -- shape rules ----------------------------------------------------------------------------
    def output_shape(self, config: Mapping[str, Any], input_shape: Any) -> Any:
        """Output shape (tuple; list of tuples for several outputs) by the spec's rule."""
        env = self.env(self.normalize(config), input_shape)
        return _as_shape(self.output_shape_rule(env))

    def oracle_limit(self, config: Mapping[str, Any], oracle: str, check: str | None = None,
                     dtype: str | None = None) -> OracleLimit | None:
        """The oracle limit that keeps this config from being compared in ``check`` and ``dtype``, if any."""
        env = dict(self.vars, **self.normalize(config, oracle))
        for limit in self.oracle_limits:
            if limit.applies(oracle, check, dtype) and limit.when.names <= env.keys() and limit.hits(env):
                return limit
        return None

    def magnitude_degrees(self, quantity: str, config: Mapping[str, Any]) -> tuple[int, ...] | None:
        """The degrees in the input scale of the terms ``quantity`` is made of, for this config
        (``numerics.magnitude_degree``); None where the spec gives none (the policy's default rule)."""
        rule = self.magnitude_degree_rules.get(quantity)
        if rule is None:
            return None
        value = rule(self.env(self.normalize(config)))
        return tuple(int(d) for d in value) if isinstance(value, (list, tuple)) else (int(value),)

    def reduction_terms(self, config: Mapping[str, Any], input_shapes: Sequence[Sequence[Any]]) -> int:
        """How many terms each output element sums (``numerics.length``; 1 where the spec gives none):
        the tolerance policy scales with it, and edge inputs keep that many extreme terms finite."""
        if self.reduction_length is None:
            return 1
        env = self.env(self.normalize(config), [(None, *s[1:]) for s in input_shapes])
        return max(int(self.reduction_length(env) or 1), 1)

    def oracle_compute_dtype(self, config: Mapping[str, Any], oracle: str, dtype: str) -> str:
        """The dtype ``oracle`` really computes in for a layer of dtype policy ``dtype``."""
        env = dict(self.vars, **self.normalize(config, oracle))
        for p in self.oracle_precision:
            if p.applies(oracle, dtype, env):
                return p.computes_in
        return compute_dtype(dtype)

    def weight_shapes(
        self, config: Mapping[str, Any], input_shape: Any, oracle: str | None = None
    ) -> list[tuple[str, tuple[int, ...]]]:
        """``(name, shape)`` of every weight, in Keras order, for this config and input shape; names
        as ``oracle`` spells them when given."""
        env = self.env(self.normalize(config), input_shape)
        return [(w.name_in(oracle), tuple(w.shape(env))) for w in self.built_weights(config, input_shape)]

    def built_weights(self, config: Mapping[str, Any], input_shape: Any) -> list[WeightSpec]:
        """The weights a layer of this config builds on this input shape, in Keras order."""
        env = self.env(self.normalize(config), input_shape)
        return [w for w in self.weights if w.when is None or w.when(env)]

    def output_mask_shape(self, config: Mapping[str, Any], input_shape: Any) -> Any:
        if self.output_mask_rule is None:
            return None
        return _as_shape(self.output_mask_rule(self.env(self.normalize(config), input_shape)))


def _as_shape(value: Any) -> Any:
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple)) for v in value):
        return [tuple(v) for v in value]
    return tuple(value)


def _as_shape_list(input_shape: Any) -> list[tuple[Any, ...]]:
    if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
        return [tuple(s) for s in input_shape]
    return [tuple(input_shape)]
