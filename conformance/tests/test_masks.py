"""Mask propagation and masked outputs, with masks that have holes anywhere."""

from keraspec.conformance.plugin import run_target_check


def test_masks(request, target):
    run_target_check(request, target, "masks")
