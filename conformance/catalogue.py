"""The one list of checks, in report order, with what each compares.

Light on purpose (no torch, no TensorFlow): the report and the command line import it too.
"""

from __future__ import annotations

from keraspec.spec.model import FLOAT_DTYPES

#: Every check the suite runs, in report order: name -> what it compares.
CHECKS: dict[str, str] = {
    "config": "get_config equals the oracle's; from_config(get_config()) rebuilds an equal layer with equal outputs",
    "errors": "a config breaking exactly one rule of the spec raises ValueError/TypeError naming the parameter(s)",
    "input_errors": "built on one input, an input of another rank or channel size is refused where the oracle refuses it, "
                    "and computed as the oracle computes it where the oracle accepts it",
    "shapes": "spec rule = compute_output_shape = actual output shape = the oracle's, None dimensions included",
    "weights": "weight names, shapes and order (spec, ours, oracle); set_weights/get_weights round trip",
    "initial_weights": "a freshly built layer's weights: equal to the oracle's where the initializer is deterministic, "
                       "the same distribution (mean, variance, mean |x|) where it is random",
    "forward": "inference outputs and losses with the oracle's weights loaded",
    "forward_training": "training=True outputs, losses and weights after the call",
    "gradients": "input and weight gradients of sum(output * cotangent)",
    "training_step": "weights after one SGD step with the layer's gradients, constraints applied as Keras's optimizer does",
    "masks": "output mask, compute_mask and masked outputs for input masks with holes anywhere",
    "stochastic": "inference is the identity; training noise has the spec's statistics; seeded draws repeat",
    "signature": "spec parameters and defaults = the oracle constructor's",
    "spec": "for drawn valid configs the oracle builds and follows the spec's shape and weight rules",
    "spec_errors": "the oracle rejects a config breaking one rule, or the spec says it accepts it",
    # The backend functions (K.*; keraspec.conformance.ops):
    "op_forward": "a backend function's outputs, shapes and dtypes equal the oracle function's",
    "op_gradients": "a backend function's gradients of sum(output * cotangent) w.r.t. its differentiable arguments",
    "op_stochastic": "a random function's draws have the oracle's distribution; seeded draws repeat",
}

#: The checks of backend functions (keraspec.conformance.ops).
OP_CHECKS = ("op_forward", "op_gradients", "op_stochastic")

#: The checks run per target (layer x oracle x device x dtype) by ``run_target_check``.
TARGET_CHECKS = ("config", "input_errors", "shapes", "weights", "initial_weights", "forward", "forward_training", "gradients",
                 "training_step", "masks", "stochastic")


#: Checks that run in some dtype policies only (the CI budget), each with the reason:
#: - initial_weights: initializer statistics do not depend on the dtype beyond rounding (mixed
#:   policies keep float32 weights), and sampling them costs about 60 builds a case;
#: - shapes: no output-shape rule involves the dtype;
#: - input_errors, forward_training, masks: what they look at (refused inputs, the training flag,
#:   mask propagation) does not go through a mixed policy's casts, which forward, gradients,
#:   training_step, weights and config check in every policy.
CHECK_DTYPES: dict[str, tuple[str, ...]] = {
    "initial_weights": ("float32",),
    "shapes": ("float32",),
    "input_errors": FLOAT_DTYPES,
    "forward_training": FLOAT_DTYPES,
    "masks": FLOAT_DTYPES,
}


#: The checks that also run on special input values (``strategies.INPUT_VALUES``), with the reason:
#: ties wherever values or gradients are compared (which of equal maxima a max-like layer sends its
#: gradient to shows only in ties); edge values (NaN, infinities, zeros, extremes) where outputs are
#: compared, not gradients: a gradient sums many near-overflow terms, which overflow or not depending
#: on the order of summation, and no two correct implementations need agree on that order.
INPUT_VALUE_CHECKS: dict[str, tuple[str, ...]] = {
    "ties": ("forward", "forward_training", "gradients", "training_step", "masks"),
    "edge": ("forward", "forward_training", "masks"),
}


def input_values_for(check: str) -> tuple[str, ...]:
    """The special kinds of input values ``check`` runs on besides normal ones."""
    return tuple(kind for kind, checks in INPUT_VALUE_CHECKS.items() if check in checks)


def check_sort_key(check: str) -> tuple[int, str]:
    """Report order: the catalogue's, then unknown checks alphabetically."""
    order = list(CHECKS)
    return (order.index(check), check) if check in CHECKS else (len(order), check)
