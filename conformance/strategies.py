"""Hypothesis strategies built from a LayerSpec: valid configs, inputs, and configs that break one rule.

Valid configs are valid *by construction*: each parameter is drawn from its domain and every
config-stage constraint that the draw breaks is repaired with the constraint's own ``repair``
assignments from the spec -- nothing is filtered with ``assume``.  Parameters whose valid values
depend on the input (``draw.from_input``) are drawn after the input shape.  Every draw is
labelled with the parameter's name so a falsifying example reads like a config.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from keraspec.spec import EDGE_VALUES, Constraint, LayerSpec, OracleLimit, ParamSpec, compute_dtype
from keraspec.spec.expr import compile_expr
from keraspec.spec.loader import objects as spec_objects

#: Values drawn for named-object parameters when the spec gives no draw.choices (spec/objects.yaml).
NAMED_CHOICES: dict[str, list[Any]] = {kind: list(values) for kind, values in spec_objects()["draw"].items()}
#: Input magnitudes (powers of two) drawn per compute dtype: unit scale first (where shrinking
#: goes), then values towards the dtype's underflow and overflow, so casts to a narrower dtype and
#: accumulation in the wrong one show.  float16 tops out at 65504: 2**10-scaled inputs summed over a
#: kernel reach it; bfloat16 has float32's range and float16's problems of precision.
MAGNITUDES: dict[str, tuple[int, ...]] = {
    "float16": (0, -8, 10),
    "bfloat16": (0, -40, 40),
    "float32": (0, -40, 40),
    "float64": (0, -100, 100),
}
#: What a case's input elements are (``Case.values``): ``normal`` -- standard normal times
#: 2**magnitude; ``ties`` -- integers in [-2, 2] times 2**magnitude, so windows and rows hold equal
#: maxima and where a max-like layer sends its gradient shows; ``edge`` -- normal values with some
#: elements set to the special values the spec feeds the layer (``numerics.edge_values``: NaN, the
#: infinities, both zeros, towards overflow and underflow of the compute dtype).
INPUT_VALUES = ("normal", "ties", "edge")
#: Compute dtypes from the narrowest range and precision to the widest.
NARROWEST_FIRST = ("float16", "bfloat16", "float32", "float64")
#: The share of an ``edge`` input's elements set to a special value (at least one of each value
#: where the input has room for them).
EDGE_FRACTION = 1 / 8
MAX_BATCH = 3
MAX_DIM = 5
REPAIR_ROUNDS = 4


class SpecStrategyError(RuntimeError):
    """The spec cannot produce a valid draw (a repair that does not repair): a spec bug."""


@dataclass(frozen=True)
class Case:
    """One drawn example: everything needed to rebuild it, nothing computed."""

    layer: str
    config: dict[str, Any]
    input_shapes: tuple[tuple[int, ...], ...]
    dtype: str
    seed: int
    training: bool = False
    mask_holes: bool = False
    #: Inputs are drawn at unit scale and multiplied by 2**magnitude (exact in every dtype).
    magnitude: int = 0
    #: What the input elements are: one of INPUT_VALUES.
    values: str = "normal"
    #: The call arguments (the spec's ``call.arguments``), passed to every call of the layer.
    call: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """The config and the call arguments together: every drawn choice of the case."""
        return {**self.config, **self.call}

    def describe(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "config": self.config,
            "input_shapes": [list(s) for s in self.input_shapes],
            "dtype": self.dtype,
            "seed": self.seed,
            "training": self.training,
            "magnitude": self.magnitude,
            # Only when special: the keys of ordinary cases (and the corpus recorded with them) stay.
            **({"values": self.values} if self.values != "normal" else {}),
            **({"call": self.call} if self.call else {}),
        }

    def key(self) -> str:
        return repr(sorted(self.describe().items(), key=lambda kv: kv[0]))


@dataclass(frozen=True)
class Rule:
    """A rule a config can break: a parameter's domain edge or type, or a named constraint."""

    id: str  # "units.min", "units.type", "strides_vs_dilation", ...
    params: tuple[str, ...]
    kind: str  # domain | type | length | constraint
    stage: str = "config"
    oracle_accepts: Mapping[str, str] = field(default_factory=dict)


# -- single parameters ---------------------------------------------------------------------------
def _bounds(p: ParamSpec, lo_default: float, hi_span: float) -> tuple[float, float]:
    lo = p.domain.min if p.domain.min is not None else lo_default
    if p.domain.min_exclusive:
        lo = lo + (1 if p.type in ("int", "int_tuple", "shape") else 1e-3)
    lo = max(lo, p.draw.get("min", lo))
    hi = p.domain.max if p.domain.max is not None else lo + hi_span
    if p.domain.max_exclusive:
        hi = hi - (1 if p.type in ("int", "int_tuple", "shape") else 1e-3)
    hi = min(hi, p.draw.get("max", hi))
    return lo, max(lo, hi)


