"""The checks: each compares the implementation under test with an oracle run on one case.

A check is a function ``check_X(target, case) -> Measurement`` that raises ``AssertionError``
with a readable message when the implementation disagrees.  Which checks apply to a layer is
decided from its spec (:func:`applicable_checks`), never by layer name.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from keraspec.spec import LayerSpec, Stochastic, compute_dtype

from . import oracle as oracles
from .catalogue import CHECKS, INPUT_VALUE_CHECKS
from .strategies import Case, make_inputs, make_mask, probe_inputs, unknown_shapes
from .tolerance import Comparison, Tolerance, compare, magnitude_scale, tolerance

DEFAULT_IMPL = "keraspec.impl.layers"
#: The semantics an implementation has without being switched: Keras 3's.
DEFAULT_FLAVOR = "keras3"
__all__ = ["CHECKS", "CHECK_FUNCTIONS", "DEFAULT_IMPL", "ImplUnderTest", "Target", "applicable_checks", "oracle_run"]


class NotImplementedLayer(Exception):
    """The implementation under test has no class for this layer."""


@dataclass
class ImplUnderTest:
    """A module exposing Keras-named layer classes that follow the implementation contract."""

    module_name: str = DEFAULT_IMPL

    def __post_init__(self) -> None:
        self.module = importlib.import_module(self.module_name)

    def layer_class(self, name: str) -> type:
        cls = getattr(self.module, name, None)
        if cls is None:
            raise NotImplementedLayer(f"{self.module_name} has no layer {name}")
        return cls

    @contextlib.contextmanager
    def flavor(self, oracle: str) -> Iterator[None]:
        """Run the block under the oracle's semantics, by the module's ``use_flavor(oracle)`` (part of
        the implementation contract).  A module without it can only be compared with the keras3 oracle:
        against tf_keras it would be judged by Keras 2 rules it never switched to, so that is refused."""
        switch = self.use_flavor()
        if switch is None:
            if oracle != DEFAULT_FLAVOR:
                raise ImplContractError(
                    f"{self.module_name} has no use_flavor(name): it cannot be switched to the {oracle} oracle's "
                    f"semantics (Keras 2's hard_sigmoid, defaults, ...); add it (see the README's implementation "
                    f"contract) or run with --oracle {DEFAULT_FLAVOR}")
            yield
            return
        with switch(oracle):
            yield

    def use_flavor(self) -> Callable[[str], Any] | None:
        """The module's ``use_flavor``, or its package's ``flavor.use_flavor``; None if it has neither."""
        switch = getattr(self.module, "use_flavor", None)
        if switch is None and "." in self.module_name:
            try:
                switch = getattr(importlib.import_module(self.module_name.rsplit(".", 1)[0] + ".flavor"), "use_flavor", None)
            except ImportError:
                switch = None
        return switch


class ImplContractError(RuntimeError):
    """The implementation under test lacks something the contract requires for this comparison."""


@dataclass
class Target:
    spec: LayerSpec
    oracle: str
    impl: ImplUnderTest
    device: str
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.spec.name}-{self.oracle}-{self.device}-{self.dtype}"


class ComparisonFailure(AssertionError):
    """A numeric comparison out of tolerance; carries the measured errors for the report."""

    def __init__(self, comparison: Comparison, worst: Measurement):
        super().__init__(comparison.detail)
        self.max_abs_err = max(worst.max_abs_err, comparison.max_abs_err)
        self.max_rel_err = max(worst.max_rel_err, comparison.max_rel_err)
        self.tolerance = comparison.tolerance


@dataclass
class Measurement:
    """What a check measured, for the report: worst errors and the tolerance used."""

    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    tolerance: Tolerance | None = None
    notes: list[str] = field(default_factory=list)
    #: How many z statistics a statistical check tested (each a false alarm with probability
    #: stats.FALSE_ALARM_PER_STATISTIC on a correct implementation), for the report's false-alarm rate.
    statistics: int = 0

    def add(self, c: Comparison) -> None:
        self.max_abs_err = max(self.max_abs_err, c.max_abs_err)
        self.max_rel_err = max(self.max_rel_err, c.max_rel_err)
        self.tolerance = c.tolerance
        if not c.ok:
            raise ComparisonFailure(c, self)


def applicable_checks(spec: LayerSpec) -> list[str]:
    """The checks the spec says apply to a layer."""
    out = ["config", "shapes"]
    if spec.input.max_count > 0:
        out += ["weights", "input_errors", "forward", "gradients"]
        if spec.training != "stochastic":
            out.append("forward_training")
        if spec.behaviour.stochastic is not None:
            out.append("stochastic")
        if spec.weights:
            out.append("training_step")
        if any(w.initializer for w in spec.weights):
            out.append("initial_weights")
        if spec.masking.get("supports") or spec.masking.get("output"):
            out.append("masks")
    return [c for c in CHECKS if c in out]


# -- oracle runs, memoised: every check of one case shares one oracle build ----------------------
_CORPUS: Any = None  # a keraspec.conformance.corpus.Corpus when replaying


def use_corpus(corpus: Any) -> None:
    """Answer oracle runs from a recorded corpus instead of the live oracle."""
    global _CORPUS
    _CORPUS = corpus


def replaying() -> bool:
    return _CORPUS is not None


_ORACLE_CACHE: OrderedDict[tuple[str, str, bool, bool], oracles.OracleRun] = OrderedDict()
_ORACLE_CACHE_SIZE = 256


def oracle_run(target: Target, case: Case, training: bool, with_mask: bool = False) -> oracles.OracleRun:
    if _CORPUS is not None:
        return _CORPUS.run(target.oracle, case, training, with_mask)
    key = (target.oracle, case.key(), training, with_mask)
    if key in _ORACLE_CACHE:
        _ORACLE_CACHE.move_to_end(key)
        return _ORACLE_CACHE[key]
    adapter = oracles.get(target.oracle)
    inputs = make_inputs(target.spec, case)
    mask = make_mask(target.spec, case) if with_mask else None
    # The inference run also calls the built layer on the probe inputs (the input_errors check), and
    # the run the gradients check uses takes the training step.
    # A case of special input values runs only the checks that look at values (INPUT_VALUE_CHECKS):
    # the oracle skips what no other check of it reads.
    checks = CHECKS if case.values == "normal" else INPUT_VALUE_CHECKS[case.values]
    plain = not (training or with_mask)
    probes = [x for _, x in probe_inputs(target.spec, case)] if plain and "input_errors" in checks else []
    step = not with_mask and training == gradient_training(target.spec, case) and "training_step" in checks
    unknown = unknown_shapes(target.spec, case) if plain and "shapes" in checks else None
    run = adapter.run(target.spec, case.config, inputs, case.dtype, training, weight_seed=case.seed + 1,
                      cotangent_seed=case.seed + 2, input_mask=mask, probes=probes, step=step, unknown_shapes=unknown,
                      call_arguments=case.call)
    _ORACLE_CACHE[key] = run
    if len(_ORACLE_CACHE) > _ORACLE_CACHE_SIZE:
        _ORACLE_CACHE.popitem(last=False)
    return run


def gradient_training(spec: LayerSpec, case: Case) -> bool:
    """The training flag of the gradients and training-step checks: the case's, except for a stochastic
    layer, whose training draws differ by construction (its gradients are compared in inference)."""
    return case.training and spec.training != "stochastic"


def require_oracle_ok(run: oracles.OracleRun, case: Case) -> None:
    if run.error is not None:
        raise AssertionError(f"the oracle rejected a config the spec calls valid: {run.error}; case {case.describe()}")


# -- running ours ---------------------------------------------------------------------------------
@dataclass
class OursRun:
    layer: Any
    outputs: list[np.ndarray]
    output_mask: np.ndarray | None
    grad_inputs: list[np.ndarray]
    grad_weights: list[np.ndarray]
    losses: list[float]
    #: Gradients of the stored weights (keras_weights()), in their stored layout.
    raw_weight_grads: list[torch.Tensor | None]


def construct_ours(target: Target, config: Mapping[str, Any]) -> Any:
    cls = target.impl.layer_class(target.spec.name)
    with target.impl.flavor(target.oracle):
        return cls(**dict(config), dtype=target.dtype)


_OURS_CACHE: OrderedDict[tuple[Any, ...], OursRun] = OrderedDict()
_OURS_CACHE_SIZE = 64


def run_ours(target: Target, case: Case, run: oracles.OracleRun, training: bool, with_mask: bool = False,
             layer: Any = None) -> OursRun:
    """Build ours, load the oracle's weights, run forward and backward with the oracle's cotangent.

    Without a ``layer`` the run is memoised like the oracle's, so the forward, gradients,
    training-step and input-error checks of one case share one build and one backward pass (a
    check that changes the layer restores its weights)."""
    if layer is not None:
        return _run_ours(target, case, run, training, with_mask, layer)
    key = (target.id, target.impl.module_name, case.key(), training, with_mask, id(run))
    if key in _OURS_CACHE:
        _OURS_CACHE.move_to_end(key)
        return _OURS_CACHE[key]
    ours = _OURS_CACHE[key] = _run_ours(target, case, run, training, with_mask, None)
    if len(_OURS_CACHE) > _OURS_CACHE_SIZE:
        _OURS_CACHE.popitem(last=False)
    return ours


def _run_ours(target: Target, case: Case, run: oracles.OracleRun, training: bool, with_mask: bool,
              layer: Any) -> OursRun:
    device = torch.device(target.device)
    layer = layer if layer is not None else construct_ours(target, case.config)
    if hasattr(layer, "to"):
        layer = layer.to(device)
    arrays = make_inputs(target.spec, case)
    # Integer inputs (indices) are not differentiable: only float inputs get gradients.
    tensors = [torch.tensor(a, device=device, requires_grad=bool(np.issubdtype(a.dtype, np.floating))) for a in arrays]
    differentiable = [t for t in tensors if t.requires_grad]
    if not getattr(layer, "built", False):
        layer.build([tuple(t.shape) for t in tensors] if len(tensors) > 1 else tuple(tensors[0].shape))
    layer.set_weights(run.weights)
    kwargs: dict[str, Any] = {"training": training, **case.call}
    named = target.spec.call_input_names
    if with_mask:
        masks = _mask_tensors(make_mask(target.spec, case), device)
        if named:  # inputs passed by name carry their masks, as Keras tensors do
            for tensor, mask in zip(tensors, masks if isinstance(masks, list) else [masks]):
                if mask is not None:
                    tensor._keras_mask = mask
        else:
            kwargs["mask"] = masks
    if named:
        out = layer(tensors[0], **dict(zip(named[1:], tensors[1:])), **kwargs)
    else:
        out = layer(tensors if len(tensors) > 1 else tensors[0], **kwargs)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    rng = np.random.default_rng(case.seed + 2)
    cots = [rng.standard_normal(tuple(o.shape)) for o in outs]
    loss = sum((o.double() * torch.tensor(c, device=device)).sum() for o, c in zip(outs, cots))
    weights = [w for w, t in zip(_trainable_weights(layer), run.trainable) if t]
    sources = differentiable + weights
    loss_grads = torch.autograd.grad(loss, sources, allow_unused=True) if loss.requires_grad else [None] * len(sources)
    grad_inputs = [_np(g, t) for g, t in zip(loss_grads[: len(differentiable)], differentiable)]
    raw_weight_grads = list(loss_grads[len(differentiable):])
    grad_weights = [_np(layer.weight_to_keras(w, g) if g is not None else None, w) for w, g in
                    zip(weights, raw_weight_grads)]
    mask = getattr(outs[0], "_keras_mask", None)
    return OursRun(
        layer=layer,
        outputs=[o.detach().cpu().double().numpy() for o in outs],
        output_mask=None if mask is None else mask.detach().cpu().numpy(),
        grad_inputs=grad_inputs,
        grad_weights=grad_weights,
        losses=[float(v) for v in layer.losses],
        raw_weight_grads=raw_weight_grads,
    )


def _mask_tensors(mask: np.ndarray | list[np.ndarray | None], device: torch.device) -> Any:
    """An input mask (or a list of them, None where an input takes none) as torch tensors."""
    if isinstance(mask, list):
        return [None if m is None else torch.tensor(m, device=device) for m in mask]
    return torch.tensor(mask, device=device)


def _trainable_weights(layer: Any) -> list[torch.Tensor]:
    return list(layer.keras_weights())


def _np(value: torch.Tensor | None, like: torch.Tensor) -> np.ndarray:
    if value is None:
        return np.zeros(tuple(like.shape))
    return value.detach().cpu().double().numpy()


# -- helpers for checks ---------------------------------------------------------------------------
def _tol(target: Target, case: Case, gradient: bool = False, quantity: str = "output") -> Tolerance:
    """The policy's tolerance for this case: the spec's op class and reduction length, in the
    precision the oracle really computes in (the compute dtype of a mixed policy; float32 where the
    spec says the oracle computes a float64 layer in float32)."""
    spec = target.spec
    length = spec.reduction_terms(case.config, case.input_shapes)
    op_class = spec.op_class
    if gradient and op_class == "exact":
        op_class = "elementwise"  # the cotangent product is a float sum even for pure data movement
    if gradient:
        length = max(length, int(np.prod(case.input_shapes[0][:-1])))
    dtype = spec.oracle_compute_dtype(case.config, target.oracle, case.dtype)
    return tolerance(dtype, target.device, op_class, length, gradient=gradient,
                     scale=magnitude_scale(quantity, case.magnitude, spec.magnitude_degrees(quantity, case.config)))


#: Serialized dtype policies (Keras 3 writes a dict where tf_keras writes the dtype's name).
DTYPE_POLICY_CLASSES = frozenset({"DTypePolicy", "FloatDTypePolicy", "Policy"})
#: Activation names that are the same function under two names; the oracles serialize differently.
ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Compare-ready config: serialized objects reduced to (class_name, config) with None-valued
    options dropped (absent and None mean the default), dtype to its name, tuples and lists unified,
    floats rounded to float32 precision (tf_keras stores float32), activation aliases unified."""

    def norm(value: Any) -> Any:
        if isinstance(value, Mapping):
            if "class_name" in value:
                if value["class_name"] in DTYPE_POLICY_CLASSES:
                    return value.get("config", {}).get("name")
                inner = {k: v for k, v in (value.get("config") or {}).items() if v is not None}
                return {"class_name": value["class_name"], "config": norm(inner)}
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, str):
            return ACTIVATION_ALIASES.get(value, value)
        if isinstance(value, (list, tuple)):
            return [norm(v) for v in value]
        if isinstance(value, float):
            return float(np.float32(value))
        return value

    return {k: norm(v) for k, v in config.items() if k != "name"}


