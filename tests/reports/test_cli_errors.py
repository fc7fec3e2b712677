"""Bad input for ``keraspec report``: one line on stderr naming what was wrong, exit status 2, no traceback.

Each case calls the entry point in-process (``keraspec.reports.build.main``, which ``python -m
keraspec.reports`` and the ``keraspec report`` subcommand both run).  A results file damaged inside
(a truncated line, a hand-edited record) is the exception: the run is still reported, with a banner.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keraspec.reports.build import main

# The first bytes of a PNG image: not text at all.
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def _conftest() -> Any:
    spec = importlib.util.spec_from_file_location("_reports_conftest_cli", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


C = _conftest()


def good_results(tmp_path: Path) -> Path:
    return C.write(tmp_path / "good" / "r.jsonl", C.header("1/1"), [C.case("Dense", "forward", "passed")])


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(argv: list[str], capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    """Exit status 2, nothing on stdout, exactly one line on stderr holding each expected text."""
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("keraspec report: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def make_unreadable(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Take read permission away; as root (which reads anyway), make opening it fail as it would."""
    path.chmod(0)
    if os.access(path, os.R_OK):
        real_open = builtins.open
        target = path.resolve()

        def open_refusing_target(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, (str, os.PathLike)) and Path(file).resolve() == target:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", open_refusing_target)


