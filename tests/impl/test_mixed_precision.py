"""Keras's mixed-precision dtype policies ('mixed_float16', 'mixed_bfloat16') in keraspec.impl.

What Keras 3 and tf_keras do, and these tests pin down (no TensorFlow needed):

* the policy name is accepted as ``dtype`` (also as a serialized DTypePolicy / tf_keras Policy dict);
  ``layer.dtype`` is the *variable* dtype (float32), ``compute_dtype`` is float16/bfloat16, and
  ``get_config()["dtype"]`` is the serialized policy with the policy's name;
* weights are stored (and returned by ``get_weights``) in float32; floating inputs are cast to the
  compute dtype, the weights are cast to it where the call reads them, outputs are in it;
* weight-regularizer penalties are taken on the float32 weights (float32 losses), activity losses
  on the compute-dtype outputs;
* gradients reach the float32 weights.
"""

from __future__ import annotations

import math
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keraspec import spec
from keraspec.conformance.strategies import cases, make_inputs
from keraspec.impl import layers as L
from keraspec.impl.base import DTypePolicy
from keraspec.impl.flavor import use_flavor

POLICIES = {"mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}
#: Machine epsilon of each compute dtype.
EPS = {torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}
#: Every layer class once (aliases dropped).
# The layers the spec describes (a Lambda wraps a user's function: tests/impl/test_lambda.py).
LAYER_NAMES = sorted({cls.__name__ for cls in L._registry.values() if cls.__name__ in spec.layers()})
#: Layers torch cannot run in float16/bfloat16 on CPU whatever the policy (no CPU kernel:
#: ``avg_pool3d``), so not under a mixed policy either; checked to still fail in the plain dtype.
NO_LOW_PRECISION_CPU_KERNEL = {"AveragePooling3D"}
#: Layers whose Keras 3 output is float32 under a mixed policy in some cases, with the reason.
OUTPUT_MAY_BE_FLOAT32 = {
    "CenterCrop": "a window larger than the image is resized by smart_resize, which returns float32 in Keras 3",
}


def keras3_policy(name: str) -> dict:
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def _dense(policy: str = "mixed_float16", **kwargs) -> L.Dense:
    layer = L.Dense(3, dtype=policy, **kwargs)
    layer.build((None, 4))
    rng = np.random.default_rng(0)
    layer.set_weights([rng.uniform(-1, 1, (4, 3)).astype(np.float32), rng.uniform(-1, 1, 3).astype(np.float32)])
    return layer


# -- the policy ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype",
    ["mixed_float16", keras3_policy("mixed_float16"),
     {"module": "keras.mixed_precision", "class_name": "Policy", "config": {"name": "mixed_float16"},
      "registered_name": None},  # tf_keras's serialized Policy
     DTypePolicy.from_name("mixed_float16")],
    ids=["name", "keras3-dict", "tf_keras-dict", "policy"],
)
def test_policy_forms_are_accepted(dtype) -> None:
    layer = L.Dense(2, dtype=dtype)
    assert layer.dtype_policy.name == "mixed_float16"
    assert (layer.compute_dtype, layer.variable_dtype, layer.dtype) == ("float16", "float32", "float32")


def test_a_policy_object_from_keras_is_read_by_its_name() -> None:
    class Policy:  # duck-typed like keras.DTypePolicy / tf_keras's Policy
        name, compute_dtype, variable_dtype = "mixed_bfloat16", "bfloat16", "float32"

    layer = L.Dense(2, dtype=Policy())
    assert (layer.dtype_policy.name, layer.compute_dtype, layer.dtype) == ("mixed_bfloat16", "bfloat16", "float32")


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_a_plain_dtype_is_its_own_compute_and_variable_dtype(name: str) -> None:
    layer = _dense(name)
    assert (layer.compute_dtype, layer.variable_dtype, layer.dtype) == (name, name, name)
    assert not layer.dtype_policy.is_mixed
    assert layer.kernel.dtype == getattr(torch, name)
    assert layer(torch.ones(2, 4)).dtype == getattr(torch, name)
    assert layer.get_config()["dtype"] == keras3_policy(name)


