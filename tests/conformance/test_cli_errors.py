"""`keraspec record` and `keraspec replay` refuse bad input before anything runs -- no recording, no
pytest -- with one line naming the option, value or file, and exit status 2; so does the pytest
plugin itself (a usage error) for a corpus or option value it cannot use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keraspec.conformance.corpus import DEFAULT_CORPUS, FORMAT_VERSION, Corpus, CorpusError
from keraspec.conformance.results import folder_problem
from keraspec.spec import cli

REPO = Path(__file__).resolve().parents[2]
GROUP = "Dense-keras3-float32"  # the slice of the committed corpus the damaged copies start from


@pytest.fixture(autouse=True)
def no_pytest_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case here must be refused before pytest starts (replay would run for minutes)."""
    def refuse(*args: Any, **kwargs: Any) -> int:
        raise AssertionError(f"pytest.main was started for bad input: {args}")

    monkeypatch.setattr(pytest, "main", refuse)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        status = cli.main(argv)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    _, err = capsys.readouterr()
    return status, [line for line in err.splitlines() if line.strip()]


def assert_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str], *named: str) -> str:
    status, err = run(argv, capsys)
    assert status == cli.EXIT_BAD_INPUT, (status, err)
    assert len(err) == 1, err
    assert err[0].startswith(f"keraspec {argv[0]}: "), err[0]
    for text in named:
        assert text in err[0], (text, err[0])
    return err[0]


