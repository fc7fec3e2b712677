"""keraspec.reports -- HTML conformance reports from JSON-lines results.

``build_report(results_paths, out_dir, previous=None, expected_shards=None)`` writes a static,
self-contained site and returns its ``index.html``; ``main(argv)`` is the ``keraspec report`` CLI.
"""

from .build import NoResultsError, ReportOutputError, build_report, configure_parser, main, run
from .model import ResultsInputError

__all__ = [
    "NoResultsError",
    "ReportOutputError",
    "ResultsInputError",
    "build_report",
    "configure_parser",
    "main",
    "run",
]
