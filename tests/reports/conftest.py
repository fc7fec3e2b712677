"""Synthetic results files for the report tests, written with the real ResultsWriter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from keraspec.conformance.results import CaseRecord, ResultsWriter

EVIL = "<script>alert(1)</script>\"'&"
IMPL = "keraspec.impl.layers"


def header(shard: str, worker: str = "gw0", run_id: str = "run-A", impl: str = IMPL) -> dict:
    return {
        "run_id": run_id,
        "shard": shard,
        "worker": worker,
        "started": "2025-01-01T10:00:00+00:00",
        "impl": impl,
        "oracles": ["keras3", "tf_keras"],
        "devices": ["cpu"],
        "dtypes": ["float32"],
        "profile": "ci",
        "versions": {"keras": "3.15.1", "torch": "2.13.0"},
        "command": "pytest conformance -p keraspec --shard 1/3",
    }


def case(layer: str, check: str, status: str, *, oracle: str = "keras3", family: str = "core",
         dtype: str = "float32", impl: str = IMPL, **kw) -> CaseRecord:
    return CaseRecord(
        layer=layer, family=family, check=check, oracle=oracle, impl=impl, device="cpu", dtype=dtype,
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


# -- two implementations: keraspec's own conforms, the peer (Keras 3 on torch) does not ---------------
PEER = "keraspec.conformance.adapters.keras_torch"
IMPL_LABEL = "keraspec.impl"
PEER_LABEL = "Keras 3 (torch backend)"
#: The harness's placeholder for "this check has no oracle / no dtype".
NO_VALUE = "-"
OURS_RATE = 6e-7
PEER_RATE = 1e-6
PEER_FAIL_MESSAGE = "forward mismatch: max abs err 0.5 > atol 1e-05"
PEER_FAIL_REPRO = "KERAS_BACKEND=torch pytest 'conformance/tests/test_layers.py::test_forward[Conv2D-keras3-float32]' --impl keraspec.conformance.adapters.keras_torch"


def ours_cases() -> list[CaseRecord]:
    conv = {"family": "convolutional"}
    return [
        case("Conv2D", "forward", "passed", max_abs_err=1e-7, atol=1e-5, rtol=1e-5, **conv),
        case("Conv2D", "forward", "passed", oracle="tf_keras", **conv),
        case("Conv2D", "forward", "passed", dtype="float64", **conv),
        case("Conv2D", "gradients", "passed", **conv),
        case("Conv2D", "errors", "passed", oracle=NO_VALUE, dtype=NO_VALUE, **conv),
        case("Dropout", "stochastic", "passed", family="regularization", extra={"false_alarm_rate": OURS_RATE}),
        case("Dense", "forward", "passed"),
    ]


def peer_cases() -> list[CaseRecord]:
    conv = {"family": "convolutional", "impl": PEER}
    return [
        case("Conv2D", "forward", "failed", message=PEER_FAIL_MESSAGE, max_abs_err=0.5, max_rel_err=0.25,
             atol=1e-5, rtol=1e-5, example={"config": {"filters": 2, "kernel_size": 3}, "marker": "PEER-EXAMPLE"},
             repro=PEER_FAIL_REPRO, **conv),
        case("Conv2D", "forward", "passed", oracle="tf_keras", **conv),
        case("Conv2D", "forward", "passed", dtype="float64", **conv),
        case("Conv2D", "gradients", "xfailed", message="torch computes the bias gradient in float16",
             xfail_entry="torch-conv-grad", **conv),
        case("Conv2D", "errors", "passed", oracle=NO_VALUE, dtype=NO_VALUE, **conv),
        case("Dropout", "stochastic", "failed", family="regularization", impl=PEER, message="rate 0.31 outside [0.28, 0.30]",
             extra={"false_alarm_rate": PEER_RATE}, repro="pytest -k stochastic"),
        case("Dense", "forward", "error", impl=PEER, message="RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ]


def previous_two_impl_cases() -> list[CaseRecord]:
    conv = {"family": "convolutional"}
    return [
        case("Conv2D", "forward", "failed", message="was broken", **conv),  # ours: fixed since
        case("Conv2D", "forward", "passed", impl=PEER, **conv),  # peer: a new failure since
        case("Dense", "forward", "error", impl=PEER),  # peer: still an error, not new
    ]


@dataclass
class TwoImpls:
    results_dir: Path
    previous: Path


def make_two_impl_results(tmp_path: Path) -> TwoImpls:
    results_dir = tmp_path / "two-impls"
    write(results_dir / "ours.jsonl", header("1/1", run_id="run-ours"), ours_cases())
    write(results_dir / "peer.jsonl", header("1/1", run_id="run-peer", impl=PEER), peer_cases())
    previous = write(tmp_path / "two-impls-old" / "prev.jsonl", header("1/1", run_id="run-old"), previous_two_impl_cases())
    return TwoImpls(results_dir, previous)


@pytest.fixture
def two_impls(tmp_path: Path) -> TwoImpls:
    return make_two_impl_results(tmp_path)


# -- a small HTML reader, so assertions are about rendered text rather than markup details ---------
class _Collector(HTMLParser):
    """Text of each element matching a predicate, plus the rows of tables."""

    VOID = {"br", "hr", "img", "input", "meta", "link", "col", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.open_texts: list[tuple[int, tuple[str, dict[str, str]], list[str]]] = []
        self.elements: list[tuple[str, dict[str, str], str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag in self.VOID:
            self.elements.append((tag, attributes, ""))
            return
        self.stack.append((tag, attributes))
        self.open_texts.append((len(self.stack), (tag, attributes), []))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        # Close up to the matching tag (tolerates the implicit closes HTML allows).
        while self.stack:
            top, attributes = self.stack.pop()
            depth, element, parts = self.open_texts.pop()
            # Words as a reader sees them: child elements do not put a space before punctuation.
            text = re.sub(r" ([,;.:)])", r"\1", " ".join("".join(parts).split()))
            self.elements.append((element[0], element[1], text))
            if self.open_texts:
                self.open_texts[-1][2].append(" " + "".join(parts) + " ")
            if top == tag:
                break

    def handle_data(self, text: str) -> None:
        if self.open_texts:
            self.open_texts[-1][2].append(text)


def elements(page: str) -> list[tuple[str, dict[str, str], str]]:
    parser = _Collector()
    parser.feed(page)
    parser.close()
    return parser.elements


def texts(page: str, tag: str, **attrs: str) -> list[str]:
    """Texts of the elements with that tag whose attributes contain the given values."""

    def ok(a: dict[str, str]) -> bool:
        for name, want in attrs.items():
            name = name.rstrip("_")
            have = a.get(name)
            if have is None:
                return False
            if name == "class":
                if want not in have.split():
                    return False
            elif have != want:
                return False
        return True

    return [text for t, a, text in elements(page) if t == tag and ok(a)]


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """Rows (cell texts) of the table with that id, header rows included."""
    start = page.index(f'id="{table_id}"')
    end = page.index("</table>", start)
    chunk = page[page.rindex("<table", 0, start) : end + len("</table>")]
    rows = []
    for row in re.findall(r"<tr\b.*?</tr>", chunk, flags=re.S):
        cells = [t for tag, _, t in elements(row) if tag in ("td", "th")]
        rows.append(cells)
    return rows


def row_for(rows: list[list[str]], first: str) -> list[str]:
    matches = [r for r in rows if r and r[0] == first]
    assert len(matches) == 1, (first, rows)
    return matches[0]