def _scalar(p: ParamSpec) -> st.SearchStrategy[Any]:
    if "choices" in p.draw:
        return st.sampled_from(list(p.draw["choices"]))
    if p.domain.choices is not None:
        return st.sampled_from(list(p.domain.choices))
    if p.type in ("int", "int_tuple", "shape"):
        lo, hi = _bounds(p, 0, 6)
        return st.integers(int(lo), int(hi))
    if p.type in ("float", "float_tuple"):
        lo, hi = _bounds(p, -2.0, 4.0)
        # Bounds rounded inwards to float32, which hypothesis requires for width=32 draws.
        lo32, hi32 = np.float32(lo), np.float32(hi)
        lo32 = lo32 if lo32 >= lo else np.nextafter(lo32, np.float32(np.inf))
        hi32 = hi32 if hi32 <= hi else np.nextafter(hi32, np.float32(-np.inf))
        return st.floats(float(lo32), float(hi32), allow_nan=False, allow_infinity=False, width=32,
                         exclude_min=bool(p.domain.min_exclusive and lo32 == p.domain.min),
                         exclude_max=bool(p.domain.max_exclusive and hi32 == p.domain.max))
    if p.type == "bool":
        return st.booleans()
    if p.type in NAMED_CHOICES:
        return st.sampled_from(NAMED_CHOICES[p.type])
    return st.just(p.default)


