"""The suite is deterministic under the CI profile: reruns give the same results, case for case.

Every check seeds hypothesis from its test id (``plugin._stable_seed``) and every case's values,
weights and cotangents from its drawn seed, so a rerun must reproduce each status, each measured
error and each shrunk example exactly.  This runs a selection -- a layer of each kind of check
(weights, initial weights and a training step; ties and NaN in max pooling; a stochastic layer; a
masking layer) in a full and a mixed precision policy -- ``KERASPEC_DETERMINISM_RUNS`` times (2 in
``make test``; ``make determinism`` runs 10) and compares the results files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[2]
#: One layer per kind of check: weights, initial weights, training step (Dense), max-like with ties
#: and NaN (MaxPooling2D), statistical (Dropout), masks (Masking); small, so reruns are cheap.
SELECTION = "Dense- or MaxPooling2D- or Dropout- or Masking-"
#: The same layers by name (-k matches substrings: "Dense-" is in "EinsumDense-" too).
LAYERS = "Dense,MaxPooling2D,Dropout,Masking"
DTYPES = ("float32", "mixed_bfloat16")
RUNS = int(os.environ.get("KERASPEC_DETERMINISM_RUNS", "2"))
#: What a rerun must reproduce exactly.
COMPARED = ("status", "max_abs_err", "max_rel_err", "atol", "rtol", "example", "message", "xfail_entry")


def _run(out: Path) -> dict[str, dict[str, Any]]:
    env = dict(os.environ, CI="true", TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0",
               KERAS_BACKEND="tensorflow", OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance/tests", "-q", "-n", "0", "--hypothesis-profile=ci",
         "-k", SELECTION, "--layers", LAYERS, *(a for d in DTYPES for a in ("--dtype", d)), "--results", str(out), "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    records: dict[str, dict[str, Any]] = {}
    for path in out.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("kind") == "case":
                records[record["test_id"]] = {k: record.get(k) for k in COMPARED}
    assert records, f"no case records in {out}"
    return records


def test_reruns_give_the_same_results(tmp_path: Path) -> None:
    first = _run(tmp_path / "run-0")
    for n in range(1, RUNS):
        again = _run(tmp_path / f"run-{n}")
        assert again.keys() == first.keys(), f"run {n} ran other tests: {sorted(again.keys() ^ first.keys())[:5]}"
        differ = {t: (first[t], again[t]) for t in first if first[t] != again[t]}
        assert not differ, f"run {n} differs from run 0 in {len(differ)} cases, e.g. " + json.dumps(
            next(iter(differ.items())), default=str)[:1500]
