"""The ``keraspec record`` and ``keraspec replay`` subcommands.

    keraspec record [--out DIR] [--layers L] [--examples N]   record oracle runs on drawn cases into a corpus
    keraspec replay [--corpus DIR] [--device cuda] [PYTEST ARGS...]
                                                             check the implementation against a corpus, no TensorFlow

They plug into the ``keraspec`` command line (keraspec.spec.cli) through the ``keraspec.commands``
entry-point group (pyproject.toml); each ``register_*`` adds its subparser.  Nothing heavy is
imported until a command runs, so ``--help`` stays fast and needs no TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from keraspec.spec import DTYPE_POLICIES, ORACLES

#: The conformance tests ``replay`` runs.
TESTS = Path(__file__).resolve().parent / "tests"


def register_record(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("record", help="record the oracle's results on drawn cases into a corpus")
    p.add_argument("--out", help="corpus folder (default: the committed corpus in keraspec/conformance/corpus)")
    p.add_argument("--layers", help="comma-separated layer names (default: all)")
    p.add_argument("--oracles", default=",".join(ORACLES))
    p.add_argument("--dtypes", default=",".join(DTYPE_POLICIES))
    p.add_argument("--examples", type=int, default=2, help="cases per layer, oracle and dtype")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_record)
    return p


def register_replay(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "replay", help="check the implementation against a recorded corpus (no TensorFlow needed)",
        epilog="Any other arguments are passed on to pytest (e.g. --layers Dense, -k forward, --results DIR).")
    p.add_argument("--corpus", default="default")
    p.add_argument("--device", action="append", help="cpu and/or cuda")
    p.set_defaults(func=run_replay, passes_through=True)
    return p


def run_record(args: argparse.Namespace) -> int:
    from .corpus import DEFAULT_CORPUS, record

    out = args.out or DEFAULT_CORPUS
    index = record(out, layers=args.layers.split(",") if args.layers else None, oracles=args.oracles.split(","),
                   dtypes=args.dtypes.split(","), examples=args.examples, seed=args.seed)
    print(f"recorded {len(index['cases'])} cases in {index['record_seconds']} s into {out}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    import pytest

    extra = list(getattr(args, "extra", []))
    argv = [str(TESTS), "--corpus", args.corpus, "-q", "-p", "no:cacheprovider"]
    if not any(a.startswith("--hypothesis-profile") for a in extra):
        argv.append("--hypothesis-profile=ci")
    for device in args.device or []:
        argv += ["--device", device]
    return int(pytest.main(argv + extra))
