"""The progress display of the keraspec pytest plugin (and of `keraspec record`): cases done of the
total and the time left, in place on a terminal, occasional plain lines otherwise, quiet in CI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keraspec.conformance import plugin
from keraspec.conformance.plugin import Progress, ProgressDisplay, format_duration, in_ci, progress_mode


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stream(io.StringIO):
    def __init__(self, tty: bool = False):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("seconds, text", [
    (0, "0s"), (0.4, "0s"), (45, "45s"), (59.6, "1m00s"), (185, "3m05s"), (3599, "59m59s"), (3720, "1h02m"),
    (-3, "0s"), (36000, "10h00m"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_time_left_follows_the_rate_so_far() -> None:
    clock = Clock()
    p = Progress(clock=clock)
    assert p.remaining_s() is None
    assert p.line() == "keraspec: 0/? cases, 0s elapsed"
    p.start(100)
    assert p.remaining_s() is None  # nothing done: no rate yet
    clock.now += 50
    for i in range(25):
        p.advance(failed=i < 2)
    assert p.remaining_s() == pytest.approx(150)
    assert p.line() == "keraspec: 25/100 cases (25%), 2 failed, 50s elapsed, about 2m30s left"
    p.start(100)  # xdist: every worker reports the same total; the clock does not restart
    assert p.elapsed() == 50
    for _ in range(75):
        p.advance()
    assert p.line(prefix="") == "100/100 cases (100%), 2 failed, 50s elapsed"  # done: nothing left to estimate


def test_percentages_are_floored_exactly() -> None:
    p = Progress(clock=Clock())
    p.start(100)
    for _ in range(29):
        p.advance()
    assert "(29%)" in p.line()  # not 28% from 100 * 0.29 in floating point


@pytest.mark.parametrize("ci, expected", [
    (None, False), ("", False), ("false", False), ("False", False), ("0", False),
    ("true", True), ("1", True), ("yes", True), ("github-actions", True),
])
def test_in_ci(ci: str | None, expected: bool) -> None:
    assert in_ci({} if ci is None else {"CI": ci}) is expected


@pytest.mark.parametrize("choice, ci, tty, mode", [
    ("auto", None, True, "inplace"),
    ("auto", None, False, "lines"),
    ("auto", "true", True, "off"),
    ("auto", "false", False, "lines"),
    ("on", "true", False, "lines"),  # asked for: shown even in CI
    ("on", "true", True, "inplace"),
    ("off", None, True, "off"),
])
def test_progress_mode(choice: str, ci: str | None, tty: bool, mode: str) -> None:
    assert progress_mode(choice, Stream(tty), {} if ci is None else {"CI": ci}) == mode


def test_a_stream_without_isatty_gets_plain_lines() -> None:
    assert progress_mode("on", object()) == "lines"  # type: ignore[arg-type]


def test_plain_lines_are_occasional_and_short_runs_quiet() -> None:
    clock, stream = Clock(), Stream()
    display = ProgressDisplay(Progress(clock=clock), "lines", stream)
    display.start(100)
    for _ in range(20):  # 20% in the first 10 s: quiet
        clock.now += 0.5
        display.advance()
    assert stream.getvalue() == ""
    clock.now += plugin.PROGRESS_QUIET_S
    display.advance()
    assert stream.getvalue().splitlines() == ["keraspec: 21/100 cases (21%), 40s elapsed, about 2m30s left"]
    for _ in range(5):  # still within 20..29%, and not a minute since the last line
        clock.now += 1
        display.advance()
    assert len(stream.getvalue().splitlines()) == 1
    clock.now += plugin.PROGRESS_LINE_S  # a heartbeat when a step takes long
    display.advance()
    assert len(stream.getvalue().splitlines()) == 2
    for _ in range(3):  # 28, 29, 30: crosses 30%
        display.advance()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("keraspec: 30/100 cases (30%)")
    display.finish()
    assert stream.getvalue().splitlines()[-1] == lines[-1]  # the state did not change: no repeat
    display.advance()
    display.finish()
    assert stream.getvalue().splitlines()[-1].startswith("keraspec: 31/100 cases")


def test_plain_lines_go_through_pytests_writer_where_both_reach_one_file() -> None:
    clock, stream, written = Clock(), Stream(), []
    display = ProgressDisplay(Progress(clock=clock), "lines", stream, line_writer=written.append)
    display.start(10)
    clock.now += plugin.PROGRESS_QUIET_S
    display.advance()
    display.finish()
    assert written == ["keraspec: 1/10 cases (10%), 30s elapsed, about 4m30s left"] and stream.getvalue() == ""


def test_a_quiet_run_ends_quiet() -> None:
    stream = Stream()
    display = ProgressDisplay(Progress(clock=Clock()), "lines", stream)
    display.start(3)
    for _ in range(3):
        display.advance()
    display.finish()
    assert stream.getvalue() == ""


def test_in_place_rewrites_one_line_and_leaves_the_last_state() -> None:
    clock, stream = Clock(), Stream(tty=True)
    display = ProgressDisplay(Progress(noun="groups", clock=clock), "inplace", stream)
    display.start(4)
    assert stream.getvalue() == "\rkeraspec: 0/4 groups (0%), 0s elapsed\x1b[K"
    clock.now += 10
    display.advance()
    assert stream.getvalue().endswith("\rkeraspec: 1/4 groups (25%), 10s elapsed, about 30s left\x1b[K")
    display.erase()
    assert stream.getvalue().endswith("\r\x1b[K")
    for _ in range(3):
        display.advance()
    display.finish()
    assert stream.getvalue().endswith("\rkeraspec: 4/4 groups (100%), 10s elapsed\x1b[K\r\x1b[Kkeraspec: 4/4 groups (100%), "
                                      "10s elapsed\n")
    assert "\n" not in stream.getvalue()[:-1]  # one line, rewritten


def test_in_place_after_pytests_dots_trails_them_and_is_erased_before_pytest_writes() -> None:
    """stdout and stderr on one terminal: the status follows the dots on their line, the cursor
    stays where pytest left it, and erase clears from there to the end of the line."""
    line = {"column": 10, "width": 80}
    stream = Stream(tty=True)
    display = ProgressDisplay(Progress(clock=Clock()), "inplace", stream,
                              shared_line=lambda: (line["column"], line["width"]))
    display.start(1000)
    display.advance()
    text = stream.getvalue()
    assert text.startswith("\x1b7 1/1000 cases (0%)") and text.endswith("\x1b[K\x1b8")
    assert "keraspec:" not in text  # no room to spare after the dots
    stream.truncate(0), stream.seek(0)
    display.erase()
    assert stream.getvalue() == "\x1b[K"
    stream.truncate(0), stream.seek(0)
    display.erase()  # nothing shown: nothing written
    assert stream.getvalue() == ""
    line["column"] = 40  # a shorter room: cut to fit, never into the last column
    display.advance()
    shown = stream.getvalue().removeprefix("\x1b7 ").removesuffix("\x1b[K\x1b8")
    assert len(shown) == 80 - 40 - 2
    stream.truncate(0), stream.seek(0)
    display.erase()
    line["column"] = 70  # no room: wait for the next line
    stream.truncate(0), stream.seek(0)
    display.advance()
    assert stream.getvalue() == ""
    display.finish()  # pytest writes its own summary: nothing of ours stays
    assert stream.getvalue() == ""


def test_off_writes_nothing() -> None:
    stream = Stream(tty=True)
    display = ProgressDisplay(Progress(clock=Clock()), "off", stream)
    display.start(2)
    display.advance()
    display.finish()
    assert stream.getvalue() == ""


# -- a real pytest session -----------------------------------------------------------------------
TINY = """
import pytest