def param_values(p: ParamSpec, env: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """Valid values of one parameter (short forms included, e.g. an int for a tuple)."""
    kind = p.draw.get("kind")
    if kind == "permutation":
        lo, hi = int(p.draw.get("min", 1)), int(p.draw.get("max", 4))
        return st.integers(lo, hi).flatmap(lambda n: st.permutations(list(range(1, n + 1)))).map(tuple)
    if p.type in ("int_tuple", "float_tuple"):
        n = int(p.length(env)) if p.length is not None else 2
        tuples = st.tuples(*[_scalar(p)] * n)
        return st.one_of(_scalar(p), tuples) if p.expand == "repeat" else tuples
    if p.type == "int_pair_tuple":
        n = int(p.length(env)) if p.length is not None else 1
        pair = st.tuples(_scalar(p), _scalar(p))
        forms = [_scalar(p), st.tuples(*[pair] * n)]
        if n > 1:
            forms.append(st.tuples(*[_scalar(p)] * n))
        else:
            forms.append(pair)
        return st.one_of(*forms)
    if p.type == "shape":
        base = st.lists(_scalar(p), min_size=1, max_size=3).map(tuple)
    else:
        base = _scalar(p)
    if p.nullable and p.type not in NAMED_CHOICES:
        base = st.one_of(st.none(), base)
    return base


@st.composite
def valid_configs(draw: st.DrawFn, spec: LayerSpec, oracle: str = "keras3",
                  forced: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A config that passes ``spec.validate``: defaults left out sometimes, everything else drawn
    (``forced`` values are set, not drawn; a constraint's repair may still change them)."""
    env: dict[str, Any] = dict(spec.vars)
    config: dict[str, Any] = {}
    for name, p in spec.params.items():
        if p.draw.get("from_input") or not p.in_oracle(oracle):
            continue
        if forced and name in forced:
            config[name] = forced[name]
            continue
        env_now = {**env, **spec.normalize(config, oracle)}
        if p.required or draw(st.booleans(), label=f"{name} given"):
            config[name] = draw(param_values(p, env_now), label=name)
    return repair(spec, config, oracle)


# -- covering the choices ------------------------------------------------------------------------------
def choice_values(p: ParamSpec) -> list[Any] | None:
    """Every value a choice parameter can take as the strategies draw it: its draw choices, its domain
    choices, both booleans, or the named objects drawn for its type; None for other parameters."""
    if p.draw.get("from_input"):
        return None
    if "choices" in p.draw:
        return list(p.draw["choices"])
    if p.domain.choices is not None:
        return list(p.domain.choices)
    if p.type == "bool":
        return [False, True]
    if p.type in NAMED_CHOICES:
        return list(NAMED_CHOICES[p.type])
    return None


def choice_params(spec: LayerSpec, oracle: str) -> dict[str, list[Any]]:
    """The layer's choice parameters (for ``oracle``) and their values, call arguments included."""
    out = {}
    for name, p in {**spec.params, **spec.call_arguments}.items():
        values = choice_values(p) if p.in_oracle(oracle) else None
        if values and len(values) > 1:
            out[name] = values
    return out


#: The dtype policies in which the covering cases enumerate every named object (activation,
#: initializer, regularizer, constraint) for every layer.  In the others (half precision, mixed) the
#: covering budget goes to the layer's own choices -- the named objects are the same code in every
#: layer and are still drawn there -- except in a layer whose only choices are named objects (the
#: Activation layer), which enumerates them in every policy.
NAMED_OBJECT_COVERAGE_DTYPES = ("float32", "float64")


def covered_choice_params(spec: LayerSpec, oracle: str, dtype: str | None = None) -> dict[str, list[Any]]:
    """The choice parameters the covering cases of ``dtype`` enumerate (see NAMED_OBJECT_COVERAGE_DTYPES)."""
    params = choice_params(spec, oracle)
    if dtype is None or dtype in NAMED_OBJECT_COVERAGE_DTYPES:
        return params
    named = {**spec.params, **spec.call_arguments}
    own = {k: v for k, v in params.items() if named[k].type not in NAMED_CHOICES}
    return own or params


def covering_assignments(spec: LayerSpec, oracle: str, dtype: str | None = None) -> list[dict[str, Any]]:
    """Assignments that together give every choice parameter every value: the i-th sets each choice
    parameter to one of its values, each parameter cycling through its own list from its own offset
    (so that, e.g., use_bias=False does not always meet the first activation), and there are as many
    as the longest choice list has values."""
    params = covered_choice_params(spec, oracle, dtype)
    n = max((len(v) for v in params.values()), default=0)
    return [{name: values[(i + offset) % len(values)] for offset, (name, values) in enumerate(params.items())}
            for i in range(n)]


def covered_values(spec: LayerSpec, oracle: str, configs: list[Mapping[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """Per choice parameter, its values that ``configs`` cover and those they miss (as Keras sees them:
    None and its ``null_means`` are one value)."""
    out: dict[str, dict[str, list[Any]]] = {}
    normalized = [spec.normalize(c, oracle) for c in configs]
    for name, values in choice_params(spec, oracle).items():
        p = spec.params.get(name) or spec.call_arguments[name]
        seen = [n.get(name) for n in normalized]

        def present(v: Any) -> bool:
            want = p.null_means if v is None else v
            return any(x == want or (isinstance(x, tuple) and list(x) == want) for x in seen)

        out[name] = {"covered": [v for v in values if present(v)], "missing": [v for v in values if not present(v)]}
    return out


def repair(spec: LayerSpec, config: dict[str, Any], oracle: str = "keras3") -> dict[str, Any]:
    """Apply constraints' repair assignments until every config-stage constraint holds."""
    config = dict(config)
    for _ in range(REPAIR_ROUNDS):
        env = dict(spec.vars, **spec.normalize(config, oracle))
        # Constraints on parameters not drawn yet (drawn from the input later) wait for them.
        broken: list[Constraint | OracleLimit] = [
            c for c in spec.constraints if c.stage == "config" and c.rule.names <= env.keys() and not _holds(c, env)]
        # A config the oracle cannot run is valid, but there is nothing to compare it with.  (Limits
        # on one check or dtype are left to that check: the config is still good for the others.)
        broken += [lim for lim in spec.oracle_limits
                   if lim.whole_config and lim.applies(oracle) and lim.when.names <= env.keys() and lim.hits(env)]
        if not broken:
            return config
        for c in broken:
            if not c.repair:
                raise SpecStrategyError(f"{spec.name}: constraint {c.name} is broken by a draw and has no repair")
            for param, expr in c.repair.items():
                config[param] = expr(env)
                env = dict(spec.vars, **spec.normalize(config, oracle))
    raise SpecStrategyError(f"{spec.name}: repairs do not converge for {config}")


def _holds(c: Constraint, env: Mapping[str, Any]) -> bool:
    try:
        return bool(c.rule(env))
    except Exception:  # noqa: BLE001 - a rule that cannot be evaluated on this draw is broken
        return False


# -- inputs ----------------------------------------------------------------------------------------
@st.composite
def input_shapes(draw: st.DrawFn, spec: LayerSpec, config: Mapping[str, Any]) -> tuple[tuple[int, ...], ...]:
    """Concrete input shapes (batch first) compatible with the config."""
    env = dict(spec.vars, **spec.normalize(config))
    i = spec.input
    count = draw(st.integers(i.min_count, i.max_count), label="n_inputs") if i.max_count > i.min_count else i.min_count
    env["n_inputs"] = count
    if count == 0:
        return ()
    rank = int(i.rank(env)) if i.rank is not None else draw(st.integers(i.min_rank, i.max_rank), label="rank")
    env["rank"] = rank
    mins = list(i.min_sizes(env)) if i.min_sizes is not None else [1] * (rank - 1)
    forced = list(i.sizes(env)) if i.sizes is not None else [None] * (rank - 1)
    batch = draw(st.integers(1, MAX_BATCH), label="batch")

    def one_shape() -> tuple[int, ...]:
        dims = []
        for axis in range(rank - 1):
            if forced[axis] is not None:
                dims.append(int(forced[axis]))
                continue
            lo = max(1, int(mins[axis] or 1))
            dims.append(draw(st.integers(lo, lo + MAX_DIM - 1), label=f"dim{axis + 1}"))
        for axis_text, multiple_expr in i.multiple_of.items():
            axis = int(axis_text)
            m = int(multiple_expr(env))
            dims[axis] = max(m, (dims[axis] + m - 1) // m * m)
        return (batch, *dims)

    first = one_shape()
    shapes = [list(first)] + [list(first) if i.same_shape else list(one_shape()) for _ in range(count - 1)]
    for group in i.tie:  # members share the first present member's size
        present = [(k, axis) for k, axis in group if k < count]
        for k, axis in present[1:]:
            shapes[k][axis] = shapes[present[0][0]][present[0][1]]
    return tuple(tuple(s) for s in shapes)


def _factorizations(total: int) -> list[tuple[int, ...]]:
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    out = [(total,)]
    out += [(a, total // a) for a in divisors]
    out += [(a, b, total // (a * b)) for a in divisors for b in divisors if total % (a * b) == 0]
    return out


def _input_dependent(draw: st.DrawFn, spec: LayerSpec, config: dict[str, Any], shapes: tuple[tuple[int, ...], ...]) -> dict[str, Any]:
    config = dict(config)
    for name, p in spec.params.items():
        source = p.draw.get("from_input")
        if not source:
            continue
        dims = compile_expr(source)(spec.env(spec.normalize(config), [(None, *s[1:]) for s in shapes]))
        if p.draw.get("kind") == "broadcast_of":
            # Each entry either matches the input's size or is 1 (shared along that axis).
            config[name] = tuple(
                draw(st.sampled_from([d, 1]) if d is not None else st.sampled_from([None, 1]), label=f"{name}[{i}]")
                for i, d in enumerate(dims))
        elif p.draw.get("kind") == "reshape_of":
            total = int(np.prod(dims))
            target = list(draw(st.sampled_from(_factorizations(total)), label=f"{name} factors"))
            if draw(st.booleans(), label=f"{name} uses -1"):
                target[draw(st.integers(0, len(target) - 1), label=f"{name} -1 at")] = -1
            config[name] = tuple(target)
        else:
            raise SpecStrategyError(f"{spec.name}.{name}: unknown draw kind {p.draw.get('kind')!r}")
    return config


@lru_cache(maxsize=512)
def covering_cases(spec: LayerSpec, oracle: str, dtype: str) -> tuple[Case, ...]:
    """Explicit cases that run every value of every choice parameter at least once (for ``oracle``),
    at unit input magnitude so that a wrong value shows: one case per covering assignment, then one
    per value a repair took away; one case where each parameter with an ``effective`` rule has an
    effect; and one case per other input magnitude.  Each is drawn with a fixed seed, so every check
    of a target sees the same cases.  A value still missing is one the spec's rules do not allow for
    this oracle (a constraint or a whole-config oracle limit)."""
    out: list[Case] = []
    for assignment in covering_assignments(spec, oracle, dtype):
        out.append(_one_case(spec, oracle, dtype, assignment, len(out)))
    enumerated = covered_choice_params(spec, oracle, dtype)
    for name, cover in covered_values(spec, oracle, [c.settings() for c in out]).items():
        if name not in enumerated:
            continue
        for value in cover["missing"]:
            out.append(_one_case(spec, oracle, dtype, {name: value}, len(out)))
    # Parameters that only matter together with others (or with some inputs): a case where each has
    # an effect, with each of its non-default choice values; a few seeds are tried for inputs that
    # give the effect (e.g. a rank above 2 for Flatten's data_format).
    for name, p in spec.params.items():
        if p.effective_when is None or not p.in_oracle(oracle):
            continue
        make = {k: expr(dict(spec.vars)) for k, expr in p.effective_make.items() if spec.params[k].in_oracle(oracle)}
        values = [v for v in (choice_values(p) or [None]) if v is None or v != p.default]
        for value in values:
            forced = dict(make) if value is None else {**make, name: value}
            for attempt in range(EFFECTIVE_ATTEMPTS):
                case = _one_case(spec, oracle, dtype, forced, len(out) + 1000 * attempt)
                if effective_params(spec, oracle, [case]).get(name):
                    out.append(case)
                    break
    if spec.input.indices is None:  # indices are never scaled
        for magnitude in MAGNITUDES[compute_dtype(dtype)][1:]:
            out.append(_one_case(spec, oracle, dtype, {}, len(out), magnitude))
    return tuple(out)


#: Seeds tried for a case where a parameter with an ``effective`` rule has an effect.
EFFECTIVE_ATTEMPTS = 8


def effective_params(spec: LayerSpec, oracle: str, cases: list[Case]) -> dict[str, bool]:
    """Per parameter with an ``effective`` rule: whether any of ``cases`` gives it an effect (the
    rule sees the config and the case's ``input`` shape)."""
    out = {}
    for name, p in spec.params.items():
        if p.effective_when is None or not p.in_oracle(oracle):
            continue
        hits = False
        for case in cases:
            try:
                env = spec.env(spec.normalize(case.config, oracle), [(None, *s[1:]) for s in case.input_shapes] or None)
                hits = bool(p.effective_when(env))
            except Exception:  # noqa: BLE001 - a rule that cannot apply to this case: not effective here
                hits = False
            if hits:
                break
        out[name] = hits
    return out


def _one_case(spec: LayerSpec, oracle: str, dtype: str, forced: Mapping[str, Any], index: int,
              magnitude: int = 0) -> Case:
    drawn: list[Case] = []

    # Hypothesis's first example is the simplest one (every size 1, every default); the later ones are
    # random draws, which is what a covering case should be.
    @settings(max_examples=3, database=None, deadline=None, phases=[Phase.generate])
    @hypothesis_seed(index)
    @given(cases(spec, oracle, dtype, forced=forced, magnitude=magnitude))
    def draw_one(case: Case) -> None:
        drawn.append(case)

    draw_one()
    return drawn[-1]


@st.composite
def cases(draw: st.DrawFn, spec: LayerSpec, oracle: str, dtype: str, training: bool | None = None,
          forced: Mapping[str, Any] | None = None, magnitude: int | None = None) -> Case:
    """A valid case: config, input shapes, seed for values, and the training flag."""
    config = draw(valid_configs(spec, oracle, forced), label="config")
    shapes = draw(input_shapes(spec, config), label="input_shapes")
    config = repair(spec, _input_dependent(draw, spec, config, shapes), oracle)
    call = {name: forced[name] if forced and name in forced else draw(st.sampled_from(choice_values(p) or [p.default]),
                                                                          label=name)
            for name, p in spec.call_arguments.items() if p.in_oracle(oracle)}
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    if training is None:
        training = draw(st.booleans(), label="training")
    if spec.input.indices is not None:
        magnitude = 0  # indices are never scaled
    elif magnitude is None:  # unit scale half the time: it is where most wrong values show
        wide = MAGNITUDES[compute_dtype(dtype)]
        magnitude = draw(st.sampled_from((wide[0],) * (len(wide) - 1) + wide), label="magnitude")
    return Case(spec.name, config, shapes, dtype, seed, training, magnitude=magnitude, call=call)


# -- values ----------------------------------------------------------------------------------------
def make_inputs(spec: LayerSpec, case: Case) -> list[np.ndarray]:
    """Input arrays for a case, a pure function of its seed (so a corpus can regenerate them)."""
    rng = np.random.default_rng(case.seed)
    if spec.input.indices is not None:
        return [index_values(spec, case.config, rng, shape) for shape in case.input_shapes]
    np_dtype = np.float64 if case.dtype == "float64" else np.float32
    if case.values == "ties":
        arrays = [(rng.integers(-2, 3, shape) * 2.0**case.magnitude).astype(np_dtype) for shape in case.input_shapes]
    else:
        arrays = [(rng.standard_normal(shape) * 2.0**case.magnitude).astype(np_dtype) for shape in case.input_shapes]
    planted = spec.behaviour.input_values
    if planted is not None:
        # Whole steps (every feature of a position) and single elements set to the config's value.
        value = spec.normalize(case.config)[planted.param]
        for a in arrays:
            a[rng.random(a.shape[:-1]) < planted.step_fraction] = value
            a[rng.random(a.shape) < planted.element_fraction] = value
    if case.values == "edge":
        kinds = spec.edge_values
        # In the narrowest precision an oracle computes this case in: a float64 layer that TF resizes
        # in float32 is fed float32's extremes, not values that overflow in the oracle's cast.
        precision = min((spec.oracle_compute_dtype(case.config, oracle, case.dtype) for oracle in spec.oracles),
                        key=lambda d: NARROWEST_FIRST.index(d), default=compute_dtype(case.dtype))
        table = edge_value_table(precision, spec.reduction_terms(case.config, case.input_shapes))
        for a in arrays:
            flat = a.reshape(-1)  # a view: setting it sets the input
            n = min(flat.size, max(len(kinds), int(flat.size * EDGE_FRACTION)))
            where = rng.choice(flat.size, n, replace=False)
            flat[where] = [table[kinds[i % len(kinds)]] for i in range(n)]
    return arrays


#: Factor of headroom below overflow that the largest edge value of a reduction keeps per term, for
#: weights up to this size.
EDGE_WEIGHT_HEADROOM = 16


def index_values(spec: LayerSpec, config: Mapping[str, Any], rng: np.random.Generator, shape: Any) -> np.ndarray:
    """Integer indices in the spec's [low, high) for this config, in its index dtype."""
    indices = spec.input.indices
    assert indices is not None
    env = spec.env(spec.normalize(config))
    low = int(indices.low(env))
    # A config that breaks a rule (input_dim 0) still gets inputs: the oracle is to refuse the config.
    return rng.integers(low, max(int(indices.high(env)), low + 1), shape).astype(indices.dtype)


def edge_value_table(dtype: str, reduction_terms: int = 1) -> dict[str, float]:
    """Each of the spec's EDGE_VALUES as a number of ``dtype`` (exact in the float32 or float64 array
    that carries it to the layer, which casts it to its compute dtype).

    ``max`` is the dtype's largest finite value where an output element is one term; where it sums
    ``reduction_terms`` terms it is the largest power-of-two fraction of it that cannot overflow the
    sum however it is ordered (weights up to EDGE_WEIGHT_HEADROOM): whether a sum of several
    near-overflow terms overflows depends on the order of summation, which is no implementation's
    contract, while infinity and NaN propagate through a sum in any order alike."""
    if dtype == "bfloat16":  # float32's exponent range with 8 significant bits; numpy has no bfloat16
        big, tiny, subnormal = (2.0 - 2.0**-7) * 2.0**127, 2.0**-126, 2.0**-133
    else:
        info = np.finfo(dtype)
        big, tiny, subnormal = float(info.max), float(info.smallest_normal), float(info.smallest_subnormal)
    if reduction_terms > 1:
        big /= 2.0 ** math.ceil(math.log2(reduction_terms * EDGE_WEIGHT_HEADROOM))
    table = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "0": 0.0, "-0": -0.0,
             "max": big, "-max": -big, "tiny": tiny, "subnormal": subnormal}
    assert set(table) == set(EDGE_VALUES), "edge_value_table lags keraspec.spec.EDGE_VALUES"
    return table


def input_value_cases(spec: LayerSpec, oracle: str, dtype: str, kinds: tuple[str, ...]) -> tuple[Case, ...]:
    """The covering cases again with special input values (``kinds`` of INPUT_VALUES): ties on the
    first one; edge values on each unit-magnitude one, so every choice value (an activation, a
    padding, a layout) meets NaN, the infinities and the extremes.  Nothing for a spec that feeds the
    layer no edge value."""
    # (A layer without choice parameters has no unit-scale covering case: one is drawn for it.)
    covering = [c for c in covering_cases(spec, oracle, dtype) if c.magnitude == 0] or [_one_case(spec, oracle, dtype, {}, 0)]
    out: list[Case] = []
    if "ties" in kinds and covering and spec.input.indices is None:
        out.append(replace(covering[0], values="ties"))
    if "edge" in kinds and spec.edge_values:
        out.extend(replace(c, values="edge") for c in covering)
    return tuple(out)


def unknown_shapes(spec: LayerSpec, case: Case) -> list[tuple[Any, ...]] | None:
    """The case's input shapes with every free axis unknown (None), as ``Input((None, None, 3))``
    declares them: the batch, and each axis whose size no weight is made from and the spec's output
    rule can leave unknown.  None when no axis but the batch is free."""
    if not case.input_shapes:
        return None
    symbolic = [[None, *s[1:]] for s in case.input_shapes]
    arg = [tuple(s) for s in symbolic] if len(symbolic) > 1 else tuple(symbolic[0])
    weights = spec.weight_shapes(case.config, arg)
    # Tied axes (inputs.tie) are one size: they are freed together or not at all.
    groups = {(k, axis): [m for m in group if m[0] < len(symbolic)] for group in spec.input.tie for k, axis in group}
    freed = False
    for k, shape in enumerate(symbolic):
        for axis in range(1, len(shape)):
            if shape[axis] is None:
                continue  # freed with its tie group
            members = groups.get((k, axis), [(k, axis)])
            sizes = [symbolic[m][a] for m, a in members]
            for m, a in members:
                symbolic[m][a] = None
            trial = [tuple(s) for s in symbolic] if len(symbolic) > 1 else tuple(symbolic[0])
            try:
                ok = spec.weight_shapes(case.config, trial) == weights
                spec.output_shape(case.config, trial)
            except Exception:  # noqa: BLE001 - a rule that needs this size: the axis is not free
                ok = False
            if ok:
                freed = True
            else:
                for (m, a), size in zip(members, sizes):
                    symbolic[m][a] = size
    return [tuple(s) for s in symbolic] if freed else None


def probe_inputs(spec: LayerSpec, case: Case) -> list[tuple[str, np.ndarray]]:
    """Inputs a layer built on ``case`` may refuse, as (what, array): one more and one less axis
    where the spec fixes the rank (or its minimum is Keras's own), and a new size on each axis the
    weights are sized from.  A pure function of the case, so a corpus can regenerate them."""
    if len(case.input_shapes) != 1:
        return []
    shape = list(case.input_shapes[0])
    symbolic = (None, *shape[1:])
    env = spec.env(spec.normalize(case.config), [symbolic])
    i = spec.input
    allowed_ranks = {int(i.rank(env))} if i.rank is not None else set(range(i.min_rank, i.max_rank + 1))
    shapes: list[tuple[str, list[int]]] = []
    for rank in (len(shape) + 1, len(shape) - 1):
        if rank > len(shape) and i.extra_batch_axes is not None:
            continue
        refused = i.rank is not None and rank not in allowed_ranks or (i.enforce_min_rank and rank < i.min_rank)
        if rank >= 1 and refused:
            shapes.append((f"rank {rank}", (shape + [2])[:rank] if rank > len(shape) else shape[:rank]))
    weights = spec.weight_shapes(case.config, symbolic)
    for axis in range(1, len(shape)):
        bigger = list(symbolic)
        bigger[axis] = shape[axis] + 1
        try:
            changed = spec.weight_shapes(case.config, tuple(bigger)) != weights
        except Exception:  # noqa: BLE001 - a size the rules cannot take is a refused size too
            changed = True
        if changed and weights:
            wrong = list(shape)
            wrong[axis] += 1
            shapes.append((f"axis {axis} size {wrong[axis]}", wrong))
    rng = np.random.default_rng(case.seed + 11)
    if spec.input.indices is not None:
        probes = [(what, index_values(spec, case.config, rng, s)) for what, s in shapes]
        # An id just outside [low, high) at one place of an otherwise valid input, each side.
        env = spec.env(spec.normalize(case.config))
        for what, value in (("index below low", int(spec.input.indices.low(env)) - 1),
                            ("index at high", int(spec.input.indices.high(env)))):
            ids = index_values(spec, case.config, rng, shape)
            ids.flat[int(rng.integers(ids.size))] = value
            probes.append((what, ids))
        return probes
    np_dtype = np.float64 if case.dtype == "float64" else np.float32
    return [(what, rng.standard_normal(s).astype(np_dtype)) for what, s in shapes]


def make_mask(spec: LayerSpec, case: Case) -> np.ndarray | list[np.ndarray | None]:
    """A boolean input mask of the spec's ``masking.mask_shape`` (default: every axis but the last,
    Keras's (batch, time) for sequences), with holes anywhere -- not only right padding.  Where the
    spec masks several inputs (``masking.inputs``), a list with one mask per input (None for an
    input that takes none)."""
    rng = np.random.default_rng(case.seed + 7)
    rule = compile_expr(spec.masking.get("mask_shape", "input[:-1]"))
    config = spec.normalize(case.config)

    def one(shape_of: tuple[int, ...]) -> np.ndarray:
        mask = rng.random(tuple(rule(spec.env(config, shape_of)))) > 0.3
        if mask.ndim >= 2:
            mask[:, 0] = True  # keep a step per sample so every sample has data
        return mask

    if spec.masked_inputs == (0,):
        return one(case.input_shapes[0])
    return [one(shape) if i in spec.masked_inputs else None for i, shape in enumerate(case.input_shapes)]


# -- rules and invalid configs -----------------------------------------------------------------------
def rules(spec: LayerSpec) -> list[Rule]:
    """Every rule of the spec that a config can break: domain edges, types, lengths, constraints."""
    out: list[Rule] = []
    for name, p in spec.params.items():
        if p.draw.get("from_input"):
            continue
        edges = []
        if p.type in ("int", "float", "int_tuple", "float_tuple", "shape") and p.domain.min is not None:
            edges.append(("min", "domain"))
        if p.type in ("int", "float", "int_tuple", "float_tuple") and p.domain.max is not None:
            edges.append(("max", "domain"))
        if p.type in ("str",) and p.domain.choices is not None:
            edges.append(("choices", "domain"))
        if p.type in ("int_tuple", "float_tuple") and p.length is not None:
            edges.append(("length", "length"))
        if p.type in ("int", "bool"):
            edges.append(("type", "type"))
        for edge, kind in edges:
            out.append(Rule(f"{name}.{edge}", (name,), kind, oracle_accepts=p.accepted_by(edge)))
    for c in spec.constraints:
        if c.violate:
            out.append(Rule(c.name, c.params, "constraint", c.stage, dict(c.oracle_accepts)))
    return out


def _offending_value(p: ParamSpec, rule: Rule, current: Any, env: Mapping[str, Any]) -> Any:
    edge = rule.id.rsplit(".", 1)[1]
    n = int(p.length(env)) if p.length is not None else 1
    if edge == "type":
        return {"int": "3", "bool": "yes"}[p.type]
    if edge == "choices":
        return "not_a_valid_choice"
    if edge == "length":
        return tuple([1] * (n + 1))
    lo, hi = p.domain.min, p.domain.max
    is_int = p.type in ("int", "int_tuple", "shape")
    if edge == "min":
        bad = lo if p.domain.min_exclusive else lo - (1 if is_int else 0.5)
    else:
        bad = hi if p.domain.max_exclusive else hi + (1 if is_int else 0.5)
    if p.type in ("int_tuple", "float_tuple", "shape"):
        base = list(current) if isinstance(current, (list, tuple)) and current else [1] * max(n, 1)
        base[0] = bad
        return tuple(base)
    return bad


@st.composite
def invalid_cases(draw: st.DrawFn, spec: LayerSpec, rule: Rule, oracle: str | None = None) -> tuple[Case, Rule]:
    """A case whose config (or input) breaks exactly ``rule`` and nothing else, drawn from the
    parameters ``oracle`` has (default: keras3, or the one oracle the layer has)."""
    oracle = oracle or ("keras3" if "keras3" in spec.oracles or not spec.oracles else next(iter(spec.oracles)))
    case = draw(cases(spec, oracle, "float32", training=False), label="valid case")
    config = dict(case.config)
    env = spec.env(spec.normalize(config), [(None, *s[1:]) for s in case.input_shapes])
    if rule.kind == "constraint":
        constraint = next(c for c in spec.constraints if c.name == rule.id)
        for param, expr in constraint.violate.items():
            config[param] = expr(env)
    else:
        p = spec.params[rule.params[0]]
        config[p.name] = _offending_value(p, rule, spec.normalize(config).get(p.name), env)
    return Case(spec.name, config, case.input_shapes, case.dtype, case.seed), rule


@st.composite
def limit_cases(draw: st.DrawFn, spec: LayerSpec, oracle: str, limit: OracleLimit) -> Case:
    """A case that is valid by the spec and hits ``limit`` (its ``example`` applied to a valid draw)."""
    config = draw(valid_configs(spec, oracle), label="config")
    env = dict(spec.vars, **spec.normalize(config, oracle))
    config.update({param: expr(env) for param, expr in limit.example.items()})
    shapes = draw(input_shapes(spec, config), label="input_shapes")
    seed = draw(st.integers(0, 2**31 - 1), label="seed")
    return Case(spec.name, config, shapes, limit.dtypes[0] if limit.dtypes else "float32", seed, False)


def names_params(message: str, params: tuple[str, ...]) -> bool:
    """Whether an error message names every parameter of a rule."""
    return all(p in message for p in params)


__all__ = [
    "Case",
    "Rule",
    "SpecStrategyError",
    "cases",
    "choice_params",
    "covered_values",
    "covering_assignments",
    "covering_cases",
    "effective_params",
    "input_shapes",
    "invalid_cases",
    "limit_cases",
    "make_inputs",
    "make_mask",
    "probe_inputs",
    "unknown_shapes",
    "names_params",
    "param_values",
    "repair",
    "rules",
    "valid_configs",
]
