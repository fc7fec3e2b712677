"""Config, shape and weight checks: everything about a layer except its numbers."""

from keraspec.conformance.plugin import run_target_check


def test_config(request, target):
    run_target_check(request, target, "config")


def test_shapes(request, target):
    run_target_check(request, target, "shapes")


def test_weights(request, target):
    run_target_check(request, target, "weights")


def test_initial_weights(request, target):
    run_target_check(request, target, "initial_weights")