# -- record --------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, named", [
    (["--layers", "Nope"], ["--layers", "no layer named 'Nope'"]),
    (["--layers", "Dense,Dens"], ["'Dens'", "did you mean Dense"]),
    (["--layers", ","], ["--layers ','", "names nothing"]),
    (["--oracles", "keras9"], ["--oracles 'keras9'", "keras3, tf_keras"]),
    (["--dtypes", "float32,float8"], ["--dtypes 'float8'", "float64"]),
    (["--examples", "0"], ["--examples", "0 is not >= 1"]),
    (["--examples", "two"], ["--examples", "'two' is not an int"]),
    (["--seed", "-1"], ["--seed", "-1 is not >= 0"]),
    (["--progress", "maybe"], ["--progress", "invalid choice: 'maybe'"]),
    (["--bogus"], ["unrecognized arguments: --bogus"]),
])
def test_record_refuses_bad_arguments(argv: list[str], named: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(["record", *argv], capsys, *named)


def test_record_refuses_an_out_folder_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_bad_input(["record", "--layers", "Dense", "--out", str(a_file)], capsys, f"--out {a_file}", "is a file")
    assert_bad_input(["record", "--layers", "Dense", "--out", str(a_file / "corpus")], capsys,
                     f"{a_file / 'corpus'} cannot be created", "is a file")


def test_record_refuses_to_add_to_a_damaged_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--layers adds to the corpus in --out: a damaged one is refused before recording anything."""
    pytest.importorskip("tensorflow")
    (tmp_path / "index.json").write_text('{"format_version": 3, "cases": [')
    assert_bad_input(["record", "--layers", "Dense", "--oracles", "keras3", "--dtypes", "float32", "--out", str(tmp_path)],
                     capsys, str(tmp_path / "index.json"), "not valid JSON")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]  # nothing recorded


# -- replay: arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, named", [
    (["--device", "tpu"], ["--device", "invalid choice: 'tpu'"]),
    (["--layers", "Nope"], ["--layers", "no layer named 'Nope'"]),
    (["--layers", ""], ["--layers ''", "names nothing"]),
    (["--families", "cor"], ["--families 'cor'", "core"]),
    (["--checks", "forwards"], ["--checks 'forwards'", "forward"]),
    (["--oracle", "keras9"], ["--oracle 'keras9'"]),
    (["--dtype", "float8"], ["--dtype 'float8'"]),
    (["--shard", "3/2"], ["--shard '3/2'", "1 <= i <= n"]),
    (["--shard", "one"], ["--shard 'one'"]),
    (["--examples", "0"], ["--examples 0", ">= 1"]),
    (["--examples", "x"], ["--examples", "invalid int value: 'x'"]),
    (["--progress", "maybe"], ["--progress", "invalid choice: 'maybe'"]),
])
def test_replay_refuses_bad_arguments(argv: list[str], named: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(["replay", *argv], capsys, *named)


def test_replay_refuses_an_unavailable_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_bad_input(["replay", "--device", "cuda"], capsys, "--device cuda", "no CUDA device", "--device cpu")


def test_replay_refuses_a_results_folder_it_cannot_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert_bad_input(["replay", "--results", str(a_file)], capsys, f"--results {a_file}", "is a file")
    assert_bad_input(["replay", "--results", str(a_file / "sub")], capsys, "cannot be created")


def test_folder_problem() -> None:
    assert folder_problem(REPO) is None
    assert folder_problem(REPO / "results" / "not" / "yet" / "there") is None  # created on the first write
    assert "is a file" in (folder_problem(REPO / "pyproject.toml") or "")
    if os.geteuid() != 0:  # root writes anywhere
        assert "not writable" in (folder_problem("/proc/1") or "")


# -- replay: the corpus --------------------------------------------------------------------------
def _slice(folder: Path) -> dict[str, Any]:
    """A one-group copy of the committed corpus in ``folder``; returns its index."""
    index = json.loads((DEFAULT_CORPUS / "index.json").read_text())
    index["cases"] = [c for c in index["cases"] if c["group"] == GROUP]
    folder.mkdir()
    shutil.copy(DEFAULT_CORPUS / f"{GROUP}.npz", folder)
    (folder / "index.json").write_text(json.dumps(index))
    return index


def _edit_index(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path, dict[str, Any]], None]:
    def damage(folder: Path, index: dict[str, Any]) -> None:
        edit(index)
        (folder / "index.json").write_text(json.dumps(index))
    return damage


def _truncate_index(folder: Path, index: dict[str, Any]) -> None:
    text = (folder / "index.json").read_text()
    (folder / "index.json").write_text(text[: len(text) // 2])


def _truncate_npz(folder: Path, index: dict[str, Any]) -> None:
    data = (folder / f"{GROUP}.npz").read_bytes()
    (folder / f"{GROUP}.npz").write_bytes(data[: len(data) // 2])


def _drop_array(folder: Path, index: dict[str, Any]) -> None:
    arrays = dict(np.load(folder / f"{GROUP}.npz"))
    del arrays["1/infer/outputs/0"]
    np.savez_compressed(folder / f"{GROUP}.npz", **arrays)


def _grow_input_shape(index: dict[str, Any]) -> None:
    index["cases"][0]["input_shapes"][0][-1] += 1


DAMAGES: dict[str, tuple[Callable[[Path, dict[str, Any]], None], list[str]]] = {
    "truncated index": (_truncate_index, ["index.json", "not valid JSON", "line 1 column"]),
    "index not an object": (_edit_index(lambda i: i.clear()), ["index.json", "format version None"]),
    "other format version": (_edit_index(lambda i: i.update(format_version=2)), ["index.json", "format version 2", f"reads {FORMAT_VERSION}"]),
    "cases missing": (_edit_index(lambda i: i.pop("cases")), ["index.json", "field 'cases' is missing"]),
    "case field missing": (_edit_index(lambda i: i["cases"][1].pop("seed")), ["index.json", "case 1", "field 'seed' is missing"]),
    "case field of the wrong type": (_edit_index(lambda i: i["cases"][0].update(seed="0")),
                                     ["case 0", "field 'seed' is '0'", "integer"]),
    "unknown oracle": (_edit_index(lambda i: i["cases"][0].update(oracle="keras9")), ["case 0", "oracle 'keras9'"]),
    "counts missing": (_edit_index(lambda i: i["cases"][0]["variants"]["infer"].pop("counts")),
                       ["case 0", "variant 'infer' has no 'counts'"]),
    "truncated npz": (_truncate_npz, [f"{GROUP}.npz", "not a readable .npz archive"]),
    "npz missing": (lambda folder, index: (folder / f"{GROUP}.npz").unlink(), [f"{GROUP}.npz", "missing"]),
    "array missing": (_drop_array, [f"{GROUP}.npz", "'1/infer/outputs/0' is missing"]),
    "input shape disagrees": (_edit_index(_grow_input_shape), [f"{GROUP}.npz", "'0/infer/inputs/0' has shape", "input shape"]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_replay_refuses_a_damaged_corpus(damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "corpus"
    edit, named = DAMAGES[damage]
    edit(folder, _slice(folder))
    assert_bad_input(["replay", "--corpus", str(folder)], capsys, f"--corpus {folder}", *named)


def test_the_undamaged_slice_passes_the_checks(tmp_path: Path) -> None:
    _slice(tmp_path / "corpus")
    Corpus(tmp_path / "corpus").check_arrays()


def test_committed_corpus_passes_the_checks() -> None:
    Corpus(DEFAULT_CORPUS).check_arrays()


def _a_file(path: Path) -> Path:
    path.write_text("")
    return path


@pytest.mark.parametrize("make, named", [
    (lambda tmp: tmp / "nowhere", ["no corpus folder at"]),
    (lambda tmp: tmp, ["index.json missing", "keraspec record"]),
    (lambda tmp: _a_file(tmp / "f"), ["is a file"]),
])
def test_replay_refuses_a_missing_corpus(make: Callable[[Path], Path], named: list[str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(["replay", "--corpus", str(make(tmp_path))], capsys, "--corpus", *named)


def test_corpus_errors_are_value_errors(tmp_path: Path) -> None:
    """CorpusError stays a ValueError: callers that caught the old ValueError keep working."""
    with pytest.raises(ValueError):
        Corpus(tmp_path)
    assert issubclass(CorpusError, ValueError)


# -- the plugin, in pytest itself ----------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (["--corpus", "{damaged}"], ["--corpus", "format version 2"]),
    (["--layers", "Nope"], ["--layers: no layer named 'Nope'"]),
])
def test_pytest_reports_bad_plugin_input_as_a_usage_error(args: list[str], named: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "corpus"
    _edit_index(lambda i: i.update(format_version=2))(folder, _slice(folder))
    argv = [a.replace("{damaged}", str(folder)) for a in args]
    out = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "conformance" / "tests"), "-q", "-p", "no:randomly",
                          "-p", "no:cacheprovider", "--results", str(tmp_path / "results"), *argv],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == pytest.ExitCode.USAGE_ERROR, out.stdout[-2000:] + out.stderr[-2000:]
    err = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("ERROR: "), err
    assert all(text in err[0] for text in named), err[0]
    assert "INTERNALERROR" not in out.stdout + out.stderr