@pytest.mark.parametrize("name", ["mixed_float64", "mixed_int8", "float8", "half"])
def test_unknown_policies_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="mixed_float16"):
        L.Dense(2, dtype=name)


def test_policy_repr_is_keras() -> None:
    assert repr(L.Dense(2, dtype="mixed_bfloat16").dtype_policy) == '<DTypePolicy "mixed_bfloat16">'


# -- config ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_get_config_round_trip(policy: str) -> None:
    layer = _dense(policy, activation="tanh")
    config = layer.get_config()
    assert config["dtype"] == keras3_policy(policy)
    clone = L.Dense.from_config(config)
    assert clone.get_config() == config
    assert (clone.compute_dtype, clone.variable_dtype) == (layer.compute_dtype, layer.variable_dtype)
    clone.build((None, 4))
    clone.set_weights(layer.get_weights())
    x = torch.randn(5, 4)
    assert torch.equal(clone(x), layer(x))


def test_spatial_dropout_reports_the_variable_dtype_like_keras3() -> None:
    # Keras 3's SpatialDropout get_config writes ``self.dtype``, the variable dtype.
    assert L.SpatialDropout2D(0.5, dtype="mixed_float16").get_config()["dtype"] == "float32"


def test_input_layer_refuses_a_mixed_policy_like_keras3() -> None:
    with pytest.raises(ValueError, match="mixed_float16"):
        L.InputLayer(shape=(3,), dtype="mixed_float16")


# -- weights, call, gradients, losses --------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_weights_are_float32_and_the_call_computes_in_the_compute_dtype(policy: str) -> None:
    compute = POLICIES[policy]
    layer = _dense(policy)
    assert [p.dtype for p in layer.parameters()] == [torch.float32, torch.float32]
    assert [w.dtype for w in layer.get_weights()] == [np.float32, np.float32]
    for x in (torch.randn(2, 4), torch.randn(2, 4, dtype=torch.float64), torch.ones(2, 4, dtype=torch.int64)):
        assert layer(x).dtype == compute
    x = torch.randn(6, 4)
    kernel, bias = (torch.tensor(w).to(compute) for w in layer.get_weights())
    # The input, kernel and bias rounded to the compute dtype, the op in the compute dtype.
    assert torch.equal(layer(x), torch.nn.functional.linear(x.to(compute), kernel.t(), bias))


@pytest.mark.parametrize("policy", POLICIES)
def test_set_weights_converts_to_float32(policy: str) -> None:
    layer = _dense(policy)
    kernel = (np.arange(12).reshape(4, 3) / 8).astype(np.float16)
    bias = np.array([1.0 + 2.0**-20, 0.0, -2.0], np.float64)  # float32 keeps what float16 would not
    layer.set_weights([kernel, bias])
    got = layer.get_weights()
    assert [w.dtype for w in got] == [np.float32, np.float32]
    np.testing.assert_array_equal(got[0], kernel.astype(np.float32))
    np.testing.assert_array_equal(got[1], bias.astype(np.float32))
    layer.set_weights([kernel.astype(ml_dtypes.bfloat16), bias.astype(np.float32)])
    assert layer.kernel.dtype == torch.float32


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_reach_the_float32_weights(policy: str) -> None:
    compute = POLICIES[policy]
    layer = _dense(policy)
    x = torch.randn(5, 4)
    layer(x).float().sum().backward()
    assert layer.kernel.grad is not None and layer.kernel.grad.dtype == torch.float32
    assert layer.bias.grad is not None and layer.bias.grad.dtype == torch.float32
    # d sum(x @ K + b) / dK = x^T @ 1 (in the compute dtype, as the op computes it), / db = batch.
    want = (x.to(compute).t() @ torch.ones(5, 3, dtype=compute)).float()
    torch.testing.assert_close(layer.kernel.grad, want, rtol=EPS[compute], atol=EPS[compute])
    torch.testing.assert_close(layer.bias.grad, torch.full((3,), 5.0))
    # A training step on the float32 weights is seen by the next call: no stale compute-dtype copy.
    with torch.no_grad():
        layer.kernel.add_(1.0)
    assert "kernel" not in vars(layer) and "bias" not in vars(layer)
    kernel = layer.kernel.detach().to(compute)
    want_y = torch.nn.functional.linear(x.to(compute), kernel.t(), layer.bias.detach().to(compute))
    assert torch.equal(layer(x), want_y)