@pytest.mark.parametrize("i", range(5))
def test_tiny(i):
    assert i != 3
"""
# Lines start after PROGRESS_QUIET_S: a conftest brings that to 0 so a tiny run shows them.
CONFTEST = "from keraspec.conformance import plugin\nplugin.PROGRESS_QUIET_S = 0.0\n"


def _tiny_session(tmp_path: Path, *args: str, ci: str | None = None, merged: bool = False) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiny.py").write_text(TINY)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", str(tmp_path), "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "--results", str(tmp_path / "results"), *args],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                          text=True, timeout=300)


def test_a_pytest_session_shows_its_progress_on_stderr(tmp_path: Path) -> None:
    out = _tiny_session(tmp_path, "--progress", "on")
    assert out.returncode == 1, out.stdout + out.stderr  # test_tiny[3] fails
    lines = [line for line in out.stderr.splitlines() if line.startswith("keraspec: ")]
    assert lines, out.stderr
    assert lines[-1].startswith("keraspec: 5/5 cases (100%), 1 failed, ")
    assert "keraspec:" not in out.stdout.replace("keraspec: known-mismatch", "").replace("keraspec: results", "")


@pytest.mark.parametrize("args, ci", [((), "true"), (("--progress", "off"), None)])
def test_quiet_in_ci_and_when_off(tmp_path: Path, args: tuple[str, ...], ci: str | None) -> None:
    out = _tiny_session(tmp_path, *args, ci=ci)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "cases" not in out.stderr, out.stderr


def test_on_one_stream_the_lines_never_split_pytests_dots(tmp_path: Path) -> None:
    """2>&1 (a log, a pipe): each status line is a line of its own, not glued to pytest's dots."""
    out = _tiny_session(tmp_path, "--progress", "on", merged=True)
    lines = out.stdout.splitlines()
    status = [line for line in lines if "cases (" in line]
    assert status and all(line.startswith("keraspec: ") for line in status), lines
    assert status[-1].startswith("keraspec: 4/5 cases (80%), 1 failed")  # at 5/5 pytest's summary says it