# -- results paths ---------------------------------------------------------------------------------------
def test_missing_results_path(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere.jsonl"
    assert_refused([str(missing), "--out", str(tmp_path / "o")], capsys, str(missing), "no such file or directory")
    assert not (tmp_path / "o").exists()


def test_missing_path_next_to_a_good_one(tmp_path: Path, capsys) -> None:
    # A typo in one of several paths must not quietly give a report of the others.
    missing = tmp_path / "typo"
    assert_refused([str(good_results(tmp_path)), str(missing), "--out", str(tmp_path / "o")], capsys,
                   str(missing), "no such file or directory")


def test_empty_directory(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused([str(empty), "--out", str(tmp_path / "o")], capsys, str(empty), "holds no results files (*.jsonl)",
                   "it is empty")


def test_directory_with_other_files_only(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "a.png").write_bytes(PNG_BYTES)
    (folder / "notes.txt").write_text("hello")
    assert_refused([str(folder), "--out", str(tmp_path / "o")], capsys, str(folder), "holds no results files",
                   "2 other entries")


def test_unreadable_file(tmp_path: Path, capsys, monkeypatch) -> None:
    path = good_results(tmp_path)
    make_unreadable(path, monkeypatch)
    assert_refused([str(path), "--out", str(tmp_path / "o")], capsys, str(path), "cannot be read", "Permission denied")


def test_unreadable_file_in_a_directory(tmp_path: Path, capsys, monkeypatch) -> None:
    path = good_results(tmp_path)
    C.write(path.parent / "other.jsonl", C.header("1/1"), [C.case("ReLU", "forward", "passed")])
    make_unreadable(path, monkeypatch)
    assert_refused([str(path.parent), "--out", str(tmp_path / "o")], capsys, str(path), "Permission denied")


def test_png_is_not_a_results_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "plot.jsonl"  # the name does not make it one
    path.write_bytes(PNG_BYTES)
    assert_refused([str(path), "--out", str(tmp_path / "o")], capsys, str(path), "not a results file", "binary")


def test_random_text_is_not_a_results_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "README.md"
    path.write_text("# keraspec\n\nA conformance suite.\n" * 50)
    line = assert_refused([str(path), "--out", str(tmp_path / "o")], capsys, str(path), "not a results file",
                          "line 1 is not a JSON record", "'# keraspec'")
    assert len(line) < 300  # names the problem, does not dump the file


def test_other_json_lines_are_not_a_results_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.4}\n')
    assert_refused([str(path), "--out", str(tmp_path / "o")], capsys, str(path), "not a results file",
                   "not a keraspec run, case or end record")


def test_stray_file_in_a_results_directory(tmp_path: Path, capsys) -> None:
    good = good_results(tmp_path)
    stray = good.parent / "zz-notes.jsonl"
    stray.write_text("not json at all\n")
    assert_refused([str(good.parent), "--out", str(tmp_path / "o")], capsys, str(stray), "not a results file")


def test_empty_results_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert_refused([str(path), "--out", str(tmp_path / "o")], capsys, "no readable results records", str(path),
                   "no run header")


def test_file_cut_inside_its_first_line(tmp_path: Path, capsys) -> None:
    # A writer killed while writing its header: a results file, but with nothing readable in it.
    path = tmp_path / "killed.jsonl"
    path.write_text('{"kind": "run", "run_id": "r1", "sha')
    assert_refused([str(path), "--out", str(tmp_path / "o")], capsys, "no readable results records",
                   "line 1 is not valid JSON", "more problem")


# -- damage inside a results file: still reported, with the banner ----------------------------------------
def test_truncated_and_hand_edited_files_are_reported_with_a_banner(tmp_path: Path, capsys) -> None:
    path = C.write(tmp_path / "r" / "a.jsonl", C.header("1/1"), [
        C.case("Dense", "forward", "passed"),
        C.case("Dense", "shapes", "failed", max_abs_err=0.5),
        C.case("ReLU", "forward", "passed", family="activations"),
    ])
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"max_abs_err": null', '"max_abs_err": "tiny"').replace('"extra": {}', '"extra": [1, 2]')
    lines[2] = lines[2].replace('"layer": "Dense"', '"layer": ["De", "nse"]').replace('"example": null', '"example": {"a": NaN}')
    lines.insert(2, '{"kind": "case", "layer": ')  # edited into invalid JSON
    path.write_text("\n".join(lines)[:-10])  # and cut mid-line at the end
    code, out, err = run_cli([str(path.parent), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert out.strip() == str(tmp_path / "o" / "index.html")
    assert len(err.splitlines()) == 1 and "problem(s) with the results files" in err, err
    page = (tmp_path / "o" / "index.html").read_text(encoding="utf-8")
    problems = " | ".join(C.texts(page, "li"))
    assert "max_abs_err is not a number ('tiny')" in problems
    assert "line 3 is not valid JSON" in problems and "no end record" in problems


def test_wrong_types_in_extra_do_not_stop_the_report(tmp_path: Path, capsys) -> None:
    path = C.write(tmp_path / "r.jsonl", C.header("1/1"), [
        C.case("Dense", "forward", "passed", extra={"coverage": {"units": {"covered": 3, "why_missing": []}},
                                                     "notes": "one string, not a list"}),
        C.case("Dense", "shapes", "passed", extra={"coverage": ["not", "a", "dict"], "false_alarm_rate": None}),
    ])
    code, _, err = run_cli([str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    assert (tmp_path / "o" / "layers" / "Dense.html").is_file()


# -- --out ------------------------------------------------------------------------------------------------
def test_out_is_an_existing_file(tmp_path: Path, capsys) -> None:
    target = tmp_path / "report.html"
    target.write_text("keep me")
    assert_refused([str(good_results(tmp_path)), "--out", str(target)], capsys,
                   f"--out {target}", "an existing file, not a directory")
    assert target.read_text() == "keep me"


def test_out_below_a_file(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_refused([str(good_results(tmp_path)), "--out", str(blocker / "html")], capsys,
                   f"--out {blocker / 'html'}", "cannot write")


# -- --previous ---------------------------------------------------------------------------------------------
def test_previous_missing(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "old"
    assert_refused([str(good_results(tmp_path)), "--previous", str(missing), "--out", str(tmp_path / "o")], capsys,
                   "--previous", str(missing), "no such file or directory")
    assert not (tmp_path / "o").exists()


def test_previous_not_a_results_file(tmp_path: Path, capsys) -> None:
    old = tmp_path / "old.jsonl"
    old.write_bytes(PNG_BYTES)
    assert_refused([str(good_results(tmp_path)), "--previous", str(old), "--out", str(tmp_path / "o")], capsys,
                   f"--previous {old}", "not a results file")


def test_previous_empty_directory(tmp_path: Path, capsys) -> None:
    old = tmp_path / "old"
    old.mkdir()
    assert_refused([str(good_results(tmp_path)), "--previous", str(old), "--out", str(tmp_path / "o")], capsys,
                   f"--previous {old}", "holds no results files")


def test_previous_with_nothing_readable(tmp_path: Path, capsys) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text("\n\n")
    assert_refused([str(good_results(tmp_path)), "--previous", str(old), "--out", str(tmp_path / "o")], capsys,
                   f"--previous {old}", "no readable results records")


# -- arguments ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["--expect-shards", "0"], "--expect-shards must be >= 1, got 0"),
    (["--expect-shards", "x"], "invalid int value: 'x'"),
])
def test_bad_arguments(argv: list[str], expected: str, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli([str(good_results(tmp_path))] + argv + ["--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert expected in err and "Traceback" not in err


def test_no_arguments(capsys) -> None:
    code, _, err = run_cli([], capsys)
    assert code == 2 and "the following arguments are required: RESULTS" in err


# -- the other entry points ------------------------------------------------------------------------------
def test_python_dash_m_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "keraspec.reports", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"keraspec report: {tmp_path / 'missing'}: no such file or directory"]


def test_keraspec_report_subcommand_bad_input(tmp_path: Path, capsys) -> None:
    from keraspec.spec.cli import main as keraspec_main

    png = tmp_path / "x.jsonl"
    png.write_bytes(PNG_BYTES)
    code = keraspec_main(["report", str(png), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [f"keraspec report: {png}: not a results file (binary data, not JSON-lines text)"]
