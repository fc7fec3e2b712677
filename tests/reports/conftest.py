"""Synthetic results files for the report tests, written with the real ResultsWriter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from keraspec.conformance.results import CaseRecord, ResultsWriter

EVIL = "<script>alert(1)</script>\"'&"
IMPL = "keraspec.impl.layers"


def header(shard: str, worker: str = "gw0", run_id: str = "run-A") -> dict:
    return {
        "run_id": run_id,
        "shard": shard,
        "worker": worker,
        "started": "2025-01-01T10:00:00+00:00",
        "impl": IMPL,
        "oracles": ["keras3", "tf_keras"],
        "devices": ["cpu"],
        "dtypes": ["float32"],
        "profile": "ci",
        "versions": {"keras": "3.15.1", "torch": "2.13.0"},
        "command": "pytest conformance -p keraspec --shard 1/3",
    }


def case(layer: str, check: str, status: str, *, oracle: str = "keras3", family: str = "core",
         dtype: str = "float32", **kw) -> CaseRecord:
    return CaseRecord(
        layer=layer, family=family, check=check, oracle=oracle, impl=IMPL, device="cpu", dtype=dtype,
        status=status, test_id=f"conformance/test_layers.py::test_{check}[{layer}-{oracle}-{dtype}]", **kw,
    )


FAIL_MESSAGE = "forward mismatch: max abs err 0.5 > atol 1e-05"
FAIL_REPRO = "pytest 'conformance/test_layers.py::test_forward[Dense-tf_keras-float32]' --hypothesis-seed=1234"
FAIL_SEED = "@reproduce_failure('6.170.15', b'AXicY2BgAAAABAAB')"


def current_cases_shard1() -> list[CaseRecord]:
    return [
        case("Dense", "forward", "passed", max_abs_err=1e-7, max_rel_err=2e-7, atol=1e-5, rtol=1e-5),
        case("Dense", "forward", "failed", oracle="tf_keras", message=FAIL_MESSAGE,
             max_abs_err=0.5, max_rel_err=0.25, atol=1e-5, rtol=1e-5,
             example={"config": {"units": 3, "use_bias": True}, "input_shapes": [[2, 4]], "marker": "EXAMPLE-MARK"},
             seed=FAIL_SEED, repro=FAIL_REPRO),
        case("Dense", "shapes", "passed"),
        case("ReLU", "forward", "passed", family="activations", max_abs_err=0.0, max_rel_err=0.0),
        case("Conv2D", "forward", "passed", family="convolutional", max_abs_err=3e-6),
        case("Conv2D", "gradients", "xfailed", family="convolutional",
             message="TF computes the bias gradient in float16", xfail_entry="conv2d-bias-grad"),
    ]


def current_cases_shard3() -> list[CaseRecord]:
    return [
        case("LayerNormalization", "forward", "error", family="normalization",
             message="RuntimeError: shape mismatch"),
        case(EVIL, "config", "failed", family="core", message="bad " + EVIL, example={"config": {"name": EVIL}},
             repro="pytest -k " + EVIL),
        case("Dropout", "forward_training", "xpassed", message="was flaky", xfail_entry="dropout-rng"),
        case("Dropout", "forward", "skipped", message="needs cuda"),
        # The record the truncation below cuts in half: it must be reported, not silently lost.
        case("Zeta", "forward", "passed"),
    ]


def previous_cases() -> list[CaseRecord]:
    return [
        case("Dense", "forward", "passed"),
        case("Dense", "forward", "passed", oracle="tf_keras"),
        case("Dense", "shapes", "passed"),
        case("ReLU", "forward", "failed", family="activations", message="was broken"),
        case("Conv2D", "forward", "passed", family="convolutional"),
        case("Conv2D", "gradients", "xfailed", family="convolutional", xfail_entry="conv2d-bias-grad"),
        case("OldLayer", "forward", "passed"),
    ]


def write(path: Path, hdr: dict, cases: list[CaseRecord], close: bool = True) -> Path:
    writer = ResultsWriter(path, hdr)
    for c in cases:
        writer.add(c)
    if close:
        writer.close("2025-01-01T10:05:00+00:00")
    else:
        writer._fh.close()
    return path


def truncate_last_line(path: Path) -> None:
    """Cut the file in the middle of its last line, as a killed writer would leave it."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    last = lines[-1]
    path.write_text("".join(lines[:-1]) + last[: len(last) // 2], encoding="utf-8")


@dataclass
class Results:
    shard1: Path
    shard3: Path
    previous: Path
    results_dir: Path


def make_results(tmp_path: Path) -> Results:
    results_dir = tmp_path / "results"
    shard1 = write(results_dir / "shard1.jsonl", header("1/3"), current_cases_shard1())
    # Shard 3 was killed: the writer never closed, and the last record was half written.
    shard3 = write(results_dir / "shard3.jsonl", header("3/3", worker="gw1"), current_cases_shard3(), close=False)
    truncate_last_line(shard3)
    previous = write(tmp_path / "old" / "prev.jsonl", header("1/1", run_id="run-old"), previous_cases())
    return Results(shard1, shard3, previous, results_dir)


@pytest.fixture
def results(tmp_path: Path) -> Results:
    return make_results(tmp_path)
