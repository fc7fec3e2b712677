"""Forward (inference and training) and gradient checks against the oracle, oracle weights loaded."""

from keraspec.conformance.plugin import run_target_check


def test_forward(request, target):
    run_target_check(request, target, "forward")


def test_forward_training(request, target):
    run_target_check(request, target, "forward_training")


def test_gradients(request, target):
    run_target_check(request, target, "gradients")


def test_training_step(request, target):
    run_target_check(request, target, "training_step")


def test_stochastic(request, target):
    run_target_check(request, target, "stochastic")
