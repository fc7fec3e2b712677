"""The spec is tested, not trusted: every entry is checked against each oracle that has the layer.

A disagreement fails with the layer, the parameter and both values.  These tests use no
implementation -- only the spec and the oracle.
"""

import inspect

import pytest
from hypothesis import assume

from keraspec.conformance import oracle as oracles
from keraspec.spec import BASE_LAYER_ARGUMENTS
from keraspec.conformance.harness import Target, oracle_run, replaying
from keraspec.conformance.plugin import run_property
from keraspec.conformance.strategies import Case, cases, invalid_cases, limit_cases, make_inputs


def _adapter(oracle):
    if replaying():
        pytest.skip("the spec checker tests the spec against the live oracle, not a recorded corpus")
    if not oracles.available(oracle):
        pytest.skip(f"oracle {oracle} is not installed")
    return oracles.get(oracle)


def _same(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _valid_value(layer_spec, name):
    from hypothesis import find

    from keraspec.conformance.strategies import param_values

    return find(param_values(layer_spec.params[name], dict(layer_spec.vars)), lambda v: True)


def test_signature(oracle_layer):
    """Spec parameters == the oracle constructor's (minus base and excluded ones), with equal defaults."""
    layer_spec, oracle = oracle_layer
    cls = _adapter(oracle).layer_class(layer_spec)
    params = {
        n: p for n, p in inspect.signature(cls.__init__).parameters.items()
        if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    theirs = set(params) - set(BASE_LAYER_ARGUMENTS) - set(layer_spec.excluded_params)
    ours = {n for n, p in layer_spec.params.items() if p.in_oracle(oracle)}
    problems = [f"{layer_spec.name}: oracle {oracle} has parameter {n!r}, the spec lacks it" for n in sorted(theirs - ours)]
    required = {n: _valid_value(layer_spec, n) for n, p in layer_spec.params.items() if p.required and n in params}
    for name in sorted(ours - set(params)):
        try:
            cls(**{**required, name: layer_spec.defaults(oracle).get(name)})  # accepted through **kwargs?
        except TypeError:
            problems.append(f"{layer_spec.name}: spec parameter {name!r} is not accepted by oracle {oracle}")
        except Exception:  # noqa: BLE001 - accepted as an argument; other validation is not this test's
            pass
    defaults = layer_spec.defaults(oracle)
    for name in sorted(ours & set(params)):
        theirs_default = params[name].default
        if theirs_default is inspect.Parameter.empty:
            if not layer_spec.params[name].required:
                problems.append(f"{layer_spec.name}.{name}: required in {oracle}, spec default {defaults.get(name)!r}")
        elif layer_spec.params[name].required:
            # Required in the spec (Keras 3), defaulted in this oracle: the spec must say so.
            if name not in layer_spec.oracle_defaults.get(oracle, {}):
                problems.append(f"{layer_spec.name}.{name}: spec says required, {oracle} default is {theirs_default!r} "
                                f"(record it in oracle_defaults)")
            elif not _same(theirs_default, layer_spec.oracle_defaults[oracle][name]):
                problems.append(f"{layer_spec.name}.{name}: spec's {oracle} default "
                                f"{layer_spec.oracle_defaults[oracle][name]!r} != {theirs_default!r}")
        elif not _same(theirs_default, defaults.get(name)):
            problems.append(f"{layer_spec.name}.{name}: spec default {defaults.get(name)!r} != {oracle} default {theirs_default!r}")
    assert not problems, "\n".join(problems)


def test_spec_matches_oracle(request, oracle_layer):
    """For drawn valid configs the oracle builds, and its output shape and weights follow the spec's rules."""
    layer_spec, oracle = oracle_layer
    _adapter(oracle)

    def body(case: Case):
        run = oracle_run(Target(layer_spec, oracle, None, "cpu", case.dtype), case, training=False)
        assert run.error is None, f"{layer_spec.name}: oracle {oracle} rejected a config the spec calls valid: {run.error}"
        symbolic = [(None, *s[1:]) for s in case.input_shapes]
        arg = symbolic if len(symbolic) > 1 else (symbolic[0] if symbolic else [])
        want = layer_spec.output_shape(case.config, arg)
        assert run.output_shape == want, f"{layer_spec.name}: output shape: spec rule {want}, oracle {oracle} {run.output_shape}"
        if case.input_shapes:
            concrete = layer_spec.output_shape(case.config, list(case.input_shapes) if len(case.input_shapes) > 1 else case.input_shapes[0])
            # Several outputs (return_state): the rule's list, one shape per output it names.
            expected = concrete if isinstance(concrete, list) else [concrete]
            actual = [tuple(o.shape) for o in run.outputs][:len(expected)]
            assert actual == expected, f"{layer_spec.name}: actual output shapes: spec {concrete}, oracle {actual}"
            spec_weights = layer_spec.weight_shapes(case.config, arg, oracle)
            got = list(zip(run.weight_names, [w.shape for w in run.weights]))
            assert got == spec_weights, f"{layer_spec.name}: weights: spec {spec_weights}, oracle {oracle} {got}"

    scope = {"layer": layer_spec.name, "family": layer_spec.family, "check": "spec", "oracle": oracle,
             "device": "cpu", "dtype": "float32", "test_id": request.node.nodeid}
    run_property(request, cases(layer_spec, oracle, "float32", training=False), body, Case.describe, scope)


def test_oracle_rejects(request, oracle_rule):
    """A config breaking one rule is rejected by the oracle -- unless the spec records that it accepts it."""
    layer_spec, oracle, rule = oracle_rule
    adapter = _adapter(oracle)

    def body(example):
        case, broken = example
        shapes = [(None, *s[1:]) for s in case.input_shapes] if broken.stage == "input" else []
        assume(layer_spec.broken_rules(case.config, shapes if len(shapes) > 1 else (shapes[0] if shapes else None)) == [broken.id])
        error = adapter.rejects(layer_spec, case.config, make_inputs(layer_spec, case))
        if oracle in broken.oracle_accepts:
            assert error is None, (
                f"{layer_spec.name}: the spec says {oracle} accepts a config breaking {broken.id} "
                f"({broken.oracle_accepts[oracle]}), but it raised {error}")
        else:
            assert error is not None, (
                f"{layer_spec.name}: {oracle} accepted {case.config} which breaks {broken.id} "
                f"(parameters {', '.join(broken.params)}); mark it oracle_accepts in the spec with the reason")

    scope = {"layer": layer_spec.name, "family": layer_spec.family, "check": "spec_errors", "oracle": oracle,
             "device": "cpu", "dtype": "-", "test_id": request.node.nodeid}
    run_property(request, invalid_cases(layer_spec, rule, oracle), body, lambda ex: {**ex[0].describe(), "rule": ex[1].id}, scope)


def test_oracle_limits(request, oracle_limit):
    """A config the spec says an oracle cannot run (oracle_limits) still fails in that oracle (or, for a
    gradients-only limit, fails to differentiate), or gives a result the spec's rules do not (e.g. an
    ignored parameter): a limit that no longer holds is stale."""
    layer_spec, oracle, limit = oracle_limit
    _adapter(oracle)

    def body(case: Case):
        assume(not layer_spec.broken_rules(case.config, [(None, *s[1:]) for s in case.input_shapes][0]))
        assume(limit.when(layer_spec.env(layer_spec.normalize(case.config, oracle))))
        run = oracle_run(Target(layer_spec, oracle, None, "cpu", case.dtype), case, training=False)
        if limit.checks == ("gradients",):
            assert run.error is not None or run.grad_error is not None, (
                f"{layer_spec.name}: {oracle} now differentiates {case.config} in {case.dtype}; the oracle limit "
                f"{limit.name} ({limit.reason}) is stale")
        elif limit.checks == ("training_step",):
            assert run.error is not None or run.step_error is not None, (
                f"{layer_spec.name}: {oracle} now takes an optimizer step on {case.config} in {case.dtype}; the oracle "
                f"limit {limit.name} ({limit.reason}) is stale")
        elif run.error is None:
            want = layer_spec.output_shape(case.config, case.input_shapes[0])
            assert tuple(run.outputs[0].shape) != want, (
                f"{layer_spec.name}: {oracle} now runs {case.config} and gives the spec's output shape {want}; "
                f"the oracle limit {limit.name} ({limit.reason}) may be stale -- remove it if the values agree too")

    scope = {"layer": layer_spec.name, "family": layer_spec.family, "check": "spec", "oracle": oracle,
             "device": "cpu", "dtype": "-", "test_id": request.node.nodeid}
    run_property(request, limit_cases(layer_spec, oracle, limit), body, Case.describe, scope)
