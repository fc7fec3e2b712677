"""User spec folders (--spec-dir, KERASPEC_SPEC_DIRS): a user's own layer specified, implemented and
checked by the conformance suite next to keraspec's own layers -- examples/custom_layer end to end.

The loader and CLI tests run in-process with the loader's folder list reset per test; the suite
run is a subprocess (it imports TensorFlow and both oracles), on the example's layer in float32.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keraspec import spec
from keraspec.spec import cli, loader

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "custom_layer"
EXAMPLE_SPEC = EXAMPLE / "spec"


@pytest.fixture(autouse=True)
def fresh_spec_dirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no user folders (add_spec_dirs is process-wide state)."""
    monkeypatch.setattr(loader, "_added_dirs", [])
    monkeypatch.delenv(loader.SPEC_DIRS_ENV, raising=False)


def _write(folder: Path, text: str, name: str = "mine.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


ENTRY = """\
family: mine
layers:
  - name: {name}
    doc: A test layer.
    oracles: {{keras3: mine.{name}}}
    inputs: {{rank: {{min: 2, max: 3}}}}
    output_shape: input
    numerics: {{op_class: exact}}
"""


def test_user_entries_load_next_to_the_packages() -> None:
    assert "ChannelAffine" not in spec.layers()
    loader.add_spec_dirs([EXAMPLE_SPEC])
    assert "ChannelAffine" in spec.layers() and "Dense" in spec.layers()
    entry = spec.lookup("ChannelAffine")
    assert entry.family == "example_custom"
    assert entry.weight_shapes({}, (None, 3)) == [("scale", (3,)), ("shift", (3,))]
    assert entry.oracles["keras3"] == "channel_affine_keras.ChannelAffine"


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(loader.SPEC_DIRS_ENV, os.pathsep.join([str(EXAMPLE_SPEC), ""]))
    assert spec.lookup("ChannelAffine").name == "ChannelAffine"


def test_clash_with_a_builtin_name_is_one_clear_error(tmp_path: Path) -> None:
    folder = _write(tmp_path / "clash", ENTRY.format(name="Dense"))
    loader.add_spec_dirs([folder])
    with pytest.raises(loader.SpecFileError, match=r"mine\.yaml: layer Dense clashes with the built-in layer Dense"):
        spec.layers()


def test_clash_with_a_builtin_alias_and_between_user_files(tmp_path: Path) -> None:
    alias = _write(tmp_path / "alias", ENTRY.format(name="Mine").replace("    doc:", "    aliases: [Conv2D]\n    doc:"))
    loader.add_spec_dirs([alias])
    with pytest.raises(loader.SpecFileError, match="layer Conv2D clashes with the built-in layer Conv2D"):
        spec.layers()
    loader._added_dirs.clear()
    first, second = _write(tmp_path / "a", ENTRY.format(name="Twice")), _write(tmp_path / "b", ENTRY.format(name="Twice"))
    loader.add_spec_dirs([first, second])
    with pytest.raises(loader.SpecFileError, match=r"layer Twice clashes with Twice of .*a[/\\]mine\.yaml"):
        spec.layers()


def test_invalid_files_are_refused_by_the_schema(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad", ENTRY.format(name="Mine").replace("output_shape: input\n", "output_shape: input\n    colour: blue\n"))
    loader.add_spec_dirs([bad])
    with pytest.raises(loader.SpecFileError, match=r"bad[/\\]mine\.yaml: layers/0: Additional properties are not allowed \('colour'"):
        spec.layers()
    loader._added_dirs.clear()
    broken = _write(tmp_path / "broken", "family: [unclosed\n")
    loader.add_spec_dirs([broken])
    with pytest.raises(loader.SpecFileError, match="not valid YAML"):
        spec.layers()
    with pytest.raises(loader.SpecFileError, match="not a folder"):
        loader.add_spec_dirs([tmp_path / "missing"])


def test_cli_spec_and_layers_take_spec_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["spec", "--spec-dir", str(EXAMPLE_SPEC), "ChannelAffine"]) == 0
    assert "ChannelAffine" in capsys.readouterr().out
    assert cli.main(["spec", "ChannelAffine", "--spec-dir", str(EXAMPLE_SPEC), "--config", '{"use_shift": false}',
                     "--input-shape", "(None, 5)"]) == 0
    assert "weight scale: (5,)" in capsys.readouterr().out
    assert cli.main(["layers", "--spec-dir", str(EXAMPLE_SPEC)]) == 0
    assert "example_custom: ChannelAffine" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["clash", "invalid", "missing"])
def test_cli_bad_spec_dir_is_one_line_and_exit_2(problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = {
        "clash": lambda: _write(tmp_path / "d", ENTRY.format(name="Dense")),
        "invalid": lambda: _write(tmp_path / "d", "family: mine\nlayers: 3\n"),
        "missing": lambda: tmp_path / "nowhere",
    }[problem]()
    assert cli.main(["layers", "--spec-dir", str(folder)]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keraspec layers: ")
    assert {"clash": "clashes with the built-in layer Dense", "invalid": "layers: 3 is not of type 'array'",
            "missing": "not a folder"}[problem] in err


def test_conformance_suite_runs_on_the_example() -> None:
    """The whole suite on the example's layer (float32, both oracles): every check passes, the user's
    Keras classes named in the spec are the oracles, the user's module is --impl."""
    pytest.importorskip("tensorflow")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0", KERAS_BACKEND="tensorflow", CI="1")
    env.pop(loader.SPEC_DIRS_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "tests"), "--spec-dir", str(EXAMPLE_SPEC),
         "--impl", "channel_affine_torch", "--layers", "ChannelAffine", "--dtype", "float32",
         "--hypothesis-profile=ci", "--examples", "2", "-q", "-rA", "-p", "no:cacheprovider",
         "--results", str(Path(os.environ.get("TMPDIR", "/tmp")) / "keraspec-spec-dir-results")],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=600)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
    assert result.returncode == 0, tail
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # The checks ran on the user's layer against both oracles (none skipped as "not implemented").
    passed = {line.split("::")[-1] for line in result.stdout.splitlines() if line.startswith("PASSED")}
    for oracle in ("keras3", "tf_keras"):
        for check in ("config", "shapes", "weights", "initial_weights", "forward", "gradients", "training_step"):
            assert f"test_{check}[ChannelAffine-{oracle}-cpu-float32]" in passed, (check, oracle, sorted(passed))
    assert "not implemented" not in result.stdout


def test_suite_refuses_a_bad_spec_dir_as_a_usage_error(tmp_path: Path) -> None:
    folder = _write(tmp_path / "d", ENTRY.format(name="Dense"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance" / "tests" / "test_structure.py"), "--spec-dir",
         str(folder), "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage error
    assert "--spec-dir:" in result.stderr and "clashes with the built-in layer Dense" in result.stderr
