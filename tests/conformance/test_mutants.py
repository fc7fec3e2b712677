"""The suite must find bugs: run it against deliberately broken implementations (mutants).

Each mutant breaks one behaviour of a correct layer; the check that owns that behaviour must
fail on it, and a check that does not look at that behaviour must still pass.  A check that
cannot fail would show up here as a mutant that survives.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parents[2]

MUTANTS = textwrap.dedent(
    '''
    import torch
    import torch.nn.functional as F
    from keraspec.impl import core
    from keraspec.impl.layers import *  # noqa: F401,F403 - every other layer unchanged


    class Dense(core.Dense):
        """Drops the bias in the forward pass."""

        def call(self, inputs):
            return self.activation(F.linear(inputs, self.kernel.t()))


    class Permute(core.Permute):
        """Reports the output shape with the permutation applied backwards."""

        def compute_output_shape(self, input_shape):
            inverse = sorted(range(1, len(self.dims) + 1), key=lambda i: self.dims[i - 1])
            return (input_shape[0],) + tuple(input_shape[d] for d in inverse)


    class Masking(core.Masking):
        """Masks a step when ANY feature equals mask_value (Keras: when ALL do)."""

        def compute_mask(self, inputs, mask=None):
            return (inputs != self.mask_value).all(dim=-1)


    class RepeatVector(core.RepeatVector):
        """Serializes n under another value, and forgets to check the input's rank."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.input_spec = None

        def get_config(self):
            return {**super().get_config(), "n": self.n + 1}


    class ActivityRegularization(core.ActivityRegularization):
        """Forgets to divide the activity loss by the batch size."""

        def forward(self, inputs, training=None, mask=None, **kwargs):
            out = super().forward(inputs, training=training, mask=mask, **kwargs)
            self._activity_losses = [loss * inputs.shape[0] for loss in self._activity_losses]
            return out
    '''
)

#: mutant layer -> (checks that must fail, a check that must pass)
EXPECTED = {
    "Dense": ({"forward", "gradients"}, "config"),
    "Permute": ({"shapes"}, "forward"),
    "Masking": ({"masks"}, "config"),
    "RepeatVector": ({"config", "input_errors"}, "forward"),
    "ActivityRegularization": ({"forward"}, "shapes"),
}


def test_every_mutant_is_caught(tmp_path):
    (tmp_path / "mutant_impl.py").write_text(MUTANTS)
    results = tmp_path / "results"
    env = dict(os.environ, PYTHONPATH=str(tmp_path), KERASPEC_RUN_ID="mutants")
    cmd = [sys.executable, "-m", "pytest", str(REPO / "conformance" / "tests"), "-q", "-p", "no:randomly",
           "--impl", "mutant_impl", "--layers", ",".join(EXPECTED), "--oracle", "keras3", "--dtype", "float64",
           "--checks", "config,shapes,forward,gradients,masks,input_errors", "--hypothesis-profile=ci", "--results", str(results),
           "-k", "not spec_checker"]
    subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    records = [json.loads(line) for f in results.glob("*.jsonl") for line in f.read_text().splitlines()]
    status = {(r["layer"], r["check"]): r["status"] for r in records if r["kind"] == "case"}
    survivors, false_alarms = [], []
    for layer, (must_fail, must_pass) in EXPECTED.items():
        survivors += [f"{layer}:{c} ({status.get((layer, c))})" for c in must_fail if status.get((layer, c)) != "failed"]
        if status.get((layer, must_pass)) != "passed":
            false_alarms.append(f"{layer}:{must_pass} ({status.get((layer, must_pass))})")
    assert not survivors, f"mutants the suite did not catch: {survivors}"
    assert not false_alarms, f"checks that failed on a behaviour the mutant kept: {false_alarms}"
