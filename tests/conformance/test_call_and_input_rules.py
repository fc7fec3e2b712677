"""The spec-format rules that multi-input layers and layers with call arguments rely on: tied input
sizes, call arguments drawn and covered like choice parameters, masks for several inputs, and the
magnitude degrees the tolerance policy reads for layers not linear in their inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keraspec import spec
from keraspec.conformance.strategies import covered_values, covering_cases, make_mask, unknown_shapes
from keraspec.conformance.tolerance import MAGNITUDE_SCALING, magnitude_scale
from keraspec.spec import loader

ATTENTION_LAYERS = ["Attention", "AdditiveAttention"]


@pytest.mark.parametrize("name", ATTENTION_LAYERS)
def test_tied_axes_share_one_size(name: str) -> None:
    layer = spec.lookup(name)
    for case in covering_cases(layer, "keras3", "float32"):
        shapes = case.input_shapes
        for group in layer.input.tie:
            sizes = {shapes[k][axis] for k, axis in group if k < len(shapes)}
            assert len(sizes) == 1, f"{case.describe()}: tie {group} drew sizes {sizes}"


@pytest.mark.parametrize("name", ATTENTION_LAYERS)
def test_call_arguments_are_covered_and_passed(name: str) -> None:
    layer = spec.lookup(name)
    cases = covering_cases(layer, "keras3", "float32")
    assert all(set(c.call) == set(layer.call_arguments) for c in cases)
    cover = covered_values(layer, "keras3", [c.settings() for c in cases])
    for argument in layer.call_arguments:
        assert cover[argument]["missing"] == [], f"{argument}: {cover[argument]}"
    # The call arguments are part of a case's identity (two cases differing only there are two cases).
    first = cases[0]
    other = type(first)(**{**first.__dict__, "call": {k: not v for k, v in first.call.items()}})
    assert first.key() != other.key()


def test_masks_for_several_inputs() -> None:
    layer = spec.lookup("Attention")
    case = next(c for c in covering_cases(layer, "keras3", "float32") if len(c.input_shapes) == 3)
    masks = make_mask(layer, case)
    assert isinstance(masks, list) and len(masks) == 3
    assert masks[2] is None  # the key takes no mask; query and value do
    for mask, shape in zip(masks[:2], case.input_shapes):
        assert mask.shape == shape[:-1] and mask.dtype == np.bool_ and mask[:, 0].all()


def test_tied_axes_are_freed_together() -> None:
    layer = spec.lookup("Attention")
    for case in covering_cases(layer, "keras3", "float32"):
        unknown = unknown_shapes(layer, case)
        if unknown is None:
            continue
        for group in layer.input.tie:
            known = {unknown[k][axis] is None for k, axis in group if k < len(unknown)}
            assert len(known) == 1, f"{case.describe()}: tie {group} half freed in {unknown}"


def test_magnitude_degrees_scale_the_terms() -> None:
    assert magnitude_scale("output", 3) == 8.0  # linear by default
    assert magnitude_scale("output", 3, (2,)) == 64.0
    assert magnitude_scale("input_gradient", 3, (0, 2)) == 64.0  # the largest term counts
    assert magnitude_scale("input_gradient", -3, (0, 2)) == 1.0
    assert magnitude_scale("weight_gradient", -3, (1,)) == 1.0  # never below unit size
    dot = spec.lookup("Dot")
    assert dot.magnitude_degrees("output", {"axes": 1}) == (2,)
    assert dot.magnitude_degrees("output", {"axes": 1, "normalize": True}) == (0,)
    assert dot.magnitude_degrees("weights", {"axes": 1}) is None


def test_schema_magnitude_quantities_are_the_policys() -> None:
    """The schema lists the quantities the policy scales (spec must not import conformance)."""
    schema = json.loads(loader.SPEC_DIR.parent.joinpath("schema.json").read_text())
    quantities = schema["$defs"]["layer"]["properties"]["numerics"]["properties"]["magnitude_degree"]["properties"]
    # Probe outputs are drawn at unit scale whatever the case's magnitude: no degree applies.
    assert set(quantities) == set(MAGNITUDE_SCALING) - {"probe_output"}
