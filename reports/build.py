"""Build a static, self-contained HTML conformance report from JSON-lines results.

Usage: ``keraspec report RESULTS... [--out reports/html] [--previous OLD] [--expect-shards N]``
(or ``python -m keraspec.reports ...``).

The site works without JavaScript: every filter value has a pre-rendered page
(``filter-<dim>-<value>.html``) reached by plain links; the inline script only adds combined,
in-place filtering on ``index.html``.  Everything from the results is escaped by Jinja2's
autoescape; the only strings marked safe are our own CSS/JS and ``tojson`` output.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import hashlib
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from . import model
from .model import (
    FILTER_DIMS,
    KNOWN_MISMATCH_STATUSES,
    PROBLEM_STATUSES,
    Case,
    ResultSet,
    UniqueNames,
)

TEMPLATES = Path(__file__).parent / "templates"

#: Statuses not repeated in the case lists of filter pages.
QUIET_STATUSES = frozenset({"passed", "skipped"})

DIM_TITLES = {
    "family": "Family",
    "status": "Status",
    "oracle": "Oracle",
    "impl": "Implementation",
    "device": "Device",
    "dtype": "Dtype",
}


class NoResultsError(ValueError):
    """None of the given paths held a readable results file with any record in it."""


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # unconditional: every template renders untrusted results data
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["err"] = model.fmt_err
    env.filters["tol"] = model.fmt_tol
    env.filters["pct"] = _fmt_pct
    env.filters["css"] = model.css_token
    env.filters["short"] = model.short_label
    env.filters["duration"] = _fmt_duration
    env.globals["DIM_TITLES"] = DIM_TITLES
    env.globals["STATUS_ORDER"] = model.STATUS_ORDER
    env.globals["KNOWN_STATUSES"] = frozenset(model.STATUS_ORDER)
    return env


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _fmt_duration(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3g} s"


def _script(name: str) -> tuple[Markup, str]:
    """Our own inline script and its CSP hash (so no other inline script could ever run)."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), f"'sha256-{digest}'"


def _js_number(value: float | None) -> float | str | None:
    # JSON has no NaN/Infinity; the script turns these strings back with Number().
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _client_data(rs: ResultSet, layers: list[str], checks: list[str]) -> dict[str, Any]:
    """Compact per-case data for in-place filtering: values are indices into the ``dims`` lists."""
    dims: dict[str, list[str]] = {"layer": layers, "check": checks}
    for dim in FILTER_DIMS:
        dims[dim] = sorted({c.get(dim) for c in rs.cases})
    index = {dim: {v: i for i, v in enumerate(values)} for dim, values in dims.items()}
    order = ("layer", "check") + FILTER_DIMS
    return {
        "fields": list(order) + ["abs", "rel"],
        "dims": dims,
        "rank": [model.rank(s) for s in dims["status"]],
        "short": [model.short_label(s) for s in dims["status"]],
        "known": [s in model.STATUS_ORDER for s in dims["status"]],
        "cases": [
            [index[d][c.get(d)] for d in order] + [_js_number(c.max_abs_err), _js_number(c.max_rel_err)]
            for c in rs.cases
        ],
    }


