"""`keraspec spec` and `keraspec layers` answer bad input with one line naming it and exit status 2,
never a traceback; a config the spec rejects is an answer (one 'invalid: ...' line, exit status 1)."""

from __future__ import annotations

import pytest

from keraspec.spec import cli


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """Exit status, stdout and the non-empty stderr lines of ``keraspec ARGV``, run in-process."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse exits
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, [line for line in err.splitlines() if line.strip()]


def assert_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str], *named: str) -> str:
    status, out, err = run(argv, capsys)
    assert status == cli.EXIT_BAD_INPUT, (status, out, err)
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    for text in named:
        assert text in err[0], (text, err[0])
    return err[0]


@pytest.mark.parametrize("config, named", [
    ("not json", ["--config 'not json'", "not valid JSON"]),
    ('{"units": 8', ["--config", "not valid JSON"]),
    ("[1]", ["--config '[1]'", "JSON array", "not an object"]),
    ('"units"', ["JSON string", "not an object"]),
    ("null", ["JSON null"]),
    ("8", ["JSON number"]),
])
def test_malformed_config(config: str, named: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = assert_bad_input(["spec", "Dense", "--config", config], capsys, *named)
    assert line.startswith("keraspec spec: ")


@pytest.mark.parametrize("shape, named", [
    ("(None, x)", ["--input-shape '(None, x)'", "not a shape"]),
    ("3,,4", ["--input-shape '3,,4'", "not a shape"]),
    ("[]", ["--input-shape '[]'", "at least the batch axis"]),
    ("()", ["has no axes"]),
    ("(None, -1)", ["-1 is not a size"]),
    ("(None, 2.5)", ["2.5 is not a size"]),
    ("(None, True)", ["True is not a size"]),
    ("'abc'", ["is a string, not a shape"]),
    ("4", ["is a number, not a shape"]),
    ("{1, 2}", ["not a shape"]),
    ("[(None, 4), ()]", ["has no axes"]),
    ("__import__('os')", ["not a shape"]),  # never evaluated: a literal or nothing
])
def test_malformed_input_shape(shape: str, named: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(["spec", "Dense", "--config", '{"units": 2}', "--input-shape", shape], capsys, *named)


def test_malformed_shape_is_refused_before_the_config_is_judged(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input (2) wins over a config the spec would reject (1): nothing is judged on garbage."""
    assert_bad_input(["spec", "Dense", "--config", '{"units": 0}', "--input-shape", "(None, x)"], capsys, "--input-shape")


@pytest.mark.parametrize("argv, named", [
    (["spec", "Dens"], ["no layer named 'Dens'", "did you mean Dense"]),
    (["spec", "NoSuchLayer", "--config", "{}"], ["'NoSuchLayer'"]),
    (["layers", "--family", "nope"], ["--family 'nope'", "core"]),
])
def test_unknown_names(argv: list[str], named: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert_bad_input(argv, capsys, *named)


@pytest.mark.parametrize("argv, named", [
    (["spec", "Dense", "--bogus"], ["keraspec spec:", "unrecognized arguments: --bogus"]),
    (["spec"], ["keraspec spec:", "required: name"]),
    (["spec", "Dense", "--config"], ["--config", "expected one argument"]),
    (["layers", "extra"], ["keraspec layers:", "unrecognized arguments: extra"]),
    (["nocommand"], ["invalid choice: 'nocommand'"]),
    ([], ["required: command"]),
])
def test_argparse_errors_are_one_line(argv: list[str], named: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = assert_bad_input(argv, capsys, *named)
    assert "--help" in line  # where to look next


@pytest.mark.parametrize("argv, rule", [
    (["spec", "Dense", "--config", '{"units": 0}'], "units.min"),
    (["spec", "Dense", "--config", '{"units": 2, "bogus": 1}'], "bogus"),
    (["spec", "Dense", "--config", '{"units": 2}', "--input-shape", "(None,)"], "input.rank"),
    (["spec", "Dense", "--config", '{"units": 2}', "--input-shape", "[(None, 2), (None, 3)]"], "input.count"),
])
def test_a_config_the_spec_rejects_is_an_answer(argv: list[str], rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(argv, capsys)
    assert status == 1 and len(err) == 1, (status, err)
    assert err[0].startswith("invalid: ") and rule in err[0]


def test_valid_input_still_answers(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["spec", "Dense", "--config", '{"units": 2}', "--input-shape", "(None, 4)"], capsys)
    assert status == 0 and not err
    assert "output shape: (None, 2)" in out and "weight kernel: (4, 2)" in out
    status, out, err = run(["layers", "--family", "core"], capsys)
    assert status == 0 and out.startswith("core: ")


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["spec", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0" in out and "1 -- the spec rejects" in out and "2 -- input that cannot be read" in out


@pytest.mark.parametrize("text, expected", [
    ("(None, 4)", (None, 4)),
    ("[None, 10, 3]", (None, 10, 3)),
    ("[(None, 4), (None, 4)]", [(None, 4), (None, 4)]),
])
def test_parse_shape(text: str, expected: object) -> None:
    assert cli.parse_shape(text) == expected


def test_long_values_are_shortened_in_messages() -> None:
    with pytest.raises(cli.BadInput) as exc:
        cli.parse_config("x" * 500)
    assert len(str(exc.value)) < 300 and "..." in str(exc.value)