def _diff_configs(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(ours) | set(theirs))
    return [f"{k}: ours={ours.get(k, '<missing>')!r} oracle={theirs.get(k, '<missing>')!r}"
            for k in keys if ours.get(k, "<missing>") != theirs.get(k, "<missing>")]


# -- the checks -----------------------------------------------------------------------------------
def check_config(target: Target, case: Case) -> Measurement:
    """get_config equals the oracle's; from_config(get_config()) rebuilds an equal, equivalent layer."""
    run = oracle_run(target, case, training=False)
    require_oracle_ok(run, case)
    layer = construct_ours(target, case.config)
    ours = normalize_config(layer.get_config())
    theirs = normalize_config(run.config)
    # Compare every key the oracle reports (less parameters the spec leaves out); ours may carry
    # extra spec parameters an oracle does not serialize (keras3 Dense drops activity_regularizer).
    excluded = set(target.spec.excluded_params)
    # (Ours may not carry a key of a parameter this oracle lacks: its from_config would refuse it.)
    extra = [k for k in ours if k not in theirs and not (k in target.spec.params and target.spec.params[k].in_oracle(target.oracle))]
    if extra:
        raise AssertionError(f"get_config has keys the oracle does not know: {extra}")
    diffs = _diff_configs({k: v for k, v in ours.items() if k in theirs},
                          {k: v for k, v in theirs.items() if k not in excluded})
    if diffs:
        raise AssertionError("get_config differs from the oracle's:\n  " + "\n  ".join(diffs))
    with target.impl.flavor(target.oracle):
        clone = type(layer).from_config(layer.get_config())
    again = normalize_config(clone.get_config())
    if again != ours:
        raise AssertionError("from_config(get_config()) changed the config:\n  " + "\n  ".join(_diff_configs(again, ours)))
    m = Measurement()
    if target.spec.input.max_count > 0:
        first = run_ours(target, case, run, training=False, layer=layer)
        second = run_ours(target, case, run, training=False, layer=clone)
        for a, b in zip(first.outputs, second.outputs):
            m.add(compare(b, a, tolerance(case.dtype, target.device, "exact"), "clone output vs original output"))
    return m


