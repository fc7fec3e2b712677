"""The merge layers: bad configs name the parameter and the rule, wrong inputs (shapes that do not
merge, a wrong count, a bare tensor) name the layer and the shapes, and what the conformance suite
cannot draw -- broadcasting, inputs of different ranks, masks on every input or on a later one, Dot
over inputs of different ranks -- is compared here with both oracles (the expected values are the
oracles' own, computed live)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from keraspec import spec
from keraspec.impl import layers as L
from keraspec.impl import merging
from keraspec.impl.flavor import use_flavor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from raises_naming import raises_naming as _raises  # noqa: E402

ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
ORACLES = ["keras3", "tf_keras"]




def _arrays(shapes, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    if ties:
        return [rng.integers(-2, 3, s).astype(np.float32) for s in shapes]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _mask(shape, seed):
    # Sparse, so that the OR of three masks still has holes and their AND is not all False.
    return np.random.default_rng(seed).random(shape) > 0.55


def _oracle_run(tf, module, name, config, arrays, masks=None):
    """The oracle's output and output mask (None where it attaches none)."""
    tensors = [tf.constant(a) for a in arrays]
    for t, m in zip(tensors, masks or []):
        if m is not None:
            t._keras_mask = tf.constant(m)
    out = getattr(module.layers, name)(**config)(tensors)
    mask = getattr(out, "_keras_mask", None)
    return np.asarray(out), None if mask is None else np.asarray(mask)


def _ours_run(flavor, name, config, arrays, masks=None):
    with use_flavor(flavor):
        layer = getattr(L, name)(**config)
    tensors = [torch.tensor(a) for a in arrays]
    mask_arg = None if masks is None else [None if m is None else torch.tensor(m) for m in masks]
    out = layer(tensors, mask=mask_arg)
    mask = getattr(out, "_keras_mask", None)
    return layer, out.detach().numpy(), None if mask is None else mask.numpy()


def _both(oracle, tf, flavor, name, config, arrays, masks=None):
    module = oracle(flavor)
    want, want_mask = _oracle_run(tf, module, name, config, arrays, masks)
    layer, got, got_mask = _ours_run(flavor, name, config, arrays, masks)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{name} {config} under {flavor}")
    assert (got_mask is None) == (want_mask is None), f"output mask: ours {got_mask}, oracle {want_mask}"
    if want_mask is not None:
        np.testing.assert_array_equal(got_mask, want_mask)
        # compute_mask is public API: it agrees with the mask the call attached.
        direct = layer.compute_mask([torch.tensor(a) for a in arrays],
                                    [None if m is None else torch.tensor(m) for m in masks])
        np.testing.assert_array_equal(direct.numpy(), want_mask)
    return got, got_mask


# -- bad configs: the parameter and the rule ----------------------------------------------------------
@pytest.mark.parametrize("layer, config, exc, fragments", [
    ("Concatenate", {"axis": "1"}, TypeError, ("'axis'", "axis.type")),
    ("Concatenate", {"axis": 1.5}, TypeError, ("'axis'", "axis.type")),
    ("Dot", {"axes": [1, 1, 1]}, ValueError, ("'axes'", "axes.length")),
    ("Dot", {"axes": "last"}, TypeError, ("'axes'", "axes.type")),
    ("Dot", {"axes": [1, 2.0]}, TypeError, ("'axes'", "axes.type")),
    ("Dot", {"axes": 1, "normalize": None}, TypeError, ("'normalize'", "normalize.type")),
    ("Dot", {}, TypeError, ("'axes'", "required")),
    ("Add", {"axis": 1}, TypeError, ("axis",)),
])
def test_bad_config_names_the_parameter_and_rule(layer, config, exc, fragments):
    with _raises(exc, *fragments):
        getattr(L, layer)(**config)


@pytest.mark.parametrize("config, shapes, fragments", [
    ({"axis": 3}, [(2, 3), (2, 3)], ("axis", "axis_in_rank")),
    ({"axis": -3}, [(2, 3), (2, 3)], ("axis", "axis_in_rank")),
])
def test_concatenate_axis_outside_the_rank_names_axis(config, shapes, fragments):
    with _raises(ValueError, *fragments):
        L.Concatenate(**config)([torch.zeros(s) for s in shapes])


@pytest.mark.parametrize("axes, rule", [(0, "axes_not_batch"), ((1, 0), "axes_not_batch"), (-2, "axes_not_batch"),
                                        (2, "axes_in_rank"), ((1, -3), "axes_in_rank")])
