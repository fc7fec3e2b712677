"""The spec package stands alone: ``keraspec.spec`` and its command line import nothing from the
packages above it; their subcommands (record, replay, report) come in through entry points."""

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from keraspec.spec import cli

UPPER = ("keraspec.conformance", "keraspec.reports", "keraspec.impl", "tensorflow", "torch", "keras", "tf_keras")
PLUGGED = {"record": "keraspec.conformance", "replay": "keraspec.conformance", "report": "keraspec.reports"}


def _imported_after(code: str) -> list[str]:
    """Modules of UPPER that ``code`` imported, in a fresh interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {{'tensorflow', 'torch', 'keras', "
             f"'tf_keras'}} or m.startswith({UPPER[:3]!r}))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_spec_and_its_cli_import_no_upper_layer():
    assert _imported_after("import keraspec.spec, keraspec.spec.cli, keraspec.spec.expr, keraspec.spec.loader") == []


def test_spec_commands_load_no_plugin():
    code = ("import contextlib, io\nfrom keraspec.spec.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['spec', 'Dense']) == 0 and main(['layers']) == 0")
    assert _imported_after(code) == []


def test_subcommands_are_entry_points_of_the_upper_packages():
    eps = {ep.name: ep for ep in entry_points(group=cli.COMMAND_GROUP)}
    assert set(PLUGGED) <= set(eps), "reinstall: pip install --no-deps -e . (pyproject.toml's entry points)"
    for name, package in PLUGGED.items():
        assert eps[name].module.startswith(package + "."), eps[name]


@pytest.mark.parametrize("command", sorted(PLUGGED))
def test_plugged_in_help_works(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert f"usage: keraspec {command}" in capsys.readouterr().out


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("spec", "layers", *PLUGGED))


@pytest.mark.parametrize("command", sorted(PLUGGED))
def test_help_of_a_plugged_in_command_needs_no_tensorflow_or_torch(command):
    code = ("import contextlib, io\nfrom keraspec.spec.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main([{command!r}, '--help'])\n    except SystemExit:\n        pass")
    loaded = _imported_after(code)
    assert not [m for m in loaded if m.split(".")[0] in ("tensorflow", "torch", "keras", "tf_keras")], loaded


def test_console_script_runs_a_plugged_in_command(tmp_path):
    """`keraspec report` through the console script: a bad input is one line and exit status 2."""
    out = subprocess.run([sys.executable, "-m", "keraspec.spec.cli", "report", str(tmp_path / "missing.jsonl"),
                          "--out", str(tmp_path / "html")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.startswith("keraspec report: ") and len(out.stderr.strip().splitlines()) == 1


def test_a_broken_plugin_does_not_break_the_spec_commands(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    broken = EntryPoint(name="broken", value="keraspec.no_such_module:register", group=cli.COMMAND_GROUP)
    monkeypatch.setattr(cli, "_command_entry_points", lambda: {"broken": broken})
    assert cli.main(["layers"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "broken" in capsys.readouterr().out
    assert cli.main(["broken"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("keraspec: the 'broken' command") and len(err.splitlines()) == 1