class _Site:
    """Shared state for rendering all pages of one report."""

    def __init__(self, rs: ResultSet, out_dir: Path, diff: model.Diff | None):
        self.rs = rs
        self.out_dir = out_dir
        self.diff = diff
        self.env = _env()
        layers = sorted({c.layer for c in rs.cases})
        self.layers = layers
        self.layer_pages = UniqueNames(layers)
        self.layer_index = {layer: i for i, layer in enumerate(layers)}
        self.families = model.layer_families(rs.cases)
        self.checks = sorted({c.check for c in rs.cases}, key=model.check_sort_key)
        self.check_ids = UniqueNames(self.checks)
        self.filter_pages: dict[str, UniqueNames] = {
            dim: UniqueNames(c.get(dim) for c in rs.cases) for dim in FILTER_DIMS
        }
        self.generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.written: list[Path] = []
        self._filter_options: list[tuple[str, list[tuple[str, int, str]]]] | None = None
        self.cases_by_layer: dict[str, list[Case]] = {}
        for c in rs.cases:
            self.cases_by_layer.setdefault(c.layer, []).append(c)

    # -- helpers exposed to templates ------------------------------------------------------
    def layer_href(self, layer: str, base: str = "") -> str:
        return f"{base}layers/{self.layer_pages[layer]}.html"

    def check_anchor(self, check: str) -> str:
        return f"check-{self.check_ids[check]}"

    def filter_href(self, dim: str, value: str, base: str = "") -> str:
        return f"{base}filter-{dim}-{self.filter_pages[dim][value]}.html"

    def filter_options(self) -> list[tuple[str, list[tuple[str, int, str]]]]:
        """Per dimension: (value, case count, static page) -- for the select boxes and link bars."""
        if self._filter_options is not None:
            return self._filter_options
        out = []
        for dim in FILTER_DIMS:
            counts = Counter(c.get(dim) for c in self.rs.cases)
            values = model.status_order(counts) if dim == "status" else sorted(counts)
            out.append((dim, [(v, counts[v], self.filter_href(dim, v)) for v in values]))
        self._filter_options = out
        return out

    def _common(self, base: str) -> dict[str, Any]:
        return {
            "site": self,
            "base": base,
            "generated": self.generated,
            "problems": self.rs.problems,
            "filter_options": self.filter_options(),
        }

    def _write(self, rel: str, template: str, scripts: Sequence[str] = (), **ctx: Any) -> Path:
        inline = [_script(name) for name in scripts]
        text = self.env.get_template(template).render(
            scripts=[s for s, _ in inline],
            script_hashes=" ".join(h for _, h in inline),
            **ctx,
        )
        path = self.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.written.append(path)
        return path

    # -- pages ---------------------------------------------------------------------------
    def index(self) -> Path:
        rs = self.rs
        matrix = model.build_matrix(rs.cases, self.layer_pages, self.layer_index, self.families, self.checks)
        problem_cases = sorted(
            (c for c in rs.cases if c.status in PROBLEM_STATUSES or not model.is_known(c.status)),
            key=lambda c: (-model.rank(c.status), c.layer, model.check_sort_key(c.check), c.idx),
        )
        known = sorted(
            (c for c in rs.cases if c.status in KNOWN_MISMATCH_STATUSES),
            key=lambda c: (c.xfail_entry or "", c.layer, model.check_sort_key(c.check), c.idx),
        )
        entries: dict[str, Counter[str]] = {}
        for c in known:
            entries.setdefault(c.xfail_entry or "(no entry id)", Counter())[c.status] += 1
        return self._write(
            "index.html",
            "index.html",
            scripts=["filter.js"],
            **self._common(""),
            totals=model.aggregate(rs.cases),
            summaries=[(dim, model.group_by(rs.cases, dim)) for dim in ("family", "oracle", "impl", "device", "dtype")],
            matrix=matrix,
            problem_cases=problem_cases,
            known=known,
            known_entries=sorted(entries.items()),
            diff=self.diff,
            runs=model.run_infos(rs.files),
            files=rs.files,
            notes=rs.notes,
            data=_client_data(rs, self.layers, self.checks),
        )

    def filter_page(self, dim: str, value: str) -> Path:
        subset = [c for c in self.rs.cases if c.get(dim) == value]
        matrix = model.build_matrix(subset, self.layer_pages, self.layer_index, self.families)
        rel = self.filter_href(dim, value)
        return self._write(
            rel,
            "filter.html",
            **self._common(""),
            dim=dim,
            value=value,
            matrix=matrix,
            totals=model.aggregate(subset),
            # Passed/skipped cases are counted in the matrix and listed on the layer pages; listing
            # them here too would make each page as large as the whole run.
            cases=sorted(
                (c for c in subset if c.status not in QUIET_STATUSES),
                key=lambda c: (-model.rank(c.status), c.layer, model.check_sort_key(c.check), c.idx),
            ),
            quiet=sum(1 for c in subset if c.status in QUIET_STATUSES),
        )

    def layer_page(self, layer: str) -> Path:
        cases = sorted(
            self.cases_by_layer[layer],
            key=lambda c: (model.check_sort_key(c.check), c.oracle, c.impl, c.device, c.dtype, c.idx),
        )
        by_check: list[tuple[str, list[Case]]] = []
        for c in cases:
            if not by_check or by_check[-1][0] != c.check:
                by_check.append((c.check, []))
            by_check[-1][1].append(c)
        detailed = [c for c in cases if c.status != "passed" and c.status != "skipped"]
        return self._write(
            f"layers/{self.layer_pages[layer]}.html",
            "layer.html",
            scripts=["copy.js"],
            **self._common("../"),
            layer=layer,
            family=self.families[layer],
            totals=model.aggregate(cases),
            by_check=by_check,
            detailed=detailed,
            detailed_ids={c.idx for c in detailed},
            sources=sorted({c.source for c in cases}),
            quality_notes=_quality_notes(cases),
            choice_coverage=_choice_coverage(cases),
        )