def test_dot_axes_outside_the_rank_or_on_the_batch_name_axes(axes, rule):
    with _raises(ValueError, "axes", rule):
        L.Dot(axes=axes)([torch.zeros(2, 3), torch.zeros(2, 3)])


# -- wrong inputs: the layer and the shapes -----------------------------------------------------------------
@pytest.mark.parametrize("layer, config, shapes, fragments", [
    ("Add", {}, [(2, 3), (2, 4)], ("incompatible",)),
    ("Maximum", {}, [(2, 3, 4), (2, 3, 2)], ("incompatible",)),
    ("Average", {}, [(2, 3), (3, 3)], ("batch sizes",)),
    ("Subtract", {}, [(2, 3)] * 3, ("exactly 2 inputs",)),
    ("Subtract", {}, [(2, 3)], ("exactly 2 inputs",)),
    ("Concatenate", {"axis": 1}, [(2, 3, 4), (2, 2, 5)], ("matching shapes", "axis 2")),
    ("Concatenate", {"axis": -1}, [(2, 3, 4), (2, 3)], ("one rank",)),
    ("Dot", {"axes": 1}, [(2, 3), (2, 4)], ("axis values 3", "!= 4")),
    ("Dot", {"axes": 1}, [(2, 3), (3, 3)], ("batch sizes",)),
    ("Dot", {"axes": 1}, [(2, 3)] * 3, ("exactly 2 inputs",)),
    ("Dot", {"axes": -1}, [(2,), (2,)], ("rank >= 2",)),
])
def test_inputs_that_do_not_merge_name_the_layer_and_the_shapes(layer, config, shapes, fragments):
    tensors = [torch.zeros(s) for s in shapes]
    with _raises(ValueError, layer, str(shapes[0]), *fragments):
        getattr(L, layer)(**config)(tensors)


@pytest.mark.parametrize("layer, config", [("Add", {}), ("Concatenate", {}), ("Dot", {"axes": 1})])
def test_a_bare_tensor_is_refused(layer, config):
    with _raises(ValueError, layer, "list of inputs", "(2, 3)"):
        getattr(L, layer)(**config)(torch.zeros(2, 3))


def test_a_later_call_with_shapes_that_do_not_merge_is_refused_too():
    layer = L.Add()
    layer([torch.zeros(2, 3), torch.zeros(2, 3)])
    with _raises(ValueError, "Add", "(2, 4)", "incompatible"):
        layer([torch.zeros(2, 3), torch.zeros(2, 4)])
    cat = L.Concatenate(axis=1)
    cat([torch.zeros(2, 3, 4), torch.zeros(2, 1, 4)])
    with _raises(ValueError, "Concatenate", "(2, 1, 5)", "matching shapes"):
        cat([torch.zeros(2, 3, 4), torch.zeros(2, 1, 5)])


def test_a_mask_list_of_the_wrong_length_is_refused():
    with _raises(ValueError, "Add", "mask", "2 masks"):
        L.Add()([torch.zeros(2, 3, 4), torch.zeros(2, 3, 4)], mask=[torch.ones(2, 3, dtype=torch.bool)] * 3)


# -- what the suite cannot draw, against both oracles -----------------------------------------------------
BROADCASTS = [[(2, 3, 4), (2, 1, 4)], [(2, 3, 4), (2, 4)], [(2, 3, 4), (2, 3, 1)], [(2, 1), (2, 1, 3), (2, 4, 1)],
              [(2, 1, 4), (2, 3, 1), (2, 3, 4)], [(2,), (2, 5)]]


@pytest.mark.parametrize("flavor", ORACLES)
@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("shapes", BROADCASTS, ids=lambda s: "+".join(map(str, s)))
def test_broadcasting_matches_the_oracle(oracle, tf, flavor, name, shapes):
    if name == "Subtract" and len(shapes) != 2:
        pytest.skip("Subtract takes two inputs")
    got, _ = _both(oracle, tf, flavor, name, {}, _arrays(shapes))
    symbolic = [(None, *s[1:]) for s in shapes]
    with use_flavor(flavor):
        layer = getattr(L, name)()
    assert layer.compute_output_shape(symbolic) == spec.lookup(name).output_shape({}, symbolic)
    assert spec.lookup(name).output_shape({}, shapes) == got.shape


