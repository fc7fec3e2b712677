"""The ``keraspec report`` subcommand, plugged into the ``keraspec`` command line (keraspec.spec.cli)
through the ``keraspec.commands`` entry-point group (pyproject.toml).

    keraspec report RESULTS... [--out DIR] [--previous OLD] [--expect-shards N]

``python -m keraspec.reports`` runs the same command on its own (:func:`keraspec.reports.build.main`).
"""

from __future__ import annotations

import argparse
from typing import Any

from .build import configure_parser, run


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="build the HTML report from results files",
                              description="Build the HTML conformance report.")
    configure_parser(p)
    p.set_defaults(func=run)
    return p
