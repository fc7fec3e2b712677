"""The report a user reads at a glance: implementations side by side, layer pages that lead with their
failures, readable names for placeholder values, changes since the previous run, false-alarm rates.

The data (conftest.py): keraspec.impl passes everything; the peer, Keras 3 on torch, fails Conv2D
forward against keras3, fails Dropout's statistical check, errors on Dense and has a known mismatch.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from keraspec.reports import model
from keraspec.reports.build import build_report


def _conftest() -> Any:
    spec = importlib.util.spec_from_file_location("_reports_conftest_glance", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


C = _conftest()
texts, table_rows, row_for = C.texts, C.table_rows, C.row_for


@pytest.fixture
def site(two_impls, tmp_path: Path) -> Path:
    """The report with a previous run to compare with; returns index.html."""
    return build_report([two_impls.results_dir], tmp_path / "html", previous=two_impls.previous)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(page: str, section_id: str) -> str:
    """The markup of one top-level section of a page."""
    start = page.index(f'<section id="{section_id}"')
    return page[start : page.index("</section>", start)]


# -- 1. implementation is the first axis ------------------------------------------------------------------
def test_headline_per_implementation_side_by_side(site: Path) -> None:
    page = read(site)
    # Each implementation has its own headline, never a merged one.
    assert texts(page, "h3", id=f"impl-card-{C.IMPL}-h") == [C.IMPL_LABEL]
    assert texts(page, "h3", id=f"impl-card-{C.PEER}-h") == [C.PEER_LABEL]
    assert texts(page, "strong", id=f"conformance-{C.IMPL}") == ["100.0%"]
    # Peer: 3 passed of 6 judged (failed forward, failed stochastic, error on Dense); the xfail aside.
    assert texts(page, "strong", id=f"conformance-{C.PEER}") == ["50.0%"]
    peer_counts = texts(page, "p", id=f"impl-counts-{C.PEER}")[0]
    assert peer_counts.startswith("7 cases:")
    for status, n in {"error": 1, "failed": 2, "xfailed": 1, "passed": 3}.items():
        assert f"{status} {n}" in peer_counts
    assert texts(page, "p", id=f"impl-counts-{C.IMPL}")[0] == "7 cases: passed 7"
    # The full module names stay visible next to the short ones.
    cards = texts(page, "article", class_="impl-card")
    assert C.IMPL in cards[0] and C.PEER in cards[1]
    assert f'title="{C.PEER}"' in page
    assert 'id="conformance-overall"' not in page
    # The headline comes first: before the changes, the summary tables and the matrix.
    order = [page.index(f'<section id="{s}"') for s in ("implementations", "changes", "summary", "matrix")]
    assert order == sorted(order)


def test_summary_tables_compare_implementations(site: Path) -> None:
    page = read(site)
    family = table_rows(page, "summary-family")
    assert family[0] == ["Family", C.IMPL_LABEL, C.PEER_LABEL]
    assert family[1] == ["Conformance", "Cases", "Conformance", "Cases"]
    conv = row_for(family, "convolutional")
    # keraspec.impl conforms on convolutions; only the peer fails there (3 of 4 judged passed).
    assert conv[1] == "100.0%" and conv[3] == "75.0%"
    assert "1 fail" in conv[4] and "1 fail" not in conv[2]
    oracle = table_rows(page, "summary-oracle")
    assert row_for(oracle, "tf_keras")[1::2] == ["100.0%", "100.0%"]


def test_matrix_has_a_row_per_implementation_of_each_layer(site: Path) -> None:
    page = read(site)
    rows = table_rows(page, "matrix-table")
    header = rows[0]
    assert header[:3] == ["Layer", "Implementation", "all checks"]
    conv = [dict(zip(header, r)) for r in rows if r[0] == "Conv2D"]
    assert [r["Implementation"] for r in conv] == [C.IMPL_LABEL, C.PEER_LABEL]  # ours first, adjacent
    assert conv[0]["forward"].startswith("passed") and conv[0]["all checks"].startswith("passed")
    assert conv[1]["forward"].startswith("failed") and conv[1]["gradients"].startswith("xfailed")
    # Row ids name the layer and the implementation, so each row can be linked to and filtered.
    assert f'id="row-Conv2D--{C.PEER}"' in page and f'id="row-Conv2D--{C.IMPL}"' in page


def test_implementation_switch_links_to_each_implementation(site: Path) -> None:
    page = read(site)
    switch = section(page, "implementations")
    assert 'id="impl-switch-all"' in switch and 'aria-current="true"' in switch
    peer_page = f"filter-impl-{C.PEER}.html"
    assert f'id="impl-switch-{C.PEER}" data-impl="{C.PEER}" href="{peer_page}"' in switch
    # Without JavaScript the switch is a set of links to pre-rendered pages, which mark their choice.
    peer = read(site.parent / peer_page)
    assert f'id="impl-switch-{C.PEER}" data-impl="{C.PEER}" href="{peer_page}" title="{C.PEER}" aria-current="true"' in peer
    layers = [r[0] for r in table_rows(peer, "matrix-table")[1:] if len(r) > 1]
    impls = {r[1] for r in table_rows(peer, "matrix-table")[1:] if len(r) > 1}
    assert sorted(layers) == ["Conv2D", "Dense", "Dropout"] and impls == {C.PEER_LABEL}


def test_client_data_carries_raw_values_and_labels(site: Path) -> None:
    page = read(site)
    raw = page[page.index('id="report-data"'):]
    data = json.loads(raw[raw.index(">") + 1 : raw.index("</script>")])
    assert data["dims"]["impl"] == [C.IMPL, C.PEER]
    assert data["labels"]["impl"] == [C.IMPL_LABEL, C.PEER_LABEL]
    oracle = data["dims"]["oracle"]
    assert data["labels"]["oracle"][oracle.index(C.NO_VALUE)] == "none (spec-only check)"


def test_labels_of_implementations() -> None:
    labels = model.Labels([C.IMPL, C.PEER, "vendor.torch_layers", "a.layers", "b.layers"])
    assert labels("impl", C.IMPL) == C.IMPL_LABEL and labels("impl", C.PEER) == C.PEER_LABEL
    assert labels("impl", "vendor.torch_layers") == "torch_layers"  # the last module path component
    # Two implementations must never share a name: ambiguous ones keep their full module path.
    assert labels("impl", "a.layers") == "a.layers" and labels("impl", "b.layers") == "b.layers"
    assert labels.title("impl", C.PEER) == C.PEER and labels.title("impl", "a.layers") == ""
    assert model.impl_order(["zzz.impl", C.PEER, C.IMPL]) == [C.IMPL, C.PEER, "zzz.impl"]


# -- 2. layer pages lead with failures ---------------------------------------------------------------------
def test_layer_page_leads_with_failures_grouped_by_check(site: Path) -> None:
    page = read(site.parent / "layers" / "Conv2D.html")
    attention = page.index('id="attention"')
    assert attention < page.index('id="grid"')
    groups = texts(page, "section", class_="check-group")
    # forward (a failure) before gradients (a known mismatch): the worst group first.
    assert [g.split()[0] for g in groups] == ["forward", "gradients"]
    details = texts(page, "article", class_="case-detail")
    assert len(details) == 2  # the passing cases are not listed one by one
    failed = details[0]
    assert failed.startswith(f"failed {C.PEER_LABEL} · oracle keras3 · cpu · dtype float32")
    assert "max abs err vs atol 5.00e-1 1e-05" in failed and "max rel err vs rtol 2.50e-1 1e-05" in failed
    assert C.PEER_FAIL_MESSAGE in texts(page, "pre", class_="message")
    assert json.loads(texts(page, "pre", class_="example")[0])["marker"] == "PEER-EXAMPLE"
    assert C.PEER_FAIL_REPRO in texts(page, "pre", class_="repro")
    assert details[1].startswith(f"xfailed {C.PEER_LABEL}") and "torch-conv-grad" in details[1]
    # The one-line summary of each implementation on this layer.
    impls = table_rows(page, "layer-impls")
    assert row_for(impls, C.IMPL_LABEL)[1] == "100.0%" and row_for(impls, C.PEER_LABEL)[1] == "75.0%"


def test_passing_cases_fold_into_a_grid_per_implementation(site: Path) -> None:
    page = read(site.parent / "layers" / "Conv2D.html")
    ours = table_rows(page, f"grid-{C.IMPL}")
    assert ours[0] == ["Check", "oracle keras3", "oracle tf_keras", "oracle none (spec-only check)"]
    assert ours[1] == ["float32", "float64", "float32", "any (dtype-independent)"]
    assert row_for(ours, "forward") == ["forward", "pass", "pass", "pass", "·"]
    assert row_for(ours, "errors") == ["errors", "·", "·", "·", "pass"]
    peer = table_rows(page, f"grid-{C.PEER}")
    assert row_for(peer, "forward")[1:4] == ["fail", "pass", "pass"]
    assert row_for(peer, "gradients")[1] == "xfail"
    # A cell that did not pass links to its details; a passing one is the place a link to it leads.
    failed_idx = page[page.index('class="case-detail st-failed" id="case-'):].split('"')[3]
    assert f'<a href="#{failed_idx}">fail</a>' in page
    assert f'id="grid-{C.IMPL}--forward--keras3--float32"' in page


def test_matrix_cells_link_to_failures_or_to_the_grid(site: Path) -> None:
    page = read(site)
    assert 'href="layers/Conv2D.html#check-forward"' in page  # the peer's failing forward cell
    assert f'href="layers/Conv2D.html#grid-{C.IMPL}--forward"' in page  # ours: all passed


# -- 3. placeholder values get names ------------------------------------------------------------------------
def test_placeholder_values_are_named_everywhere(site: Path) -> None:
    page = read(site)
    oracle = table_rows(page, "summary-oracle")
    assert row_for(oracle, "none (spec-only check)")[1] == "100.0%"
    dtype = table_rows(page, "summary-dtype")
    assert row_for(dtype, "any (dtype-independent)")[1] == "100.0%"
    assert [r[0] for r in dtype[2:]][-1] == "any (dtype-independent)"  # the placeholder sorts last
    # Filters keep the raw value (it is what the data and the URL hold) and show the name.
    assert '<option value="-">none (spec-only check) (2)</option>' in page
    assert '<option value="-">any (dtype-independent) (2)</option>' in page
    static = texts(page, "details", id="static-filters")[0]
    assert "none (spec-only check) (2)" in static and "any (dtype-independent) (2)" in static
    filter_page = read(site.parent / "filter-oracle--.html")
    assert texts(filter_page, "h1") == ["Oracle = none (spec-only check)"]
    assert "<th scope=\"row\"><a" in page and ">-</a>" not in page  # no bare "-" label anywhere


# -- 4. changes since the previous run ---------------------------------------------------------------------
def test_changes_come_first_with_counts_and_links(site: Path) -> None:
    page = read(site)
    changes = section(page, "changes")
    assert texts(changes, "p", id="changes-counts")[0].startswith("1 new failure, 1 fixed,")
    new = table_rows(page, "diff-table-new-failures")
    assert new[1][:6] == ["Conv2D", C.PEER_LABEL, "forward", "keras3", "cpu", "float32"]
    fixed = table_rows(page, "diff-table-fixed")
    assert fixed[1][:3] == ["Conv2D", C.IMPL_LABEL, "forward"]
    # New failures link to their details, fixes to their (passing) cell of the layer's grid.
    assert '<a href="layers/Conv2D.html#case-' in changes
    assert f'<a href="layers/Conv2D.html#grid-{C.IMPL}--forward--keras3--float32">' in changes
    # Each implementation's headline counts its own changes.
    assert "1 new failure, 0 fixed" in texts(page, "article", id=f"impl-card-{C.PEER}")[0]
    assert "0 new failures, 1 fixed" in texts(page, "article", id=f"impl-card-{C.IMPL}")[0]


def test_no_previous_run_is_one_line(two_impls, tmp_path: Path) -> None:
    page = read(build_report([two_impls.results_dir], tmp_path / "html"))
    changes = section(page, "changes")
    assert texts(changes, "p") == [texts(changes, "p", id="no-previous")[0]]
    assert "Since the previous run" not in page


def test_implementation_absent_from_previous_run_is_not_compared(two_impls, tmp_path: Path) -> None:
    previous = C.write(tmp_path / "old-ours.jsonl", C.header("1/1", run_id="old"), C.ours_cases())
    page = read(build_report([two_impls.results_dir], tmp_path / "html", previous=previous))
    assert "Not in the previous run" in texts(page, "article", id=f"impl-card-{C.PEER}")[0]
    assert "0 new failures, 0 fixed" in texts(page, "article", id=f"impl-card-{C.IMPL}")[0]


# -- 5. false-alarm rates of statistical checks -------------------------------------------------------------
def test_false_alarm_rate_on_index_and_layer_page(site: Path) -> None:
    page = read(site)
    line = texts(page, "p", id="false-alarms")[0]
    assert line.startswith("Statistical checks (stochastic): false-alarm rate per case ≤ 1e-6;")
    # Expected false alarms: the sum of the recorded rates, 6e-7 + 1e-6.
    assert "2 cases × ≤ 1e-6, in sum 1.6e-6" in line
    assert "1 of these cases failed" in line
    dropout = read(site.parent / "layers" / "Dropout.html")
    assert "≤ 1e-6 (its false-alarm rate)" in texts(dropout, "p", class_="false-alarm")[0]
    assert texts(dropout, "dd", class_="false-alarm-rate")[0].startswith("1e-6 ")
    ours = table_rows(dropout, f"grid-{C.IMPL}")
    assert row_for(ours, "stochastic false alarm ≤ 6e-7")[1] == "pass"


def test_no_false_alarm_rate_recorded_says_nothing(tmp_path: Path) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1"), [
        C.case("Dropout", "stochastic", "passed"),
        C.case("Dropout", "initial_weights", "failed"),
    ])
    index = build_report([path], tmp_path / "html")
    for page in (index, index.parent / "layers" / "Dropout.html"):
        shown = texts(read(page), "main")[0]
        assert "false alarm" not in shown and "false-alarm" not in shown, page


def test_invalid_false_alarm_rate_is_a_problem_not_a_number(tmp_path: Path) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1"), [
        C.case("Dropout", "stochastic", "passed", extra={"false_alarm_rate": "small"}),
        C.case("Dropout", "stochastic", "passed", oracle="tf_keras", extra={"false_alarm_rate": 1.5}),
    ])
    page = read(build_report([path], tmp_path / "html"))
    problems = texts(page, "li")
    assert any("false_alarm_rate is not a probability ('small')" in p for p in problems), problems
    assert any("false_alarm_rate is not a probability (1.5)" in p for p in problems), problems
    assert 'id="false-alarms"' not in page


# -- numbers and escaping -------------------------------------------------------------------------------------
def test_one_failure_in_many_never_reads_100_percent(tmp_path: Path) -> None:
    cases = [C.case("Dense", "forward", "passed") for _ in range(2000)] + [C.case("Dense", "forward", "failed")]
    page = read(build_report([C.write(tmp_path / "r.jsonl", C.header("1/1"), cases)], tmp_path / "html"))
    assert texts(page, "strong", id=f"conformance-{C.IMPL}") == ["99.9%"]


def test_implementation_name_is_escaped(tmp_path: Path) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1", impl=C.EVIL), [
        C.case("Dense", "forward", "failed", impl=C.EVIL, oracle=C.EVIL, dtype=C.EVIL),
        C.case("Dense", "forward", "passed"),
    ])
    out = build_report([path], tmp_path / "html").parent
    for page in out.rglob("*.html"):
        text = read(page)
        assert "<script>alert(1)" not in text and "alert(1)</script>" not in text, page
    index = read(out / "index.html")
    rows = table_rows(index, "matrix-table")
    assert [r[1] for r in rows if r[0] == "Dense"] == [C.IMPL_LABEL, C.EVIL]


def test_examples_are_compact_json() -> None:
    example = {"config": {"pool_size": [2, 2, 2]}, "input_shapes": [[1, 2, 2, 2, 1]], "seed": 0,
               "note": "x" * 100, "weights": [[0.5] * 40]}
    text = model.pretty_json(example)
    assert json.loads(text) == example
    lines = text.splitlines()
    assert '  "input_shapes": [[1, 2, 2, 2, 1]],' in lines  # a shape stays on one line
    assert '  "config": {"pool_size": [2, 2, 2]},' in lines
    # One line per member, not one per number; a matrix too wide for a line gets a line per row.
    assert lines[-4:] == ['  "weights": [', "    [" + ", ".join(["0.5"] * 40) + "]", "  ]", "}"]
    assert len(lines) == 9
    assert model.pretty_json({"units": 3}) == '{"units": 3}'
