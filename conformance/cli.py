"""The ``keraspec record`` and ``keraspec replay`` subcommands.

    keraspec record [--out DIR] [--layers L] [--examples N]   record oracle runs on drawn cases into a corpus
    keraspec replay [--corpus DIR] [--device cuda] [PYTEST ARGS...]
                                                             check the implementation against a corpus, no TensorFlow

They plug into the ``keraspec`` command line (keraspec.spec.cli) through the ``keraspec.commands``
entry-point group (pyproject.toml); each ``register_*`` adds its subparser.  Nothing heavy is
imported until a command runs, so ``--help`` stays fast and needs no TensorFlow.

Bad input -- an unknown layer, oracle, dtype or device, a corpus that is missing, truncated or of
another format, a folder that cannot be written -- is refused before anything runs, as one line
naming it and exit status 2 (``BadInput``, printed by keraspec.spec.cli.main).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from keraspec.spec import DTYPE_POLICIES, ORACLES, UnknownLayerError, lookup
from keraspec.spec.cli import EXIT_BAD_INPUT, BadInput, one_line

from .results import DEVICES, PROGRESS_CHOICES, folder_problem

#: The conformance tests ``replay`` runs.
TESTS = Path(__file__).resolve().parent / "tests"
#: pytest's exit status for a usage error (pytest.ExitCode.USAGE_ERROR), which replay reports as
#: keraspec's own bad-input status; a literal so that --help need not import pytest.
_PYTEST_USAGE_ERROR = 4


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``minimum``, refused in one line otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is not >= {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def register_record(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``keraspec record`` to the ``keraspec`` command line."""
    p = subparsers.add_parser(
        "record", help="record the oracle's results on drawn cases into a corpus",
        epilog="Exit status: 0 when recorded; 2 for bad input (an unknown name, a folder that cannot be written, "
               "an existing corpus that --layers cannot add to, no requested oracle installed), one line naming it.")
    p.add_argument("--out", help="corpus folder (default: the committed corpus in keraspec/conformance/corpus)")
    p.add_argument("--layers", help="comma-separated layer names (default: all); re-records just those, keeping the others")
    p.add_argument("--oracles", default=",".join(ORACLES), help=f"comma-separated, of {', '.join(ORACLES)}")
    p.add_argument("--dtypes", default=",".join(DTYPE_POLICIES), help=f"comma-separated, of {', '.join(DTYPE_POLICIES)}")
    p.add_argument("--examples", type=_positive_int, default=2, help="cases per layer, oracle and dtype (>= 1)")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    p.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                   help="groups recorded, of the total, and the time left, on stderr (auto: on unless CI is set)")
    p.set_defaults(func=run_record)
    return p


def register_check_model(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``keraspec check-model`` (see keraspec.conformance.model_check) to the command line."""
    from .model_check import add_arguments  # light: torch and TensorFlow load when the command runs

    return add_arguments(subparsers)


def register_replay(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``keraspec replay`` to the ``keraspec`` command line."""
    p = subparsers.add_parser(
        "replay", help="check the implementation against a recorded corpus (no TensorFlow needed)",
        epilog="Any other arguments are passed on to pytest (e.g. --layers Dense, -k forward, --results DIR, "
               "--progress off).  Exit status: pytest's (0 passed, 1 failures); 2 for bad input (a missing or "
               "damaged corpus, an unavailable device, an unknown option value), one line naming it.")
    p.add_argument("--corpus", default="default", help="corpus folder, or 'default' for the committed one")
    p.add_argument("--device", action="append", choices=DEVICES, help="cpu and/or cuda (repeat for both)")
    p.set_defaults(func=run_replay, passes_through=True)
    return p


def _names(option: str, text: str, known: tuple[str, ...] | list[str]) -> list[str]:
    """The comma-separated names of ``option``, each one of ``known``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BadInput(f"{option} {text!r} names nothing; give comma-separated names, or leave the option out for all")
    for name in names:
        if name not in known:
            raise BadInput(f"{option} {name!r} is not one of {', '.join(known)}")
    return names


def _layer_names(text: str) -> list[str]:
    """The layers ``--layers`` names, by their spec names (an alias names its layer)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise BadInput(f"--layers {text!r} names nothing; give comma-separated layer names, or leave the option out for all")
    try:
        return [lookup(name).name for name in names]
    except UnknownLayerError as exc:
        raise BadInput(f"--layers: {exc}") from None


def run_record(args: argparse.Namespace) -> int:
    """``keraspec record``: check every argument, then record (see keraspec.conformance.corpus.record)."""
    layers = _layer_names(args.layers) if args.layers is not None else None
    oracles = _names("--oracles", args.oracles, ORACLES)
    dtypes = _names("--dtypes", args.dtypes, DTYPE_POLICIES)
    if args.out is not None and (problem := folder_problem(args.out)) is not None:
        raise BadInput(f"--out {args.out}: {problem}")

    from . import oracle as oracle_module  # TensorFlow: only once the arguments are known good
    from .corpus import DEFAULT_CORPUS, CorpusError, record
    from .plugin import Progress, ProgressDisplay, progress_mode

    out = Path(args.out) if args.out is not None else DEFAULT_CORPUS
    if args.out is None and (problem := folder_problem(out)) is not None:
        raise BadInput(f"the committed corpus folder {problem}; give --out DIR")
    installed = [o for o in oracles if oracle_module.available(o)]
    if not installed:
        raise BadInput(f"--oracles {','.join(oracles)}: not installed; install the oracle extra "
                       "(pip install -e '.[oracle]', or make install)")
    display = ProgressDisplay(Progress(noun="groups"), progress_mode(args.progress, sys.stderr))
    try:
        index = record(out, layers=layers, oracles=installed, dtypes=dtypes, examples=args.examples, seed=args.seed,
                       progress=display)
    except CorpusError as exc:
        raise BadInput(one_line(str(exc))) from None
    print(f"recorded {len(index['cases'])} cases in {index['record_seconds']} s into {out}")
    return 0


def _check_device(devices: list[str]) -> None:
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            raise BadInput("--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False, "
                           f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); use --device cpu")


def run_replay(args: argparse.Namespace) -> int:
    """``keraspec replay``: check the corpus, the devices and the plugin's options, then run the
    conformance tests against the corpus in pytest."""
    from .corpus import DEFAULT_CORPUS, Corpus, CorpusError
    from .plugin import OptionError, read_options

    extra = list(getattr(args, "extra", []))
    try:
        # The corpus and the options are checked here, before pytest starts, so bad input is one
        # line (pytest would check them too, as a usage error).
        read_options([*extra, *(f"--device={d}" for d in args.device or [])])
    except OptionError as exc:
        raise BadInput(one_line(str(exc))) from None
    _check_device(args.device or [])
    try:
        Corpus(DEFAULT_CORPUS if args.corpus == "default" else Path(args.corpus)).check_arrays()
    except CorpusError as exc:
        raise BadInput(f"--corpus {args.corpus}: {one_line(str(exc))}") from None

    import pytest

    argv = [str(TESTS), "--corpus", args.corpus, "-q", "-p", "no:cacheprovider"]
    if not any(a.startswith("--hypothesis-profile") for a in extra):
        argv.append("--hypothesis-profile=ci")
    for device in args.device or []:
        argv += ["--device", device]
    status = int(pytest.main(argv + extra))
    # pytest has printed its "ERROR: ..." line; the status is keraspec's for bad input.
    return EXIT_BAD_INPUT if status == _PYTEST_USAGE_ERROR else status
