"""The HTML report built from synthetic results files (see conftest.py for the data)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keraspec.conformance.results import CaseRecord
from keraspec.reports.build import NoResultsError, build_report, main


# -- helpers -------------------------------------------------------------------------------------------
def _conftest():
    # Under --import-mode=importlib the test folder is not a package; load conftest by path.
    import importlib.util

    spec = importlib.util.spec_from_file_location("_reports_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


C = _conftest()
elements, texts, table_rows, row_for = C.elements, C.texts, C.table_rows, C.row_for


@pytest.fixture
def built(results, tmp_path: Path) -> Path:
    return build_report([results.results_dir], tmp_path / "html", previous=results.previous)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# -- summary -----------------------------------------------------------------------------------------
def test_returns_index_and_writes_pages(built: Path) -> None:
    assert built.name == "index.html" and built.is_file()
    out = built.parent
    assert (out / "layers" / "Dense.html").is_file()
    assert (out / "layers" / "LayerNormalization.html").is_file()  # from the truncated shard
    assert (out / "filter-status-failed.html").is_file()


def test_summary_totals_and_conformance(built: Path) -> None:
    page = read(built)
    # Shard 1: 6 cases; shard 3: 5 written, the last cut in half by the truncation -> 4 readable.
    counts = texts(page, "p", id=f"impl-counts-{C.IMPL}")[0]
    assert counts.startswith("10 cases:")
    for status, n in {"error": 1, "failed": 2, "xpassed": 1, "xfailed": 1, "passed": 4, "skipped": 1}.items():
        assert f"{status} {n}" in counts
    # passed / (passed + failed + error) = 4 / 7
    assert texts(page, "strong", id=f"conformance-{C.IMPL}") == ["57.1%"]

    fam = table_rows(page, "summary-family")
    assert fam[0] == ["Family", C.IMPL_LABEL] and fam[1] == ["Conformance", "Cases"]
    assert row_for(fam, "core")[1] == "50.0%"  # Dense 2 passed + 2 failed; xpassed/skipped excluded
    assert row_for(fam, "activations")[1] == "100.0%"
    conv = row_for(fam, "convolutional")
    assert conv[1] == "100.0%"  # the xfailed case is counted separately
    assert "1 xfail" in conv[2] and "1 pass" in conv[2]
    assert row_for(fam, "normalization")[1] == "0.0%"

    oracle = table_rows(page, "summary-oracle")
    assert row_for(oracle, "tf_keras")[1] == "0.0%"
    assert row_for(oracle, "keras3")[1] == "66.6%"  # 4 passed, 1 failed, 1 error; rounded down
    assert row_for(table_rows(page, "summary-device"), "cpu")[1] == "57.1%"


def test_run_metadata(built: Path) -> None:
    page = read(built)
    assert "run-A" in page
    assert "pytest conformance -p keraspec --shard 1/3" in page
    assert "3.15.1" in page and "2.13.0" in page  # versions
    assert "2025-01-01T10:00:00+00:00" in page  # started
    assert "incomplete" in page  # finished: one shard never wrote its footer


def test_matrix_cells_aggregate_worst_status(built: Path) -> None:
    page = read(built)
    rows = table_rows(page, "matrix-table")
    header = rows[0]
    assert header[:2] == ["Layer", "all checks"]
    assert header[2:] == ["config", "shapes", "forward", "forward_training", "gradients"]  # check order
    dense = dict(zip(header, row_for(rows, "Dense")))
    # forward: keras3 passed + tf_keras failed -> failed wins, with counts and worst error
    assert dense["forward"].startswith("failed")
    assert "1 fail" in dense["forward"] and "1 pass" in dense["forward"]
    assert "abs 5.00e-1" in dense["forward"] and "rel 2.50e-1" in dense["forward"]
    assert dense["shapes"].startswith("passed")
    assert dense["config"] == "—"
    conv = dict(zip(header, row_for(rows, "Conv2D")))
    assert conv["all checks"].startswith("xfailed")  # xfailed outranks passed
    dropout = dict(zip(header, row_for(rows, "Dropout")))
    assert dropout["all checks"].startswith("xpassed")  # xpassed outranks skipped
    # Family group rows
    assert ["normalization"] in rows and ["convolutional"] in rows
    # One implementation: no column naming it, and its layer rows link to the layer pages' grids
    # where everything passed, to the failures where something did not.
    assert "Implementation" not in header
    assert f'href="layers/Dense.html#grid-{C.IMPL}--shapes"' in page
    assert 'href="layers/Dense.html#check-forward"' in page


def test_filters_are_marked_up_and_prerendered(built: Path) -> None:
    page = read(built)
    for dim in ("family", "status", "oracle", "impl", "device", "dtype"):
        assert f'<select id="filter-{dim}" name="{dim}">' in page
    assert 'id="quick-filter-status-failed" href="filter-status-failed.html"' in page
    failed = read(built.parent / "filter-status-failed.html")
    rows = table_rows(failed, "matrix-table")
    layers = [r[0] for r in rows[1:] if len(r) > 1]
    assert "Dense" in layers
    assert "ReLU" not in layers and "Conv2D" not in layers  # no failures there
    assert [r for r in table_rows(failed, "cases-table")[1:] if r[0] != "failed"] == []
    family = read(built.parent / "filter-family-convolutional.html")
    assert [r[0] for r in table_rows(family, "matrix-table")[1:] if len(r) > 1] == ["Conv2D"]


# -- layer pages -------------------------------------------------------------------------------------
def test_failing_case_details_on_layer_page(built: Path) -> None:
    page = read(built.parent / "layers" / "Dense.html")
    details = texts(page, "article", class_="case-detail")
    assert len(details) == 1  # the one Dense case that did not pass; the passing ones are in the grid
    assert details[0].startswith(f"failed {C.IMPL_LABEL} · oracle tf_keras · cpu · dtype float32")
    assert table_rows(page, "layer-impls")[1][:2] == [C.IMPL_LABEL, "66.6%"]  # 2 of 3 judged passed, rounded down
    assert C.FAIL_MESSAGE in texts(page, "pre", class_="message")
    example = json.loads(texts(page, "pre", class_="example")[0])
    assert example["config"] == {"units": 3, "use_bias": True}
    assert example["marker"] == "EXAMPLE-MARK"
    assert texts(page, "pre", class_="repro") == [C.FAIL_REPRO]
    assert texts(page, "code", class_="seed") == [C.FAIL_SEED]
    measured = texts(page, "table", class_="err-vs-tol")[0]
    assert "max abs err vs atol 5.00e-1 1e-05" in measured and "max rel err vs rtol 2.50e-1 1e-05" in measured


def test_xfailed_case_shows_reason_and_entry(built: Path) -> None:
    page = read(built.parent / "layers" / "Conv2D.html")
    assert texts(page, "code", class_="xfail-entry") == ["conv2d-bias-grad"]
    assert "TF computes the bias gradient in float16" in texts(page, "pre", class_="message")


def test_known_mismatches_section(built: Path) -> None:
    page = read(built)
    entries = table_rows(page, "known-entries")
    assert row_for(entries, "conv2d-bias-grad")[1:] == ["1", ""]
    assert row_for(entries, "dropout-rng")[1:] == ["", "1"]
    known = table_rows(page, "known-table")
    assert ["xfailed", "conv2d-bias-grad", "Conv2D", C.IMPL_LABEL, "gradients"] == known[1][:5]
    assert "TF computes the bias gradient in float16" in known[1][-1]


# -- problems banner ---------------------------------------------------------------------------------
def test_interrupted_file_and_missing_shard_are_flagged(built: Path, results) -> None:
    page = read(built)
    problems = texts(page, "li")
    banner = " | ".join(problems)
    assert any(str(results.shard3) in p and "no end record" in p for p in problems), banner
    assert any(str(results.shard3) in p and "not valid JSON" in p for p in problems), banner
    assert any("shard 2/3 is missing" in p for p in problems), banner
    assert not any("shard 1/3 is missing" in p or "shard 3/3 is missing" in p for p in problems)
    assert 'role="alert"' in page
    # the truncated shard's cases are still reported
    assert "LayerNormalization" in page


def test_expected_shards_flags_each_missing_number(results, tmp_path: Path) -> None:
    index = build_report([results.shard1, results.shard3], tmp_path / "h", expected_shards=5)
    problems = texts(read(index), "li")
    for i in (2, 4, 5):
        assert any(f"shard {i}/5 is missing" in p for p in problems), problems
    assert any("--expect-shards 5" in p and "n = 3" in p for p in problems)


def test_expected_shards_without_shard_labels(tmp_path: Path) -> None:
    hdr = C.header("")
    path = C.write(tmp_path / "only.jsonl", hdr, [C.case("Dense", "forward", "passed")])
    problems = texts(read(build_report([path], tmp_path / "h", expected_shards=3)), "li")
    assert any("expected 3 shard files, found 1" in p for p in problems), problems


def test_xdist_workers_of_complete_shards_raise_no_problem(tmp_path: Path) -> None:
    paths = [
        C.write(tmp_path / "a.jsonl", C.header("1/2", worker="gw0"), [C.case("Dense", "forward", "passed")]),
        C.write(tmp_path / "b.jsonl", C.header("1/2", worker="gw1"), [C.case("Dense", "shapes", "passed")]),
        C.write(tmp_path / "c.jsonl", C.header("2/2", worker="gw0"), [C.case("ReLU", "forward", "passed")]),
    ]
    page = read(build_report(paths, tmp_path / "h", expected_shards=2))
    assert 'role="alert"' not in page
    assert "No problems with the results files" in page


def test_shards_with_their_own_run_ids_are_matched_by_label(tmp_path: Path) -> None:
    # Separately started CI shard jobs get distinct run ids unless KERASPEC_RUN_ID is shared.
    paths = [
        C.write(tmp_path / "a.jsonl", C.header("1/2", run_id="r1"), [C.case("Dense", "forward", "passed")]),
        C.write(tmp_path / "b.jsonl", C.header("2/2", run_id="r2"), [C.case("ReLU", "forward", "passed")]),
    ]
    page = read(build_report(paths, tmp_path / "h"))
    assert 'role="alert"' not in page
    assert "2 different run ids were merged" in page


def test_rerun_shard_is_flagged(tmp_path: Path) -> None:
    paths = [
        C.write(tmp_path / "a.jsonl", C.header("1/1", run_id="r1"), [C.case("Dense", "forward", "failed")]),
        C.write(tmp_path / "b.jsonl", C.header("1/1", run_id="r2"), [C.case("Dense", "forward", "passed")]),
    ]
    page = read(build_report(paths, tmp_path / "h"))
    assert any("shard 1/1 of" in p and "comes from 2 runs" in p for p in texts(page, "li"))
    assert texts(page, "p", id=f"impl-counts-{C.IMPL}")[0].startswith("2 cases")  # both kept


def test_runs_of_different_implementations_are_not_a_rerun(tmp_path: Path) -> None:
    first, second = C.header("1/1", run_id="r1"), C.header("1/1", run_id="r2")
    second["impl"] = "another.impl"
    paths = [
        C.write(tmp_path / "a.jsonl", first, [C.case("Dense", "forward", "passed")]),
        C.write(tmp_path / "b.jsonl", second, [C.case("Dense", "forward", "passed")]),
    ]
    page = read(build_report(paths, tmp_path / "h"))
    assert not any("comes from 2 runs" in p for p in texts(page, "li"))


def test_runs_of_one_implementation_against_different_oracles_are_not_a_rerun(tmp_path: Path) -> None:
    # `make report` runs Keras 3 on torch live against tf_keras, then against the keras3 corpus.
    live, corpus = C.header("1/1", run_id="r1", impl=C.PEER), C.header("1/1", run_id="r2", impl=C.PEER)
    live["oracles"], corpus["oracles"] = ["tf_keras"], ["keras3"]
    paths = [
        C.write(tmp_path / "a.jsonl", live, [C.case("Dense", "forward", "passed", oracle="tf_keras", impl=C.PEER)]),
        C.write(tmp_path / "b.jsonl", corpus, [C.case("Dense", "forward", "passed", impl=C.PEER)]),
    ]
    page = read(build_report(paths, tmp_path / "h"))
    assert 'role="alert"' not in page
    again = C.write(tmp_path / "c.jsonl", dict(corpus, run_id="r3"), [C.case("Dense", "forward", "passed", impl=C.PEER)])
    problems = texts(read(build_report(paths + [again], tmp_path / "h")), "li")
    assert any(f"shard 1/1 of {C.PEER} (oracles keras3;" in p and "comes from 2 runs (r2, r3)" in p for p in problems), problems


def test_malformed_records_are_reported_not_dropped(tmp_path: Path) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1"), [
        C.case("Dense", "forward", "passed"),
        C.case("Dense", "shapes", "exploded"),  # a status nobody knows
    ])
    lines = path.read_text().splitlines()
    lines.insert(2, "{not json")
    lines.insert(3, "42")  # valid JSON, but not a record
    lines.insert(4, json.dumps({"kind": "mystery"}))
    path.write_text("\n".join(lines) + "\n")
    page = read(build_report([path], tmp_path / "h"))
    problems = " | ".join(texts(page, "li"))
    assert "line 3 is not valid JSON" in problems
    assert "line 4 is JSON but not a record" in problems
    assert "unknown kind 'mystery'" in problems
    assert "unknown status 'exploded'" in problems
    dense = dict(zip(table_rows(page, "matrix-table")[0], row_for(table_rows(page, "matrix-table"), "Dense")))
    assert dense["all checks"].startswith("exploded")  # unknown ranks worst, never hidden


# -- diff ----------------------------------------------------------------------------------------------
def test_diff_against_previous(built: Path) -> None:
    page = read(built)
    new = table_rows(page, "diff-table-new-failures")
    assert len(new) == 2
    assert new[1][:6] == ["Dense", C.IMPL_LABEL, "forward", "tf_keras", "cpu", "float32"]
    assert new[1][6].startswith("passed") and new[1][7].startswith("failed")
    assert texts(page, "p", id="changes-counts")[0].startswith("1 new failure, 1 fixed,")
    fixed = table_rows(page, "diff-table-fixed")
    assert [r[0] for r in fixed[1:]] == ["ReLU"]
    assert fixed[1][6].startswith("failed") and fixed[1][7].startswith("passed")
    appeared = [r[0] for r in table_rows(page, "diff-table-appeared")[1:]]
    assert "LayerNormalization" in appeared and "Dropout" in appeared
    assert [r[0] for r in table_rows(page, "diff-table-disappeared")[1:]] == ["OldLayer"]


def test_previous_may_be_a_directory(results, tmp_path: Path) -> None:
    index = build_report([results.shard1], tmp_path / "h", previous=results.previous.parent)
    assert [r[0] for r in table_rows(read(index), "diff-table-new-failures")[1:]] == ["Dense"]


def test_no_diff_without_previous(results, tmp_path: Path) -> None:
    page = read(build_report([results.shard1], tmp_path / "h"))
    assert texts(page, "p", id="no-previous")[0].startswith("No previous run to compare with")
    assert 'id="changes-counts"' not in page and 'class="diff"' not in page


# -- escaping and self-containment -------------------------------------------------------------------------
def test_results_text_is_escaped_everywhere(built: Path) -> None:
    out = built.parent
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        text = read(path)
        assert "<script>alert(1)" not in text, path
        assert "alert(1)</script>" not in text, path
    page = read(built)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;" in page  # the layer name, escaped
    # the inline data keeps it as JSON with <, >, & and ' escaped
    assert "\\u003cscript\\u003ealert(1)" in page
    evil_pages = [p for p in (out / "layers").iterdir() if "alert" in p.name]
    assert len(evil_pages) == 1
    evil = read(evil_pages[0])
    assert texts(evil, "h1") == [C.EVIL]
    assert "bad " + C.EVIL in texts(evil, "pre", class_="message")
    assert texts(evil, "pre", class_="repro") == ["pytest -k " + C.EVIL]


def test_layer_file_names_are_sanitised(built: Path) -> None:
    names = [p.name for p in (built.parent / "layers").iterdir()]
    assert names and all(re.fullmatch(r"[A-Za-z0-9_.-]+\.html", n) for n in names), names
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", p.name) for p in built.parent.iterdir()), list(built.parent.iterdir())


def test_similar_layer_names_get_distinct_pages(tmp_path: Path) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1"), [
        C.case("a/b", "forward", "passed"),
        C.case("a_b", "forward", "failed"),
        C.case("A_b", "forward", "passed"),
        C.case("../x", "forward", "passed"),
    ])
    out = build_report([path], tmp_path / "h").parent
    pages = sorted(p.name for p in (out / "layers").iterdir())
    assert len(pages) == 4 and len({p.lower() for p in pages}) == 4, pages
    assert not (tmp_path / "x.html").exists()


def test_self_contained(built: Path) -> None:
    for path in built.parent.rglob("*.html"):
        text = read(path)
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
        assert "<link" not in text and " src=" not in text and "@import" not in text, path
        assert "<style>" in text
        assert "Content-Security-Policy" in text


def test_rebuild_removes_stale_pages(results, tmp_path: Path) -> None:
    out = tmp_path / "h"
    build_report([results.results_dir], out)
    assert (out / "layers" / "LayerNormalization.html").exists()
    keep = out / "notes.txt"
    keep.write_text("mine")
    build_report([results.shard1], out)
    assert not (out / "layers" / "LayerNormalization.html").exists()
    assert keep.read_text() == "mine"


def test_non_finite_errors(tmp_path: Path) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1"), [
        C.case("Dense", "forward", "failed", max_abs_err=float("nan"), max_rel_err=float("inf")),
        C.case("Dense", "forward", "passed", oracle="tf_keras", max_abs_err=1e-3, max_rel_err=1e-3),
    ])
    page = read(build_report([path], tmp_path / "h"))
    dense = dict(zip(table_rows(page, "matrix-table")[0], row_for(table_rows(page, "matrix-table"), "Dense")))
    assert "abs NaN" in dense["forward"] and "rel Infinity" in dense["forward"]
    raw = page[page.index('id="report-data"'):]
    json.loads(raw[raw.index(">") + 1 : raw.index("</script>")])  # strict JSON: no bare NaN


# -- CLI ---------------------------------------------------------------------------------------------------
def test_main_prints_index_and_exits_zero_with_failures(results, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    code = main([str(results.shard1), str(results.shard3), "--out", str(out),
                 "--previous", str(results.previous), "--expect-shards", "3"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")


@pytest.mark.parametrize("argv", [
    [],
    ["--expect-shards", "x", "r.jsonl"],
    ["missing.jsonl"],
    ["EMPTYDIR"],
    ["GOOD", "--previous", "missing-previous"],
    ["GOOD", "--expect-shards", "0"],
])
def test_main_bad_arguments_exit_2(argv: list[str], results, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [str(empty) if a == "EMPTYDIR" else str(results.shard1) if a == "GOOD" else a for a in argv]
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o" / "index.html").exists()


def test_empty_file_is_not_a_report(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("")
    with pytest.raises(NoResultsError):
        build_report([tmp_path / "e.jsonl"], tmp_path / "h")


def test_python_dash_m(results, tmp_path: Path) -> None:
    out = tmp_path / "m"
    proc = subprocess.run(
        [sys.executable, "-m", "keraspec.reports", str(results.results_dir), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / "index.html")
    assert (out / "index.html").is_file()


def test_case_record_fields_all_rendered(tmp_path: Path) -> None:
    # Guard against CaseRecord growing a field the layer page silently ignores.
    shown = {"layer", "family", "check", "oracle", "impl", "device", "dtype", "status", "test_id", "message",
             "max_abs_err", "max_rel_err", "atol", "rtol", "example", "seed", "repro", "duration_s",
             "xfail_entry", "extra"}
    assert set(CaseRecord.__dataclass_fields__) == shown


def test_quality_notes_are_listed_on_the_layer_page_escaped(tmp_path: Path) -> None:
    from keraspec.conformance.results import ResultsWriter

    note = "rank 4: the error does not name the layer and the received shape " + C.EVIL
    writer = ResultsWriter(tmp_path / "results" / "a.jsonl", C.header("1/1"))
    writer.add(C.case("Dense", "input_errors", "passed", extra={"notes": [note]}))
    writer.add(C.case("Dense", "forward", "passed"))
    writer.close("2025-01-01T10:05:00+00:00")
    index = build_report([tmp_path / "results"], tmp_path / "html")
    page = read(next((index.parent / "layers").glob("Dense*.html")))
    assert texts(page, "h2", id="quality-notes-h") == ["Quality notes"]
    items = texts(page, "li")
    assert any(note in item and item.startswith("input_errors") for item in items), items
    assert "<script>alert(1)" not in page


def test_ops_section_counts_the_spec_of_functions_and_their_problems(tmp_path: Path) -> None:
    from keraspec.conformance.results import ResultsWriter
    from keraspec.spec import ops as ops_spec

    writer = ResultsWriter(tmp_path / "results" / "a.jsonl", C.header("1/1"))
    writer.add(C.case("batch_dot", "op_forward", "failed", family="ops/linalg", oracle="tf_keras"))
    writer.add(C.case("dot", "op_forward", "passed", family="ops/linalg", oracle="tf_keras"))
    writer.add(C.case("Dense", "forward", "passed"))
    writer.close("2025-01-01T10:05:00+00:00")
    index = build_report([tmp_path / "results"], tmp_path / "html")
    rows = {r[0]: r for r in table_rows(read(index), "ops-table") if r and r[0] in ops_spec.groups()}
    linalg = rows["linalg"]
    assert linalg[1] == str(len(ops_spec.functions(group="linalg")))
    assert linalg[3] == "2" and linalg[4] == "batch_dot"  # two with results, one of them failing
    assert rows["ctc"][3] == "0" and "planned" in rows["ctc"][2]  # ctc_decode is not implemented yet