def check_shapes(target: Target, case: Case) -> Measurement:
    """spec rule == ours.compute_output_shape == ours actual == oracle compute_output_shape == oracle
    actual; for symbolic shapes also with every free axis unknown (None), not only the batch."""
    run = oracle_run(target, case, training=False)
    require_oracle_ok(run, case)
    symbolic = [(None, *s[1:]) for s in case.input_shapes]
    arg = symbolic if len(symbolic) > 1 else (symbolic[0] if symbolic else None)
    spec_shape = target.spec.output_shape(case.config, arg if arg is not None else [])
    layer = construct_ours(target, case.config)
    ours_symbolic = _plain(layer.compute_output_shape(arg))
    problems = []
    if ours_symbolic != spec_shape:
        problems.append(f"compute_output_shape {ours_symbolic} != spec rule {spec_shape}")
    if run.output_shape != spec_shape:
        problems.append(f"oracle compute_output_shape {run.output_shape} != spec rule {spec_shape} (spec bug?)")
    unknown = unknown_shapes(target.spec, case)
    if unknown is not None:  # spatial and time axes unknown too, as Input((None, None, 3)) declares them
        unknown_arg = unknown if len(unknown) > 1 else unknown[0]
        spec_unknown = target.spec.output_shape(case.config, unknown_arg)
        try:
            ours_unknown: Any = _plain(layer.compute_output_shape(unknown_arg))
        except Exception as exc:  # noqa: BLE001 - reported as a mismatch
            ours_unknown = f"error: {type(exc).__name__}: {exc}"
        if ours_unknown != spec_unknown:
            problems.append(f"compute_output_shape{unknown_arg} = {ours_unknown} != spec rule {spec_unknown}")
        if run.output_shape_unknown != spec_unknown:
            problems.append(f"oracle compute_output_shape{unknown_arg} = {run.output_shape_unknown} != spec rule "
                            f"{spec_unknown} (spec bug?)")
    if target.spec.input.max_count > 0:
        # Several outputs (an RNN's state with return_state): the rule gives a list, one shape each.
        actual = [tuple(o.shape) for o in run_ours(target, case, run, training=False, layer=layer).outputs]
        oracle_actual = [tuple(o.shape) for o in run.outputs]
        concrete = target.spec.output_shape(case.config, list(case.input_shapes) if len(case.input_shapes) > 1 else case.input_shapes[0])
        concrete_list = concrete if isinstance(concrete, list) else [concrete]
        if actual != oracle_actual:
            problems.append(f"actual output shapes {actual} != oracle's {oracle_actual}")
        if concrete_list != oracle_actual[:len(concrete_list)]:
            problems.append(f"spec rule on concrete shapes {concrete} != oracle's actual {oracle_actual}")
    if problems:
        raise AssertionError("; ".join(problems))
    return Measurement()


