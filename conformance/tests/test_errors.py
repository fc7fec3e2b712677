"""Invalid configs drawn from the spec's rules: ours must raise a clear error naming the parameter."""

import pytest
from hypothesis import assume

from keraspec.conformance.harness import NotImplementedLayer, check_error
from keraspec.conformance.plugin import run_property, run_target_check
from keraspec.conformance.strategies import invalid_cases


def test_errors(request, error_rule, impl_under_test):
    layer_spec, rule = error_rule
    try:
        impl_under_test.layer_class(layer_spec.name)
    except NotImplementedLayer as exc:
        pytest.skip(f"not implemented: {exc}")

    def body(example):
        case, broken = example
        shapes = [(None, *s[1:]) for s in case.input_shapes] if broken.stage == "input" else []
        # Some draws cannot break this rule alone (another rule breaks first); those are not examples.
        assume(layer_spec.broken_rules(case.config, shapes if len(shapes) > 1 else (shapes[0] if shapes else None)) == [broken.id])
        check_error(impl_under_test, layer_spec, case, broken.params)

    scope = {"layer": layer_spec.name, "family": layer_spec.family, "check": "errors", "oracle": "-",
             "device": "cpu", "dtype": "-", "test_id": request.node.nodeid, "rule": rule.id}
    run_property(request, invalid_cases(layer_spec, rule), body, lambda ex: {**ex[0].describe(), "rule": ex[1].id}, scope)


def test_input_errors(request, target):
    run_target_check(request, target, "input_errors")