@pytest.mark.parametrize("flavor", ORACLES)
@pytest.mark.parametrize("name", ELEMENTWISE + ["Concatenate"])
@pytest.mark.parametrize("which", ["all", "second", "first"])
def test_masks_on_any_inputs_match_the_oracle(oracle, tf, flavor, name, which):
    n = 2 if name == "Subtract" else 3
    shapes = [(2, 8, 3)] * n
    masks = [_mask((2, 8), seed) for seed in range(n)]
    if which == "second":
        masks = [None, masks[1]] + [None] * (n - 2)
    elif which == "first":
        masks = [masks[0]] + [None] * (n - 1)
    config = {"axis": -1} if name == "Concatenate" else {}
    _both(oracle, tf, flavor, name, config, _arrays(shapes, seed=3), masks)


@pytest.mark.parametrize("flavor", ORACLES)
@pytest.mark.parametrize("axis", [1, -2, 0])
def test_concatenate_masks_along_other_axes_match_the_oracle(oracle, tf, flavor, axis):
    # Every input masked (tf_keras fails when one has none: known_mismatches.yaml), and sizes that differ.
    shapes = [(2, 4, 3), (2, 2, 3)] if axis != 0 else [(2, 4, 3), (1, 4, 3)]
    masks = [_mask(s[:-1], seed) for seed, s in enumerate(shapes)]
    _both(oracle, tf, flavor, "Concatenate", {"axis": axis}, _arrays(shapes, seed=5), masks)


def test_concatenate_mask_of_one_input_along_a_middle_axis_follows_keras3_under_both_flavors(oracle, tf):
    # tf_keras cannot compute it (ConcatOp fails); ours gives the mask tf_keras computes where it runs:
    # the masks concatenated (ones for the unmasked input), the same as Keras 3's here.
    shapes = [(2, 4, 3), (2, 2, 3)]
    masks = [_mask((2, 4), 1), None]
    _, want = _oracle_run(tf, oracle("keras3"), "Concatenate", {"axis": 1}, _arrays(shapes), masks)
    for flavor in ORACLES:
        _, _, got = _ours_run(flavor, "Concatenate", {"axis": 1}, _arrays(shapes), masks)
        np.testing.assert_array_equal(got, want)


def test_a_lone_mask_tensor_is_the_first_inputs():
    arrays = _arrays([(2, 4, 3)] * 2)
    mask = _mask((2, 4), 0)
    for flavor in ORACLES:
        with use_flavor(flavor):
            layer = L.Maximum()
        out = layer([torch.tensor(a) for a in arrays], mask=torch.tensor(mask))
        _, want, want_mask = _ours_run(flavor, "Maximum", {}, arrays, [mask, None])
        np.testing.assert_array_equal(out.detach().numpy(), want)
        got_mask = getattr(out, "_keras_mask", None)
        assert (got_mask is None) == (want_mask is None)
        if want_mask is not None:
            np.testing.assert_array_equal(got_mask.numpy(), want_mask)


@pytest.mark.parametrize("flavor", ORACLES)
@pytest.mark.parametrize("axes, shapes", [
    ((1, 2), [(2, 3), (2, 4, 3)]), (-1, [(2, 3, 5), (2, 5)]), (-3, [(2, 3), (2, 3)]), ((2, 1), [(2, 3, 4), (2, 4)]),
    ((1, 3), [(2, 5, 2, 3), (2, 1, 4, 5)]), (-1, [(2, 1), (2, 1)]),
])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_over_inputs_of_different_ranks_matches_the_oracle(oracle, tf, flavor, axes, shapes, normalize):
    config = {"axes": axes, "normalize": normalize}
    got, _ = _both(oracle, tf, flavor, "Dot", config, _arrays(shapes, seed=2))
    symbolic = [(None, *s[1:]) for s in shapes]
    assert spec.lookup("Dot").output_shape(config, symbolic) == L.Dot(**config).compute_output_shape(symbolic)
    assert spec.lookup("Dot").output_shape(config, shapes) == got.shape


@pytest.mark.parametrize("flavor, want_norm_floor", [("keras3", 1e-7), ("tf_keras", 1e-6)])
def test_dot_normalize_floors_the_norm_as_each_oracle_does(oracle, tf, flavor, want_norm_floor):
    # A vector of norm sqrt(5) * 1e-12 is scaled by 1 / floor, not by 1 / its norm.
    arrays = [np.array([[1e-12, 2e-12, 0.0]], np.float32), np.array([[1.0, 1.0, 1.0]], np.float32)]
    got, _ = _both(oracle, tf, flavor, "Dot", {"axes": 1, "normalize": True}, arrays)
    np.testing.assert_allclose(got, [[3e-12 / want_norm_floor / np.sqrt(3)]], rtol=1e-5)