def check_weights(target: Target, case: Case) -> Measurement:
    """Count, names, shapes and order; set/get round trip; a wrong shape is rejected clearly."""
    run = oracle_run(target, case, training=False)
    require_oracle_ok(run, case)
    layer = construct_ours(target, case.config)
    shapes = case.input_shapes
    layer.build(list(shapes) if len(shapes) > 1 else shapes[0])
    ours = layer.get_weights()
    symbolic = [(None, *s[1:]) for s in shapes]
    spec_shapes = target.spec.weight_shapes(case.config, symbolic if len(symbolic) > 1 else symbolic[0], target.oracle)
    problems = []
    if [n for n, _ in spec_shapes] != run.weight_names:
        problems.append(f"spec weight names {[n for n, _ in spec_shapes]} != oracle's {run.weight_names}")
    if [s for _, s in spec_shapes] != [w.shape for w in run.weights]:
        problems.append(f"spec weight shapes {[s for _, s in spec_shapes]} != oracle's {[w.shape for w in run.weights]}")
    if list(getattr(layer, "weight_names", [n for n, _ in spec_shapes])) != run.weight_names:
        problems.append(f"weight names {layer.weight_names} != oracle's {run.weight_names}")
    if [w.shape for w in ours] != [w.shape for w in run.weights]:
        problems.append(f"weight shapes {[w.shape for w in ours]} != oracle's {[w.shape for w in run.weights]}")
    if problems:
        raise AssertionError("; ".join(problems))
    layer.set_weights(run.weights)
    m = Measurement()
    for got, want in zip(layer.get_weights(), run.weights):
        m.add(compare(got, want, tolerance(case.dtype, target.device, "exact"), "get_weights after set_weights"))
    if run.weights:
        # Every axis one longer; a scalar weight (Attention's scale) gets an axis instead.
        wrong_shape = tuple(d + 1 for d in run.weights[0].shape) or (2,)
        wrong = [np.zeros(wrong_shape, dtype=run.weights[0].dtype)] + run.weights[1:]
        try:
            layer.set_weights(wrong)
        except ValueError as exc:
            if str(tuple(run.weights[0].shape)) not in str(exc):
                raise AssertionError(f"set_weights with a wrong shape raised without naming the expected shape: {exc}") from None
        else:
            raise AssertionError("set_weights accepted a weight of the wrong shape")
    return m


