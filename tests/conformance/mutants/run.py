"""Run the conformance suite against the mutants and say which ones it kills.

    .venv/bin/python tests/conformance/mutants/run.py --set dev --profile dev    # make mutants
    .venv/bin/python tests/conformance/mutants/run.py --only dropout-scales-by-keep --profile ci

A set is split into rounds holding at most one mutant per layer (one ``--impl`` module has one
class per layer name); each round is one pytest process (``--impl mutants.impl``, the round's
mutants in ``KERASPEC_MUTANTS``) that runs exactly the test ids of the mutants' named checks --
the ones that must fail and the one that must pass -- on every oracle that has the layer, under
the given hypothesis profile less its shrink phase (:mod:`mutants.noshrink`: the same examples and
verdicts, without the minimal-example search a failing check would spend most of the time on).
The verdicts come from the JSON-lines results the plugin writes.

Verdicts per (mutant, check, oracle, dtype): ``killed`` (a must-fail check failed), ``SURVIVED``
(it passed), ``ok`` (the must-pass check passed), ``FALSE ALARM`` (it failed), ``known mismatch``
(it was xfailed by a registered oracle mismatch, as on the correct implementation), or the status of a
test that did not run to a verdict (skipped, error, missing).  The exit status is non-zero when a
mutant survived, a must-pass check failed, or a test did not run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
if __package__ in (None, ""):  # run as a script: make the `mutants` folder importable
    sys.path.insert(0, str(HERE.parent))

from keraspec.spec import ORACLES  # noqa: E402
from mutants.base import Expectation, Mutant, all_mutants  # noqa: E402

#: What each verdict prints as in the grid (one character per oracle x dtype).
MARKS = {"killed": "K", "SURVIVED": "S", "ok": "+", "FALSE ALARM": "!", "known mismatch": "x"}


@dataclass
class Cell:
    """One expectation of one mutant on one oracle and dtype, and the test ids that decide it."""

    mutant: Mutant
    expectation: Expectation
    role: str  # "fail" or "pass"
    oracle: str
    dtype: str
    node_ids: list[str]
    statuses: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        statuses = self.statuses
        if not self.node_ids:
            return "no such check"
        if not statuses or any(s is None for s in statuses):
            return "missing"
        # A must-pass check that a registered oracle mismatch xfails (as it does on the correct
        # implementation) is no evidence either way: it is reported, not counted as a false alarm.
        if self.role == "pass" and "xfailed" in statuses and "failed" not in statuses:
            return "known mismatch"
        # The errors check is one test per rule: it catches the mutant if any rule's test fails.
        failed = any(s in ("failed", "xfailed") for s in statuses)
        if all(s in ("passed", "failed", "xfailed") for s in statuses) or failed:
            if self.role == "fail":
                return "killed" if failed else "SURVIVED"
            return "FALSE ALARM" if failed else "ok"
        return next(s for s in statuses if s not in ("passed", "failed", "xfailed"))


def _test_files() -> dict[str, str]:
    """check -> the test file (relative to the repository) that defines ``test_<check>``."""
    out = {}
    for path in sorted((REPO / "conformance" / "tests").glob("test_*.py")):
        for name in re.findall(r"^def test_(\w+)\(", path.read_text(), flags=re.M):
            out[name] = path.relative_to(REPO).as_posix()
    return out


def cells(mutant: Mutant, dtypes: Sequence[str] | None = None) -> list[Cell]:
    """The cells of a mutant: its must-fail checks and its must-pass check, on every oracle that has
    the layer (or the one an expectation names), in ``dtypes`` (default: the mutant's own)."""
    from keraspec import spec
    from keraspec.conformance import catalogue
    from keraspec.conformance.harness import applicable_checks
    from keraspec.conformance.strategies import rules

    layer = spec.lookup(mutant.layer)
    files = _test_files()
    out = []
    for role, expectations in (("fail", mutant.fails), ("pass", (mutant.passes,))):
        for e in expectations:
            if e.check not in files:  # a check the suite does not have (any more): a verdict of its own
                out.append(Cell(mutant, e, role, "-", "-", []))
                continue
            if e.check == "errors":
                ids = [r.id for r in rules(layer) if e.rule is None or r.id == e.rule]
                if not ids:
                    raise ValueError(f"mutant {mutant.id}: {mutant.layer} has no rule {e.rule!r}")
                out.append(Cell(mutant, e, role, "-", "-", [f"{files['errors']}::test_errors[{mutant.layer}-{i}]" for i in ids]))
                continue
            if e.check not in applicable_checks(layer):
                raise ValueError(f"mutant {mutant.id}: check {e.check} does not apply to {mutant.layer}")
            for oracle in [e.oracle] if e.oracle else [o for o in ORACLES if layer.has_oracle(o)]:
                for dtype in dtypes or (mutant.dtype,):
                    if dtype in layer.input.dtypes and dtype in getattr(catalogue, "CHECK_DTYPES", {}).get(e.check, (dtype,)):
                        node = f"{files[e.check]}::test_{e.check}[{mutant.layer}-{oracle}-cpu-{dtype}]"
                        out.append(Cell(mutant, e, role, oracle, dtype, [node]))
    return out


def rounds(mutants: Iterable[Mutant]) -> list[list[Mutant]]:
    """Mutants grouped so that no round holds two mutants of one layer (first fit, in order)."""
    out: list[list[Mutant]] = []
    for m in mutants:
        for r in out:
            if all(other.layer != m.layer for other in r):
                r.append(m)
                break
        else:
            out.append([m])
    return out


def run_round(mutants: Sequence[Mutant], round_cells: Sequence[Cell], profile: str, results: Path, jobs: int = 0,
              label: str = "mutants") -> subprocess.CompletedProcess[str]:
    """One pytest process running exactly the round's test ids, under ``profile`` without its shrink
    phase (see :mod:`mutants.noshrink`); fills each cell's statuses."""
    node_ids = list(dict.fromkeys(n for c in round_cells for n in c.node_ids))
    if not node_ids:  # (pytest without test ids would run every test)
        return subprocess.CompletedProcess([], 0, "", "")
    checks = sorted({c.expectation.check for c in round_cells})
    dtypes = sorted({c.dtype for c in round_cells if c.dtype != "-"}) or ["float32"]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "mutants.noshrink", "--impl", "mutants.impl",
           "--layers", ",".join(sorted({m.layer for m in mutants})), "--checks", ",".join(checks),
           *[a for o in ORACLES for a in ("--oracle", o)], *[a for d in dtypes for a in ("--dtype", d)],
           "--device", "cpu", f"--hypothesis-profile={profile}-noshrink", "--results", str(results)]
    if jobs > 1:
        cmd += ["-n", str(jobs), "--dist", "loadgroup"]
    env = dict(os.environ, KERASPEC_MUTANTS=",".join(m.id for m in mutants), KERASPEC_RUN_ID=label,
               PYTHONPATH=os.pathsep.join([str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])]))
    for key, value in (("TF_CPP_MIN_LOG_LEVEL", "3"), ("TF_ENABLE_ONEDNN_OPTS", "0"), ("KERAS_BACKEND", "tensorflow")):
        env.setdefault(key, value)
    done = subprocess.run(cmd + node_ids, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    statuses = _statuses(results, label)
    for c in round_cells:
        c.statuses = [statuses.get(n) for n in c.node_ids]
    return done


def _statuses(results: Path, run_id: str) -> dict[str, str]:
    from keraspec.conformance.results import read_results

    out = {}
    for path in sorted(results.glob(f"{run_id}-*.jsonl")):
        for case in read_results(path).cases:
            out[case["test_id"]] = case["status"]
    return out


def run(mutants: Sequence[Mutant], profile: str, dtypes: Sequence[str] | None = None, jobs: int = 0,
        results: Path | None = None, log: IO[str] | None = None) -> tuple[list[Cell], list[str]]:
    """Run every round; return the cells (with statuses) and the output of rounds that went wrong."""
    all_cells: list[Cell] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = results or Path(tmp)
        for i, group in enumerate(rounds(mutants), 1):
            group_cells = [c for m in group for c in cells(m, dtypes)]
            start = time.monotonic()
            done = run_round(group, group_cells, profile, folder, jobs, label=f"mutants-round{i}")
            if log is not None:
                print(f"round {i}: {len(group)} mutants, {sum(len(c.node_ids) for c in group_cells)} tests, "
                      f"{time.monotonic() - start:.0f} s", file=log, flush=True)
            if done.returncode not in (0, 1) or any(c.verdict == "missing" for c in group_cells):
                problems.append(f"round {i} (pytest exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
            all_cells += group_cells
    return all_cells, problems



# -- reporting -------------------------------------------------------------------------------------
def table(all_cells: Sequence[Cell]) -> str:
    """The grid: one row per mutant, one column per check it names; per cell one mark per oracle x
    dtype (K killed, S survived, + must-pass passed, ! must-pass failed, ? did not run)."""
    from keraspec.conformance.catalogue import check_sort_key

    checks = sorted({c.expectation.check for c in all_cells}, key=check_sort_key)
    mutants = list(dict.fromkeys(c.mutant for c in all_cells))
    combos = sorted({(c.oracle, c.dtype) for c in all_cells if c.oracle != "-"})
    width = max(len(m.id) for m in mutants)
    cols = {ch: max(len(ch), len(combos)) for ch in checks}
    lines = ["marks per cell: " + ", ".join(f"{o}/{d}" for o, d in combos) + " (errors: one mark, any rule); "
             "K killed, S SURVIVED, + must-pass passed, ! must-pass FAILED, x must-pass xfailed by a known mismatch, ? not run, . not applicable",
             f"{'mutant'.ljust(width)}  {'family'.ljust(17)}  " + "  ".join(ch.ljust(cols[ch]) for ch in checks)]
    for m in mutants:
        row = []
        for ch in checks:
            mine = [c for c in all_cells if c.mutant is m and c.expectation.check == ch]
            if not mine:
                row.append("".ljust(cols[ch]))
            elif ch == "errors":
                row.append("".join(MARKS.get(c.verdict, "?") for c in mine).ljust(cols[ch]))
            else:
                marks = []
                for combo in combos:
                    hit = [c for c in mine if (c.oracle, c.dtype) == combo]
                    marks.append(MARKS.get(hit[0].verdict, "?") if hit else ".")
                row.append("".join(marks).ljust(cols[ch]))
        lines.append(f"{m.id.ljust(width)}  {m.family.ljust(17)}  " + "  ".join(row))
    return "\n".join(lines)


def summary(all_cells: Sequence[Cell]) -> tuple[str, bool]:
    """Kill rates and the list of everything that is wrong; and whether all is as expected."""
    must_fail = [c for c in all_cells if c.role == "fail"]
    killed = [c for c in must_fail if c.verdict == "killed"]
    decided = [c for c in must_fail if c.verdict in ("killed", "SURVIVED")]
    mutants = list(dict.fromkeys(c.mutant for c in all_cells))
    killed_mutants = [m for m in mutants if any(c.mutant is m and c.verdict == "killed" for c in must_fail)]
    lines = [f"mutants killed: {len(killed_mutants)}/{len(mutants)} ({100 * len(killed_mutants) / max(len(mutants), 1):.0f}%); "
             f"must-fail checks that failed: {len(killed)}/{len(decided)} "
             f"({100 * len(killed) / max(len(decided), 1):.0f}%)"]
    bad = [c for c in all_cells if c.verdict not in ("killed", "ok", "known mismatch")]
    for c in bad:
        where = "" if c.oracle == "-" else f" [{c.oracle}, {c.dtype}]"
        lines.append(f"  {c.verdict}: {c.mutant.id} {c.expectation.check}{where} -- {c.mutant.breaks}")
    for c in (c for c in all_cells if c.verdict == "known mismatch"):
        lines.append(f"  (must-pass {c.expectation.check} [{c.oracle}, {c.dtype}] of {c.mutant.id} is xfailed by a "
                     "known mismatch, as on the correct implementation: no verdict)")
    only64 = sorted({c.mutant.id for c in must_fail if c.dtype == "float64" and c.verdict == "killed"}
                    & {c.mutant.id for c in must_fail if c.dtype == "float32" and c.verdict == "SURVIVED"})
    if only64:
        lines.append(f"  caught in float64 but not in float32: {', '.join(only64)}")
    return "\n".join(lines), not bad


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="dev", choices=("fast", "dev"), help="which mutants (default: dev, all of them)")
    parser.add_argument("--only", default=None, help="comma-separated mutant ids (instead of --set)")
    parser.add_argument("--profile", default="dev", help="hypothesis profile (default: dev)")
    parser.add_argument("--dtype", action="append", default=None,
                        help="dtypes to run every mutant in (default: float32 and float64; the mutant's own with --set fast)")
    parser.add_argument("--jobs", type=int, default=0, help="pytest-xdist workers per round (default: none)")
    parser.add_argument("--results", default=None, help="keep the JSON-lines results in this folder")
    args = parser.parse_args(argv)
    everything = all_mutants()
    if args.only:
        wanted = args.only.split(",")
        mutants = [m for m in everything if m.id in wanted]
        missing = sorted(set(wanted) - {m.id for m in mutants})
        if missing:
            parser.error(f"unknown mutant(s): {', '.join(missing)}")
    else:
        mutants = [m for m in everything if args.set in m.sets]
    dtypes = args.dtype or (None if args.set == "fast" and not args.only else ["float32", "float64"])
    results = Path(args.results) if args.results else None
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
        for stale in results.glob("mutants-round*.jsonl"):
            stale.unlink()
    start = time.monotonic()
    all_cells, problems = run(mutants, args.profile, dtypes, args.jobs, results, log=sys.stdout)
    print(table(all_cells))
    text, ok = summary(all_cells)
    print(text)
    for p in problems:
        print(p)
    print(f"{len(mutants)} mutants, profile {args.profile}, {time.monotonic() - start:.0f} s")
    return 0 if ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
