"""The backend functions (K.*) against tf_keras.backend and keras.ops: checks chosen from the ops
spec (see keraspec.conformance.ops).  Select functions with KERASPEC_OPS=dot,batch_dot (the
--layers option names layers, so it leaves these tests out), checks with --checks op_forward."""

from __future__ import annotations

import os

import pytest

from keraspec.conformance import ops as ops_harness
from keraspec.conformance.plugin import state

#: Environment variable naming the functions to test (comma-separated); all when unset.
OPS_SELECTION_ENV = "KERASPEC_OPS"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "op_target" not in metafunc.fixturenames:
        return
    st_ = state(metafunc.config)
    check = metafunc.function.__name__.removeprefix("test_")
    names = [n for n in os.environ.get(OPS_SELECTION_ENV, "").split(",") if n] or None
    # A run focused on layers (--layers / --families without an ops family) leaves the ops out.
    focused_elsewhere = names is None and (st_.layers or (st_.families and not any(f.startswith("ops") for f in st_.families)))
    params = [] if focused_elsewhere or not st_.wants(check) else ops_harness.targets(
        check, list(st_.oracles), list(st_.devices), list(st_.dtypes), names)
    metafunc.parametrize("op_target", params, ids=["-".join(p) for p in params])


def test_op_forward(request: pytest.FixtureRequest, op_target: tuple[str, str, str, str]) -> None:
    ops_harness.run_op_check(request, op_target, "op_forward")


def test_op_gradients(request: pytest.FixtureRequest, op_target: tuple[str, str, str, str]) -> None:
    ops_harness.run_op_check(request, op_target, "op_gradients")


def test_op_stochastic(request: pytest.FixtureRequest, op_target: tuple[str, str, str, str]) -> None:
    ops_harness.run_op_check(request, op_target, "op_stochastic")


# -- the harness's power: porting mistakes it must catch -------------------------------------------

def _bmm_batch_dot(x, y, axes=None):
    """A common port: torch.bmm semantics whatever the axes."""
    import torch

    return torch.bmm(x, y) if x.dim() == 3 and y.dim() == 3 else torch.zeros(())


def _keras3_hard_sigmoid(x):
    import torch

    return torch.nn.functional.relu6(x + 3) / 6


def _unclipped_crossentropy(target, output, from_logits=False, axis=-1):
    import torch

    if from_logits:
        return -torch.sum(target * torch.log_softmax(output, dim=axis), dim=axis)
    return -torch.sum(target * torch.log(output / output.sum(dim=axis, keepdim=True)), dim=axis)


def _sample_variance(x, axis=None, keepdims=False):
    import torch

    dims = tuple(range(x.dim())) if axis is None else axis
    return torch.var(x, dim=dims, keepdim=keepdims, correction=1)


def _unscaled_dropout(x, level, noise_shape=None, seed=None):
    import torch

    return x * (torch.rand(x.shape) >= level).to(x.dtype)


def _untruncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    from keraspec.impl import backend as K

    return K.random_normal(shape, mean, stddev, dtype, seed)


#: Plausible wrong ports, and the check that must catch each.
MUTANTS = {"batch_dot": (_bmm_batch_dot, "op_forward"), "hard_sigmoid": (_keras3_hard_sigmoid, "op_forward"),
           "categorical_crossentropy": (_unclipped_crossentropy, "op_forward"), "var": (_sample_variance, "op_forward"),
           "dropout": (_unscaled_dropout, "op_stochastic"), "truncated_normal": (_untruncated_normal, "op_stochastic")}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_the_harness_catches_a_porting_mistake(monkeypatch, name):
    """With one function replaced by a plausible wrong port, some drawn case fails its check."""
    from hypothesis import HealthCheck, Phase, find, settings

    from keraspec.impl import backend as K
    from keraspec.spec import ops as ops_spec

    mutant, check = MUTANTS[name]
    monkeypatch.setattr(K, name, mutant)
    spec = ops_spec.lookup(name)
    dtype = spec.dtypes[-1]

    def caught(case: ops_harness.OpCase) -> bool:
        try:
            ops_harness.RUNNERS[check](spec, case, "tf_keras", "cpu")
        except Exception:  # noqa: BLE001 -- a wrong output, shape or a crash all count as caught
            return True
        return False

    find(ops_harness.op_cases(spec, dtype, "tf_keras", check), caught,
         settings=settings(max_examples=50, database=None, phases=[Phase.generate],  # finding one is enough
                           suppress_health_check=list(HealthCheck)))