#: Values sampled per weight by the initial-weights check (ours and the oracle's), and the most
#: builds or initializer calls spent on one small weight.
INITIAL_MIN_ELEMENTS = 4000
INITIAL_MAX_DRAWS = 64
_INITIAL_CACHE: OrderedDict[tuple[str, str], list[dict[str, Any]]] = OrderedDict()


def oracle_initial(target: Target, case: Case) -> list[dict[str, Any]]:
    """The oracle's freshly built weights and initializer moments for a case (memoised, or recorded)."""
    if _CORPUS is not None:
        return _CORPUS.initial(target.oracle, case)
    key = (target.oracle, case.key())
    if key not in _INITIAL_CACHE:
        symbolic = [(None, *s[1:]) for s in case.input_shapes]
        _INITIAL_CACHE[key] = oracles.get(target.oracle).initial_weights(
            target.spec, case.config, symbolic, case.dtype, INITIAL_MIN_ELEMENTS, INITIAL_MAX_DRAWS)
        if len(_INITIAL_CACHE) > _ORACLE_CACHE_SIZE:
            _INITIAL_CACHE.popitem(last=False)
    return _INITIAL_CACHE[key]


def check_initial_weights(target: Target, case: Case) -> Measurement:
    """A freshly built layer holds what the oracle's holds: the same values where the initializer is
    deterministic (zeros, ones, constant), the same distribution where it is random -- the fan rules
    of each layer's kernel layout included -- by two-sample z statistics with |z| <= Z_BOUND."""
    from .stats import Z_BOUND, Moments, compare_moments

    theirs = oracle_initial(target, case)
    symbolic = [(None, *s[1:]) for s in case.input_shapes]
    arg = symbolic if len(symbolic) > 1 else symbolic[0]

    def fresh() -> list[np.ndarray]:
        layer = construct_ours(target, case.config)
        layer.build(arg)
        return [np.asarray(w, dtype=np.float64) for w in layer.get_weights()]

    # Our draws from a generator seeded by the case (and the global one left as it was), so a rerun
    # measures the same statistics, failing or not.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(case.seed + 3)
        first = fresh()
        names = [n for n, _ in target.spec.weight_shapes(case.config, arg, target.oracle)]
        if len(first) != len(theirs):
            raise AssertionError(f"{len(first)} weights after build, the oracle has {len(theirs)}")
        random = [i for i, t in enumerate(theirs) if not t["deterministic"] and t["moments"] is not None]
        builds = max((min(INITIAL_MAX_DRAWS, -(-INITIAL_MIN_ELEMENTS // max(first[i].size, 1))) for i in random),
                     default=1)
        draws = [first] + [fresh() for _ in range(builds - 1)]
    m = Measurement()
    problems = []
    for i, (name, t) in enumerate(zip(names, theirs)):
        if t["deterministic"]:
            c = compare(first[i], t["initial"], tolerance(case.dtype, target.device, "exact"),
                        f"initial {name} (a deterministic initializer)")
            if not c.ok:
                problems.append(c.detail)
            continue
        if t["moments"] is None:
            continue
        ours = Moments.of(np.stack([d[i] for d in draws]))
        z = compare_moments(ours, Moments(**t["moments"]))
        m.statistics += len(z)
        bad = {k: v for k, v in z.items() if not abs(v) <= Z_BOUND}
        if bad:
            problems.append(f"initial {name}: ours mean {ours.mean:.4g}, std {ours.var ** 0.5:.4g} over {ours.n} values; "
                            f"oracle mean {t['moments']['mean']:.4g}, std {t['moments']['var'] ** 0.5:.4g} over "
                            f"{t['moments']['n']}; z = " + ", ".join(f"{k} {v:.1f}" for k, v in z.items()))
    if problems:
        raise AssertionError("; ".join(problems))
    return m


def _check_outputs(target: Target, case: Case, training: bool) -> Measurement:
    run = oracle_run(target, case, training=training)
    require_oracle_ok(run, case)
    ours = run_ours(target, case, run, training=training)
    m = Measurement()
    tol = _tol(target, case)
    for i, (got, want) in enumerate(zip(ours.outputs, run.outputs)):
        m.add(compare(got, want, tol, f"output {i}"))
    if len(ours.losses) != len(run.losses):
        raise AssertionError(f"losses: ours has {len(ours.losses)} terms {ours.losses}, oracle {len(run.losses)} {run.losses}")
    for i, (got, want) in enumerate(zip(ours.losses, run.losses)):
        m.add(compare(np.array(got), np.array(want), tolerance(case.dtype, target.device, "reduction",
                                                               int(np.prod(case.input_shapes[0])),
                                                               scale=magnitude_scale("loss", case.magnitude,
                                                                                     target.spec.magnitude_degrees("loss", case.config))),
                      f"loss {i}"))
    if training:
        weights_tol = _tol(target, case, quantity="weights")
        for i, (got, want) in enumerate(zip(ours.layer.get_weights(), run.updated_weights)):
            m.add(compare(got, want, weights_tol, f"weight {i} after a training call"))
    return m


def check_forward(target: Target, case: Case) -> Measurement:
    """Inference outputs (and regularizer losses) with the oracle's weights loaded into ours."""
    return _check_outputs(target, case, training=False)


def check_forward_training(target: Target, case: Case) -> Measurement:
    """``training=True`` outputs, losses and state updates (batch statistics, moving averages)."""
    return _check_outputs(target, case, training=True)


def check_gradients(target: Target, case: Case) -> Measurement:
    """d(sum(output * cotangent)) w.r.t. every input and trainable weight."""
    training = gradient_training(target.spec, case)
    run = oracle_run(target, case, training=training)
    require_oracle_ok(run, case)
    if run.grad_error is not None:
        raise AssertionError(f"the oracle could not differentiate a config the spec calls comparable: {run.grad_error} "
                             f"(if TensorFlow lacks the gradient, record an oracle_limit for the gradients check); "
                             f"case {case.describe()}")
    ours = run_ours(target, case, run, training=training)
    m = Measurement()
    tol = _tol(target, case, gradient=True, quantity="input_gradient")
    for i, (got, want) in enumerate(zip(ours.grad_inputs, run.grad_inputs)):
        m.add(compare(got, want, tol, f"gradient w.r.t. input {i}"))
    tol = _tol(target, case, gradient=True, quantity="weight_gradient")
    names = [n for n, t in zip(run.weight_names, run.trainable) if t]
    if len(ours.grad_weights) != len(run.grad_weights):
        raise AssertionError(f"{len(ours.grad_weights)} weight gradients, oracle has {len(run.grad_weights)}")
    for name, got, want in zip(names, ours.grad_weights, run.grad_weights):
        m.add(compare(got, want, tol, f"gradient w.r.t. weight {name}"))
    return m


def uses_input_mask(spec: LayerSpec, case: Case) -> bool:
    """Whether the masks check feeds an input mask: layers that support masking, on sequences."""
    return bool(spec.masking.get("supports")) and len(case.input_shapes[0]) >= 3


def check_masks(target: Target, case: Case) -> Measurement:
    """Output mask (and masked outputs) for an input mask with holes anywhere."""
    with_mask = uses_input_mask(target.spec, case)
    run = oracle_run(target, case, training=False, with_mask=with_mask)
    require_oracle_ok(run, case)
    ours = run_ours(target, case, run, training=False, with_mask=with_mask)
    if (run.output_mask is None) != (ours.output_mask is None):
        raise AssertionError(f"output mask: ours {'absent' if ours.output_mask is None else 'present'}, "
                             f"oracle {'absent' if run.output_mask is None else 'present'}")
    m = Measurement()
    if run.output_mask is not None:
        exact = tolerance(case.dtype, target.device, "exact")
        m.add(compare(ours.output_mask.astype(np.float64), run.output_mask.astype(np.float64), exact, "output mask"))
        # compute_mask is public API too: it must agree with the mask the call attached.
        device = torch.device(target.device)
        tensors = [torch.tensor(a, device=device) for a in make_inputs(target.spec, case)]
        in_mask = _mask_tensors(make_mask(target.spec, case), device) if with_mask else None
        direct = ours.layer.compute_mask(tensors if len(tensors) > 1 else tensors[0], in_mask)
        if isinstance(direct, (list, tuple)):  # one mask per output (an RNN with return_state): the first's
            direct = direct[0]
        if direct is None:
            raise AssertionError("compute_mask returned None, but the oracle produces an output mask")
        m.add(compare(direct.detach().cpu().numpy().astype(np.float64), run.output_mask.astype(np.float64),
                      exact, "compute_mask"))
    for i, (got, want) in enumerate(zip(ours.outputs, run.outputs)):
        m.add(compare(got, want, _tol(target, case), f"masked output {i}"))
    return m


def check_input_errors(target: Target, case: Case) -> Measurement:
    """Built on one input, the layer is called on probe inputs of another rank or channel size: where
    the oracle refuses one, ours must refuse it with ValueError/TypeError (never an obscure torch
    error); where the oracle accepts it, ours must accept it and compute what the oracle computes.
    Whether our message names the layer and the received shape is a quality note, not a verdict."""
    probes = probe_inputs(target.spec, case)
    if not probes:
        return Measurement()
    run = oracle_run(target, case, training=False)
    require_oracle_ok(run, case)
    if len(run.probe_errors) != len(probes):
        raise AssertionError(f"the oracle run has {len(run.probe_errors)} probe results for {len(probes)} probes "
                             "(a corpus recorded before the probes changed? re-record it)")
    layer = run_ours(target, case, run, training=False).layer
    device = torch.device(target.device)
    m = Measurement()
    problems = []
    for (what, x), oracle_error, oracle_out in zip(probes, run.probe_errors, run.probe_outputs):
        shape = tuple(x.shape)
        try:
            with torch.no_grad():
                out = layer(torch.tensor(x, device=device))
        except (ValueError, TypeError) as exc:
            if oracle_error is None:
                problems.append(f"{what}: refused input of shape {shape}, which the oracle accepts: {str(exc)[:300]}")
            elif not ((target.spec.name in str(exc) or getattr(layer, "name", "\0") in str(exc)) and str(shape) in str(exc)):
                m.notes.append(f"{what}: the error does not name the layer and the received shape {shape}: {str(exc)[:200]}")
        except Exception as exc:  # noqa: BLE001 - the contract asks for ValueError/TypeError
            problems.append(f"{what}: {type(exc).__name__} instead of ValueError/TypeError for input of shape {shape}: "
                            f"{str(exc)[:300]}")
        else:
            if oracle_error is not None:
                problems.append(f"{what}: accepted input of shape {shape}, which the oracle refuses ({oracle_error[:200]})")
            else:
                got = (out[0] if isinstance(out, (list, tuple)) else out).detach().cpu().double().numpy()
                c = compare(got, oracle_out, _tol(target, case, quantity="probe_output"),
                            f"{what}: output on the probe input of shape {shape}")
                if not c.ok:
                    problems.append(c.detail)
                else:
                    m.add(c)
    if problems:
        raise AssertionError("; ".join(problems))
    return m


def check_training_step(target: Target, case: Case) -> Measurement:
    """One plain SGD step with each side's own gradients, then the weights' constraints applied as a
    Keras optimizer applies them (``apply_constraints``): the weights after the step agree."""
    training = gradient_training(target.spec, case)
    run = oracle_run(target, case, training=training)
    require_oracle_ok(run, case)
    if run.step_error is not None:
        raise AssertionError(f"the oracle's optimizer could not take a step on a config the spec calls comparable: "
                             f"{run.step_error} (record an oracle_limit for the training_step check); case {case.describe()}")
    if run.grad_error is not None or not run.stepped_weights:
        return Measurement()  # no trainable weights in this config, or the gradients check reports it
    ours = run_ours(target, case, run, training=training)
    layer = ours.layer
    with torch.no_grad():
        trainable = [w for w, t in zip(_trainable_weights(layer), run.trainable) if t]
        for w, g in zip(trainable, ours.raw_weight_grads):
            if g is not None:
                w.sub_(oracles.TRAINING_STEP_LEARNING_RATE * g.to(w.dtype))
        layer.apply_constraints()
    stepped = layer.get_weights()
    layer.set_weights(run.weights)  # the run is shared with other checks: leave it as it was
    m = Measurement()
    tol = _tol(target, case, gradient=True, quantity="weights")
    for name, got, want in zip(run.weight_names, stepped, run.stepped_weights):
        m.add(compare(np.asarray(got, dtype=np.float64), want, tol, f"weight {name} after one SGD step"))
    return m


#: Statistical checks: independent random draws per test, and the |z| bound (two-sided p ~ 5.7e-7
#: per test, so a correct layer fails about once in a million runs, while a wrong rate or scale by
#: a few percent is caught: at n=4000 one binomial standard error of a rate of 0.5 is 0.8%).
STOCHASTIC_DRAWS = 4000
Z_BOUND = 5.0


def _z_rate(hits: int, n: int, p: float) -> float:
    if p in (0.0, 1.0):
        return 0.0 if hits == round(n * p) else math.inf
    return (hits - n * p) / math.sqrt(n * p * (1 - p))


def _stochastic_setup(spec: LayerSpec, case: Case) -> tuple[dict[str, Any], np.ndarray, list[int], dict[str, Any]]:
    """A large input with at least STOCHASTIC_DRAWS independent draws, the config for it (parameters
    that follow the batch follow it), the broadcast axes and the expression scope."""
    sto = spec.behaviour.stochastic
    shape = list(case.input_shapes[0])
    env = sto.scope(spec.env(spec.normalize(case.config), [(None, *shape[1:])]))
    broadcast = sorted(int(a) % len(shape) for a in sto.broadcast_axes(env))
    per_sample = int(np.prod([shape[a] for a in range(1, len(shape)) if a not in broadcast]))
    if 0 not in broadcast:
        shape[0] = max(shape[0], -(-STOCHASTIC_DRAWS // per_sample))
    config = dict(case.config)
    for name in sto.follows_batch:
        value = config.get(name)
        if isinstance(value, (list, tuple)) and len(value) == len(shape) and value[0] != 1:
            config[name] = (shape[0], *value[1:])
    rng = np.random.default_rng(case.seed)
    # Magnitudes in [0.5, 1.5] with random signs: no input is 0, so a dropped element is visible.
    x = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)).astype(
        np.float64 if case.dtype == "float64" else np.float32)
    low = compute_dtype(case.dtype)
    if low in ("float16", "bfloat16"):  # values the layer's compute dtype holds exactly
        x = torch.tensor(x).to(getattr(torch, low)).float().numpy()
    return config, x, broadcast, env


def _stochastic_problems(sto: Stochastic, env: Mapping[str, Any], x: np.ndarray, y: np.ndarray, broadcast: list[int],
                         tol: Tolerance, who: str, m: Measurement) -> list[str]:
    problems: list[str] = []
    # One entry per independent draw: index 0 along every broadcast axis.
    first = tuple(slice(0, 1) if a in broadcast else slice(None) for a in range(x.ndim))
    if sto.distribution == "bernoulli":
        rate = float(sto.drop_rate(env))
        kept = np.broadcast_to(np.asarray(sto.kept({**env, "x": x}), dtype=np.float64), x.shape)
        dropped_value = np.broadcast_to(np.asarray(sto.dropped({**env, "x": x}), dtype=np.float64), x.shape)
        dropped = np.abs(y - dropped_value) <= tol.atol + tol.rtol * np.abs(dropped_value)
        draws = dropped[first]
        z = _z_rate(int(draws.sum()), draws.size, rate)
        m.statistics += 1
        if abs(z) > Z_BOUND:
            problems.append(f"{who}: dropped fraction {draws.mean():.4f} over {draws.size} draws, rate {rate} (z={z:.1f})")
        c = compare(np.where(dropped, kept, y), kept, tol, f"{who}: kept values ({sto.kept.source})")
        if not c.ok:
            problems.append(c.detail)
        for axis in broadcast:
            if not (dropped == dropped.take([0], axis=axis)).all():
                problems.append(f"{who}: drops differ along axis {axis}, which shares one draw")
    else:
        noise = (y - x if sto.combine == "add" else y / x)[first]
        mean, sigma = float(sto.mean(env)), float(sto.stddev(env))
        n = noise.size
        z_mean = (noise.mean() - mean) / (sigma / math.sqrt(n)) if sigma > 0 else 0.0
        z_var = (noise.var(ddof=1) / sigma**2 - 1) / math.sqrt(2 / (n - 1)) if sigma > 0 else 0.0
        m.statistics += 2 if sigma > 0 else 0
        if abs(z_mean) > Z_BOUND or abs(z_var) > Z_BOUND:
            problems.append(f"{who}: noise mean {noise.mean():.4g} (want {mean:.4g}), std {noise.std():.4g} (want {sigma:.4g}) "
                            f"over {n} draws (z={z_mean:.1f}, {z_var:.1f})")
    return problems


def check_stochastic(target: Target, case: Case) -> Measurement:
    """Inference is the identity; in training the noise has the spec's statistics (ours, and the
    oracle's when it is live); a seed makes ours reproducible."""
    spec = target.spec
    sto = spec.behaviour.stochastic
    config, x, broadcast, env = _stochastic_setup(spec, case)
    device = torch.device(target.device)
    layer = construct_ours(target, config)
    if hasattr(layer, "to"):
        layer = layer.to(device)
    xt = torch.tensor(x, device=device)
    m = Measurement()
    with torch.no_grad():
        m.add(compare(layer(xt, training=False).cpu().double().numpy(), x, tolerance(case.dtype, target.device, "exact"),
                      "inference output vs input"))
        y = layer(xt, training=True).cpu().double().numpy()
    tol = tolerance(case.dtype, target.device, "elementwise")
    x64 = x.astype(np.float64)
    problems = _stochastic_problems(sto, env, x64, y, broadcast, tol, "ours", m)
    if not replaying():
        y_oracle = oracles.get(target.oracle).sample(spec, config, x, case.dtype, training=True).astype(np.float64)
        problems += [p + " (a spec bug?)" for p in _stochastic_problems(sto, env, x64, y_oracle, broadcast, tol,
                                                                       f"oracle {target.oracle}", m)]
    if sto.seed is not None:
        with torch.no_grad():
            a = construct_ours(target, {**config, sto.seed: 1234}).to(device)(xt, training=True)
            b = construct_ours(target, {**config, sto.seed: 1234}).to(device)(xt, training=True)
        if not torch.equal(a, b):
            problems.append(f"two layers with {sto.seed}=1234 gave different training outputs")
    if problems:
        raise AssertionError("; ".join(problems))
    return m


CHECK_FUNCTIONS: dict[str, Callable[[Target, Case], Measurement]] = {
    "initial_weights": check_initial_weights,
    "training_step": check_training_step,
    "stochastic": check_stochastic,
    "input_errors": check_input_errors,
    "config": check_config,
    "shapes": check_shapes,
    "weights": check_weights,
    "forward": check_forward,
    "forward_training": check_forward_training,
    "gradients": check_gradients,
    "masks": check_masks,
}


def check_error(impl: ImplUnderTest, spec: LayerSpec, case: Case, params: tuple[str, ...]) -> str:
    """Ours must reject a config breaking one rule with ValueError/TypeError naming the parameters."""
    cls = impl.layer_class(spec.name)
    try:
        layer = cls(**case.config)
        inputs = [torch.tensor(a) for a in make_inputs(spec, case)]
        if inputs:
            layer(inputs if len(inputs) > 1 else inputs[0])
    except (ValueError, TypeError) as exc:
        message = str(exc)
        missing = [p for p in params if p not in message]
        if missing:
            raise AssertionError(f"the error does not name parameter(s) {missing}: {type(exc).__name__}: {message}") from None
        return message
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"expected ValueError/TypeError, got {type(exc).__name__}: {exc}") from None
    raise AssertionError(f"accepted an invalid config {case.config} (input shapes {case.input_shapes})")


def _plain(shape: Any) -> Any:
    if isinstance(shape, list) and shape and isinstance(shape[0], (list, tuple)):
        return [_plain(s) for s in shape]
    return tuple(None if d is None else int(d) for d in shape)