def test_the_cast_weights_do_not_outlive_a_failing_call() -> None:
    layer = _dense()

    def failing(inputs):
        assert layer.kernel.dtype == torch.float16  # inside the call: the cast
        raise RuntimeError("boom")

    layer.call = failing
    with pytest.raises(RuntimeError):
        layer(torch.randn(2, 4))
    del layer.call
    assert layer.kernel.dtype == torch.float32 and isinstance(layer.kernel, torch.nn.Parameter)
    assert "kernel" not in vars(layer)


@pytest.mark.parametrize("policy", POLICIES)
def test_regularizer_losses_follow_keras_dtypes(policy: str) -> None:
    compute = POLICIES[policy]
    layer = _dense(policy, kernel_regularizer="l2", bias_regularizer="l1", activity_regularizer="l1")
    y = layer(torch.randn(4, 4))
    activity, kernel_penalty, bias_penalty = layer.losses
    assert activity.dtype == compute  # on the outputs
    torch.testing.assert_close(activity, y.abs().sum() * 0.01 / 4, rtol=EPS[compute], atol=0.0)
    assert kernel_penalty.dtype == torch.float32 and bias_penalty.dtype == torch.float32  # on the weights
    kernel, bias = layer.get_weights()
    assert float(kernel_penalty) == pytest.approx(0.01 * float((kernel.astype(np.float64) ** 2).sum()), rel=1e-6)
    assert float(bias_penalty) == pytest.approx(0.01 * float(np.abs(bias).sum()), rel=1e-6)


@pytest.mark.parametrize("policy", POLICIES)
def test_locally_connected_dense_implementation(policy: str) -> None:
    # implementation=2 multiplies the kernel by a connectivity mask in the call: the mask is in the
    # compute dtype, so the masked kernel stays in it.
    with use_flavor("tf_keras"):
        layer = L.LocallyConnected2D(2, 2, implementation=2, dtype=policy)
    y = layer(torch.randn(2, 4, 3, 2))
    assert y.dtype == POLICIES[policy] and layer.kernel.dtype == torch.float32


