"""keraspec.reports -- HTML conformance reports from JSON-lines results.

``build_report(results_paths, out_dir, previous=None, expected_shards=None)`` writes a static,
self-contained site and returns its ``index.html``; ``main(argv)`` is the ``keraspec report`` CLI.
"""

from .build import NoResultsError, build_report, configure_parser, main, run

__all__ = ["NoResultsError", "build_report", "configure_parser", "main", "run"]