@pytest.mark.parametrize("flavor", ORACLES)
@pytest.mark.parametrize("name", ["Maximum", "Minimum"])
def test_ties_send_the_gradient_to_the_first_input(tf, oracle, flavor, name):
    arrays = _arrays([(2, 6)] * 3, seed=1, ties=True)
    variables = [tf.Variable(a) for a in arrays]
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(getattr(oracle(flavor).layers, name)()([tf.identity(v) for v in variables]))
    want = [g.numpy() for g in tape.gradient(y, variables)]
    with use_flavor(flavor):
        layer = getattr(L, name)()
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    layer(tensors).sum().backward()
    for t, w in zip(tensors, want):
        np.testing.assert_array_equal(t.grad.numpy(), w)


def test_nan_propagates_through_maximum_and_minimum(tf):
    a = np.array([[np.nan, 1.0, 0.0, -0.0]], np.float32)
    b = np.array([[1.0, np.nan, -0.0, 0.0]], np.float32)
    for name, op in (("Maximum", tf.maximum), ("Minimum", tf.minimum)):
        want = op(a, b).numpy()
        got = getattr(L, name)()([torch.tensor(a), torch.tensor(b)]).numpy()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# -- the functional forms ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("function, name, kwargs", [
    (merging.add, "Add", {}), (merging.subtract, "Subtract", {}), (merging.multiply, "Multiply", {}),
    (merging.average, "Average", {}), (merging.maximum, "Maximum", {}), (merging.minimum, "Minimum", {}),
    (merging.concatenate, "Concatenate", {"axis": 1}), (merging.dot, "Dot", {"axes": 1, "normalize": True}),
])
def test_functional_forms_build_the_layer_and_call_it(function, name, kwargs):
    tensors = [torch.tensor(a) for a in _arrays([(2, 3)] * 2, seed=4)]
    np.testing.assert_array_equal(function(tensors, **kwargs).numpy(), getattr(L, name)(**kwargs)(tensors).numpy())


def test_functional_dot_defaults_to_the_last_axis(oracle, tf):
    arrays = _arrays([(2, 3, 4), (2, 5, 4)], seed=6)
    want = oracle("keras3").layers.dot([tf.constant(a) for a in arrays])
    np.testing.assert_allclose(merging.dot([torch.tensor(a) for a in arrays]).numpy(), np.asarray(want), rtol=1e-6)


def test_dot_keeps_axes_as_given_in_its_config():
    assert L.Dot(axes=-1).get_config()["axes"] == -1
    assert L.Dot(axes=[1, 2]).get_config()["axes"] == [1, 2]
    assert L.Dot(axes=(1, 2)).get_config()["axes"] == (1, 2)
    clone = L.Dot.from_config(L.Dot(axes=(2, 1), normalize=True).get_config())
    assert clone.axes == (2, 1) and clone.normalize is True


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("flavor", ORACLES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_special_values_match_the_oracle(oracle, tf, flavor, name, dtype):
    # The suite feeds no edge values to layers without choice parameters (see merging.yaml): NaN, the
    # infinities, both zeros and the extremes of the dtype, against each other and normal values.
    from keraspec.conformance.strategies import edge_value_table
    from keraspec.conformance.tolerance import compare, tolerance

    table = edge_value_table(dtype)
    kinds = ["nan", "inf", "-inf", "0", "-0", "max", "-max", "tiny", "subnormal"]
    if name == "Multiply":
        # TF's CPU kernels read a subnormal input as zero (denormals-are-zero), so inf * subnormal is
        # NaN there and inf in IEEE arithmetic, which keraspec.impl keeps (as for Masking:
        # known_mismatches.yaml, masking-subnormal-equals-zero).
        kinds.remove("subnormal")
    values = np.array([table[k] for k in kinds] + [1.5, -2.0], np.float32)
    n = 2 if name == "Subtract" else 3
    grids = np.meshgrid(*[values] * n, indexing="ij")
    arrays = [g.reshape(1, -1) for g in grids]
    tensors = [tf.constant(a) for a in arrays]
    want = np.asarray(tf.cast(getattr(oracle(flavor).layers, name)(dtype=dtype)(tensors), tf.float32))
    with use_flavor(flavor):
        layer = getattr(L, name)(dtype=dtype)
    got = layer([torch.tensor(a) for a in arrays]).float().numpy()
    # The suite's comparison: NaN matches NaN, infinities by sign, and TF's flushing of subnormal
    # results to zero (its CPU kernels run with denormals-are-zero) is within the tolerance's floor.
    c = compare(got, want, tolerance(dtype, "cpu", spec.lookup(name).op_class), f"{name} on special values")
    assert c.ok, c.detail