def _choice_coverage(cases: list[Case]) -> list[dict[str, Any]]:
    """Per choice parameter of a layer: its values, and each value some case did not run, with where
    (check, oracle, dtype) and why (an oracle limit of the spec, or not drawn)."""
    params: dict[str, dict[str, Any]] = {}
    for c in cases:
        cover = c.extra.get("coverage")
        if not isinstance(cover, dict):
            continue
        for name, got in cover.items():
            if not isinstance(got, dict):
                continue
            entry = params.setdefault(name, {"name": name, "values": [], "missing": {}, "ineffective": []})
            if got.get("effective") is False:
                entry["ineffective"].append(f"{c.check} · {c.oracle} · {c.dtype}")
            for value in list(got.get("covered", [])) + list(got.get("missing", [])):
                if repr(value) not in entry["values"]:
                    entry["values"].append(repr(value))
            why = got.get("why_missing") or {}
            for value in got.get("missing", []):
                places = entry["missing"].setdefault(repr(value), {"where": [], "why": set()})
                places["where"].append(f"{c.check} · {c.oracle} · {c.dtype}")
                places["why"].add(str(why.get(repr(value), "not drawn")))
    out = []
    for entry in params.values():
        entry["missing"] = [(value, places["where"], sorted(places["why"])) for value, places in entry["missing"].items()]
        out.append(entry)
    return out


def _quality_notes(cases: list[Case]) -> list[tuple[Case, str]]:
    """Quality notes the checks recorded (``extra.notes``): things worth fixing that are not
    conformance failures, e.g. an error message that does not name the layer and the shape."""
    return [(c, note) for c in cases for note in (c.extra.get("notes") or []) if isinstance(note, str)]


def _clean_stale(out_dir: Path) -> None:
    # Only files this generator could have written; out_dir may hold other things.
    for pattern in ("layers/*.html", "filter-*.html"):
        for path in out_dir.glob(pattern):
            if path.is_file():
                path.unlink()


def build_report(
    results_paths: list[Path],
    out_dir: Path,
    previous: Path | None = None,
    expected_shards: int | None = None,
) -> Path:
    """Merge results files (or directories of ``*.jsonl``) into a static site; return its index.html.

    Raises :class:`NoResultsError` when nothing readable was found (in ``results_paths``, or in
    ``previous`` when that is given) and ``ValueError`` for a non-positive ``expected_shards``.
    """
    return _build(results_paths, out_dir, previous, expected_shards)[0]


def _build(
    results_paths: list[Path],
    out_dir: Path,
    previous: Path | None,
    expected_shards: int | None,
) -> tuple[Path, int]:
    """``build_report``, also returning how many problems the banner lists (for the CLI's stderr)."""
    if expected_shards is not None and expected_shards < 1:
        raise ValueError(f"expected_shards must be >= 1, got {expected_shards}")
    rs = model.load(results_paths, expected_shards)
    if not any(rf.runs or rf.n_cases for rf in rs.files):
        raise NoResultsError(
            "no readable results in " + ", ".join(str(p) for p in results_paths) + _problem_tail(rs)
        )
    diff = None
    if previous is not None:
        before = model.load([previous])
        if not any(rf.runs or rf.n_cases for rf in before.files):
            raise NoResultsError(f"no readable previous results in {previous}" + _problem_tail(before))
        diff = model.diff(rs, before)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale(out_dir)
    site = _Site(rs, out_dir, diff)
    for layer in site.layers:
        site.layer_page(layer)
    for dim, options in site.filter_options():
        for value, _, _ in options:
            site.filter_page(dim, value)
    return site.index(), len(rs.problems)


def _problem_tail(rs: ResultSet) -> str:
    return (": " + "; ".join(rs.problems)) if rs.problems else ""


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``report`` arguments to a parser (so a top-level CLI can mount it as a subcommand)."""
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULTS",
                        help="results files (*.jsonl) or directories holding them")
    parser.add_argument("--out", type=Path, default=Path("reports/html"),
                        help="output directory (default: reports/html)")
    parser.add_argument("--previous", type=Path, default=None, metavar="OLD_RESULTS_OR_DIR",
                        help="earlier results file or directory to diff against")
    parser.add_argument("--expect-shards", type=int, default=None, metavar="N",
                        help="number of shards the run was split into; missing ones are flagged")
    return parser


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``report`` command; 0 even when cases failed, 2 on unusable input."""
    if args.expect_shards is not None and args.expect_shards < 1:
        print(f"keraspec report: --expect-shards must be >= 1, got {args.expect_shards}", file=sys.stderr)
        return 2
    if args.previous is not None and not args.previous.exists():
        print(f"keraspec report: --previous {args.previous}: no such file or directory", file=sys.stderr)
        return 2
    try:
        index, problems = _build(list(args.results), args.out, args.previous, args.expect_shards)
    except NoResultsError as exc:
        print(f"keraspec report: {exc}", file=sys.stderr)
        return 2
    print(index)
    if problems:
        # The report is the product, but a CI log should still say that the input was not clean.
        print(f"keraspec report: {problems} problem(s) with the results files; see {index}#problems", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = configure_parser(
        argparse.ArgumentParser(prog="keraspec report", description="Build the HTML conformance report.")
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)


__all__ = ["build_report", "main", "configure_parser", "run", "NoResultsError"]