# -- every layer --------------------------------------------------------------------------------------------
def _flat(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _float_arguments_at(spec, config: dict, compute: torch.dtype) -> dict:
    """``config`` with its float arguments rounded to the compute dtype: Keras casts them to it where
    the call meets the input (ReLU's threshold, LeakyReLU's slope), so the float32 reference must see
    the same numbers -- an input element planted at the threshold stays at it in both."""
    out = dict(config)
    for name, value in config.items():
        p = spec.params.get(name)
        if p is not None and p.type == "float" and isinstance(value, float):
            out[name] = float(torch.tensor(value, dtype=torch.float32).to(compute))
    return out


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", LAYER_NAMES)
@settings(max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_layer_runs_under_a_mixed_policy(name: str, policy: str, data: st.DataObject) -> None:
    """Builds and runs on a drawn valid config and input; outputs are in the compute dtype, weights in
    float32, and the outputs agree with a float32 layer fed the same values rounded to the compute
    dtype (input and weights) up to the compute dtype's rounding."""
    cls = L.get(name)
    spec = cls.spec()
    compute = POLICIES[policy]
    if spec.input.max_count == 0:  # InputLayer: Keras 3 takes a dtype, not a policy
        with pytest.raises(ValueError):
            cls(shape=(3,), dtype=policy)
        return
    oracle = "keras3" if "keras3" in spec.oracles else next(iter(spec.oracles))
    # Unit-scale inputs: the float32 reference's wide magnitudes would overflow float16.
    case = data.draw(cases(spec, oracle, "float32", training=False, magnitude=0), label="case")
    with use_flavor(oracle):
        layer = cls(**case.config, dtype=policy)
        reference = cls(**_float_arguments_at(spec, case.config, compute), dtype="float32")
    arrays = make_inputs(spec, case)
    # Integer inputs (an embedding's ids) take no gradient.
    xs = [torch.tensor(a, requires_grad=bool(np.issubdtype(a.dtype, np.floating))) for a in arrays]
    arg = xs if len(xs) > 1 else xs[0]
    shapes = [tuple(x.shape) for x in xs] if len(xs) > 1 else tuple(xs[0].shape)
    if name in NO_LOW_PRECISION_CPU_KERNEL:
        with use_flavor(oracle), pytest.raises(NotImplementedError):  # stale once torch gains the kernel
            cls(**case.config, dtype=layer.compute_dtype)(arg)
        return
    layer.build(shapes)
    reference.build(shapes)
    # Float weights in float32 (an integer one, Normalization's count, keeps its own dtype).
    assert all(p.dtype == torch.float32 for p in layer.parameters() if p.is_floating_point())
    weights = layer.get_weights()
    assert all(w.dtype == np.float32 for w in weights if np.issubdtype(w.dtype, np.floating))
    # The reference gets the weights as the mixed layer's call sees them (rounded to the compute dtype).
    reference.set_weights([torch.tensor(w).to(compute).float() if np.issubdtype(w.dtype, np.floating) else w
                           for w in weights])

    def call(target: Any, inputs: list[torch.Tensor], training: bool = False) -> Any:
        if spec.call_input_names:  # inputs passed by name (MultiHeadAttention's query, value, key)
            return target(inputs[0], **dict(zip(spec.call_input_names[1:], inputs[1:])), training=training)
        return target(inputs if len(inputs) > 1 else inputs[0], training=training)

    outs = _flat(call(layer, xs))
    for out in outs:
        if out.is_floating_point() and name not in OUTPUT_MAY_BE_FLOAT32:
            assert out.dtype == compute, f"{name}: output in {out.dtype}"
    want = _flat(call(reference, [x.detach().to(compute).float() for x in xs]))
    eps = EPS[compute]
    for got, ref in zip(outs, want):
        assert got.shape == ref.shape
        ref = ref.detach().double()
        if ref.numel() and float(ref.abs().max()) > float(torch.finfo(compute).max):
            continue  # the true output overflows the compute dtype (Normalization by a tiny variance): inf is right
        scale = 1.0 + float(ref.abs().max()) if ref.numel() else 1.0
        error = float((got.detach().double() - ref).abs().max()) if ref.numel() else 0.0
        # A few roundings of the compute dtype, relative to the output's scale (reduction lengths stay
        # small: MAX_DIM per axis).
        assert error <= 16 * eps * scale, f"{name} {case.config}: max error {error:.3g} (scale {scale:.3g})"

    floating = [o for o in outs if o.is_floating_point() and o.requires_grad]
    if floating:
        sum(o.float().sum() for o in floating).backward()
        for p in layer.parameters():
            if p.requires_grad:
                assert p.grad is not None and p.grad.dtype == torch.float32
                assert math.isfinite(float(p.grad.abs().sum()))

    # Training mode (the stochastic layers draw in the compute dtype) and the losses' dtypes.
    outs = _flat(call(layer, xs, training=True))
    assert all(o.dtype == compute for o in outs if o.is_floating_point() and name not in OUTPUT_MAY_BE_FLOAT32)
    for loss, w in zip(layer.losses[len(layer._activity_losses):], [w for w in layer._weights if w.regularizer]):
        assert not torch.is_tensor(loss) or loss.dtype == torch.float32, f"{name}: penalty of {w.name} in {loss.dtype}"
