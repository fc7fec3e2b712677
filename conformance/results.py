"""Conformance results as JSON lines: one record per test case, plus a header and a footer per run.

A results file is what ``keraspec report`` reads.  Each pytest process (each shard, each xdist
worker) writes its own file; the report merges them and flags a shard whose footer is missing
(interrupted or truncated) rather than dropping it silently.

Record kinds (the ``kind`` field):

``run``   -- first line: ``run_id``, ``shard`` ("i/n"), ``worker``, ``started`` (ISO time),
             ``impl`` (module under test), ``oracles``, ``devices``, ``dtypes``, ``profile``,
             ``versions`` (package -> version), ``command`` (the pytest command line).
``case``  -- one test case, see :class:`CaseRecord`.
``end``   -- last line: ``run_id``, ``finished`` (ISO time), ``count`` (case records written).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

#: The statuses a case can end in.
STATUSES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error", "not_implemented")
#: The devices a case can run on (``--device``).  Here, not in the harness, so that the command
#: line can offer them without importing torch.
DEVICES = ("cpu", "cuda")
#: The values of --progress (pytest plugin, keraspec record): auto is on unless the CI environment
#: variable says the run is in CI.  Here for the same reason.
PROGRESS_CHOICES = ("auto", "on", "off")


def folder_problem(path: str | os.PathLike[str]) -> str | None:
    """Why files cannot be written into the folder ``path``, or None if they can.  A missing folder
    is fine when the nearest existing folder above it is writable (it is created on first write);
    checked before a run, so a bad --results or --out fails at once, not at the first case."""
    folder = Path(path)
    if folder.exists():
        if not folder.is_dir():
            return f"{folder} is a file, not a folder"
        return None if os.access(folder, os.W_OK | os.X_OK) else f"{folder} is not writable"
    above = folder.absolute().parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        return f"{folder} cannot be created: {above} is a file, not a folder"
    if not os.access(above, os.W_OK | os.X_OK):
        return f"{folder} cannot be created: {above} is not writable"
    return None


@dataclass
class CaseRecord:
    layer: str  # Keras class name
    family: str  # spec family (core, convolutional, ...)
    check: str  # config, errors, shapes, weights, forward, forward_training, gradients, masks, ...
    oracle: str  # keras3 | tf_keras | corpus:<name>
    impl: str  # module under test, e.g. keraspec.impl.layers
    device: str  # cpu | cuda
    dtype: str  # float32, float64, ...
    status: str  # one of STATUSES
    test_id: str  # pytest node id
    message: str = ""  # the error found (assertion message), or the xfail/skip reason
    max_abs_err: float | None = None  # worst absolute error over compared arrays
    max_rel_err: float | None = None  # worst relative error
    atol: float | None = None  # tolerance used
    rtol: float | None = None
    example: dict[str, Any] | None = None  # the (shrunk) failing example: config, input shapes, seed ...
    seed: str | None = None  # hypothesis seed / reproduce_failure blob
    repro: str = ""  # one-line command that reproduces this case
    duration_s: float = 0.0
    xfail_entry: str | None = None  # id of the known-mismatch registry entry that matched
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "case", **asdict(self)}


class ResultsWriter:
    """Appends records to a JSON-lines file, flushing each so an interrupted run leaves a valid prefix."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "w", encoding="utf-8")
        self.count = 0
        self.run_id = header["run_id"]
        self._write({"kind": "run", **header})

    def _write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=_json_default, allow_nan=True) + "\n")
        self._fh.flush()

    def add(self, case: CaseRecord) -> None:
        self._write(case.to_json())
        self.count += 1

    def close(self, finished: str) -> None:
        self._write({"kind": "end", "run_id": self.run_id, "finished": finished, "count": self.count})
        self._fh.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


@dataclass
class ResultsFile:
    """One results file as read back: headers, cases, footer, and what is wrong with it."""

    runs: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    footer: dict[str, Any] | None
    problems: list[str]


def read_results(path: str | os.PathLike[str]) -> ResultsFile:
    """Read one results file.  Nothing is dropped silently: a line that is not a record, a record of
    an unknown kind, a missing or miscounting footer each add a problem; the cases read still count."""
    out = ResultsFile([], [], None, [])
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                out.problems.append(f"{path}: line {lineno} is not valid JSON (truncated write?)")
                continue
            if not isinstance(record, dict):
                out.problems.append(f"{path}: line {lineno} is JSON but not a record")
                continue
            kind = record.get("kind")
            if kind == "run":
                out.runs.append(record)
            elif kind == "case":
                out.cases.append(record)
            elif kind == "end":
                out.footer = record
            else:
                out.problems.append(f"{path}: line {lineno} has unknown kind {kind!r}; record ignored")
    if not out.runs:
        out.problems.append(f"{path}: no run header")
    if out.footer is None:
        out.problems.append(f"{path}: no end record -- the run was interrupted or the file is truncated")
    elif out.footer.get("count") != len(out.cases):
        out.problems.append(f"{path}: footer counts {out.footer.get('count')} cases, file has {len(out.cases)}")
    return out
