"""Build a static, self-contained HTML conformance report from JSON-lines results.

Usage: ``keraspec report RESULTS... [--out reports/html] [--previous OLD] [--expect-shards N]``
(or ``python -m keraspec.reports ...``).

Implementation is the first axis: the index opens on a headline per implementation under test,
side by side, then the changes since ``--previous``, summary tables with a column group per
implementation and a matrix with a row per implementation of each layer; no conformance figure
is ever computed over several implementations.  Layer pages open on the cases that did not pass, grouped by check, and fold the
passing ones into a grid per implementation.

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
    QUIET_STATUSES,
    Case,
    ResultsInputError,
    ResultSet,
    UniqueNames,
)

TEMPLATES = Path(__file__).parent / "templates"

DIM_TITLES = {
    "family": "Family",
    "status": "Status",
    "oracle": "Oracle",
    "impl": "Implementation",
    "device": "Device",
    "dtype": "Dtype",
}


#: The axes the index summarises in tables, a column group per implementation.
SUMMARY_DIMS = ("family", "oracle", "device", "dtype")

#: The command's name in its own messages.
PROG = "keraspec report"


class NoResultsError(ResultsInputError):
    """None of the given paths held a readable results file with any record in it."""


class ReportOutputError(OSError):
    """The report cannot be written where ``--out`` points."""


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
    env.filters["rate"] = model.fmt_rate
    env.filters["pct"] = _fmt_pct
    env.filters["css"] = model.css_token
    env.filters["short"] = model.short_label
    env.filters["duration"] = _fmt_duration
    env.globals["DIM_TITLES"] = DIM_TITLES
    env.globals["STATUS_ORDER"] = model.STATUS_ORDER
    env.globals["KNOWN_STATUSES"] = frozenset(model.STATUS_ORDER)
    return env


def _fmt_pct(value: float | None) -> str:
    # Rounded down, so one failure in 5000 cases does not read as 100.0%; the epsilon only undoes
    # binary fractions such as 0.57 * 1000 = 569.99999.
    return "—" if value is None else f"{math.floor(1000 * value + 1e-9) / 10:.1f}%"


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


def _client_data(site: "_Site") -> dict[str, Any]:
    """Compact per-case data for in-place filtering: values are indices into the ``dims`` lists."""
    dims: dict[str, list[str]] = {"layer": site.layers, "check": site.checks}
    for dim in FILTER_DIMS:
        dims[dim] = site.values[dim]
    index = {dim: {v: i for i, v in enumerate(values)} for dim, values in dims.items()}
    order = ("layer", "check") + FILTER_DIMS
    return {
        "fields": list(order) + ["abs", "rel"],
        "dims": dims,
        # What the reader sees for each value (the raw values above stay in the URL).
        "labels": {dim: [site.label(dim, v) for v in dims[dim]] for dim in FILTER_DIMS},
        "rank": [model.rank(s) for s in dims["status"]],
        "short": [model.short_label(s) for s in dims["status"]],
        "known": [s in model.STATUS_ORDER for s in dims["status"]],
        "cases": [
            [index[d][c.get(d)] for d in order] + [_js_number(c.max_abs_err), _js_number(c.max_rel_err)]
            for c in site.rs.cases
        ],
    }


def _problems_first(cases: list[Case]) -> list[Case]:
    return sorted(cases, key=lambda c: (-model.rank(c.status), c.layer, model.check_sort_key(c.check), c.idx))


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
        #: Each filter axis's values in display order (implementations: keraspec's own first).
        self.values: dict[str, list[str]] = {
            dim: model.value_order(dim, (c.get(dim) for c in rs.cases)) for dim in FILTER_DIMS
        }
        self.impls = self.values["impl"]
        self.impl_index = {impl: i for i, impl in enumerate(self.impls)}
        self.impl_ids = UniqueNames(self.impls)
        self.label = model.Labels(self.impls)
        self.filter_pages: dict[str, UniqueNames] = {dim: UniqueNames(self.values[dim]) for dim in FILTER_DIMS}
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
        """The check's group in a layer page's list of cases that did not pass."""
        return f"check-{self.check_ids[check]}"

    def grid_row_id(self, impl: str, check: str) -> str:
        """The check's row in one implementation's grid of all cases on a layer page."""
        return f"grid-{self.impl_ids[impl]}--{self.check_ids[check]}"

    def grid_cell_id(self, case: Case) -> str:
        return (
            f"{self.grid_row_id(case.impl, case.check)}--{self.filter_pages['oracle'][case.oracle]}"
            f"--{self.filter_pages['dtype'][case.dtype]}"
        )

    def case_anchor(self, case: Case) -> str:
        """Where a case is shown on its layer page: its detail block, or its cell of the grid."""
        return f"case-{case.idx}" if case.is_detailed else self.grid_cell_id(case)

    def case_href(self, case: Case, base: str = "") -> str:
        return f"{self.layer_href(case.layer, base)}#{self.case_anchor(case)}"

    def matrix_cell_href(self, layer: str, impl: str, check: str, agg: model.Agg | None, base: str = "") -> str:
        """A matrix cell leads to the cases that did not pass, or to the grid where all passed."""
        anchor = self.check_anchor(check) if agg is not None and agg.needs_detail else self.grid_row_id(impl, check)
        return f"{self.layer_href(layer, base)}#{anchor}"

    def matrix_row_id(self, layer: str, impl: str) -> str:
        return f"row-{self.layer_pages[layer]}--{self.impl_ids[impl]}"

    def filter_href(self, dim: str, value: str, base: str = "") -> str:
        return f"{base}filter-{dim}-{self.filter_pages[dim][value]}.html"

    def filter_options(self) -> list[tuple[str, list[tuple[str, int, str]]]]:
        """Per dimension: (value, case count, static page) -- for the select boxes and link bars."""
        if self._filter_options is not None:
            return self._filter_options
        out = []
        for dim in FILTER_DIMS:
            counts = Counter(c.get(dim) for c in self.rs.cases)
            out.append((dim, [(v, counts[v], self.filter_href(dim, v)) for v in self.values[dim]]))
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

    def _impl_totals(self, cases: list[Case]) -> list[tuple[str, model.Agg]]:
        totals: dict[str, model.Agg] = {}
        for c in cases:
            totals.setdefault(c.impl, model.Agg()).add(c)
        return [(impl, totals[impl]) for impl in self.impls if impl in totals]

    # -- pages ---------------------------------------------------------------------------
    def index(self) -> Path:
        rs = self.rs
        matrix = model.build_matrix(
            rs.cases, self.layer_pages, self.layer_index, self.families, self.impl_index, self.checks
        )
        known = sorted(
            (c for c in rs.cases if c.status in KNOWN_MISMATCH_STATUSES),
            key=lambda c: (c.xfail_entry or "", c.layer, model.check_sort_key(c.check), self.impl_index[c.impl], c.idx),
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
            impl_totals=self._impl_totals(rs.cases),
            summaries=[(dim, model.group_by_impl(rs.cases, dim, self.impls)) for dim in SUMMARY_DIMS],
            matrix=matrix,
            problem_cases=_problems_first([c for c in rs.cases if c.is_problem]),
            known=known,
            known_entries=sorted(entries.items()),
            diff=self.diff,
            false_alarms=model.false_alarms(rs.cases),
            ops_coverage=_ops_coverage(rs.cases),
            runs=model.run_infos(rs.files),
            files=rs.files,
            notes=rs.notes,
            data=_client_data(self),
        )

    def filter_page(self, dim: str, value: str) -> Path:
        subset = [c for c in self.rs.cases if c.get(dim) == value]
        matrix = model.build_matrix(subset, self.layer_pages, self.layer_index, self.families, self.impl_index)
        rel = self.filter_href(dim, value)
        return self._write(
            rel,
            "filter.html",
            **self._common(""),
            dim=dim,
            value=value,
            shown=self.label(dim, value),
            n_cases=len(subset),
            matrix=matrix,
            impl_totals=self._impl_totals(subset),
            # Passed/skipped cases are counted in the matrix and shown in the layer pages' grids;
            # listing them here too would make each page as large as the whole run.
            cases=_problems_first([c for c in subset if c.status not in QUIET_STATUSES]),
            quiet=sum(1 for c in subset if c.status in QUIET_STATUSES),
        )

    def layer_page(self, layer: str) -> Path:
        cases = sorted(
            self.cases_by_layer[layer],
            key=lambda c: (model.check_sort_key(c.check), self.impl_index[c.impl], c.oracle, c.device, c.dtype, c.idx),
        )
        # Cases that did not pass, a group per check; the group with the worst case first, so the
        # page opens on the failures, and known mismatches follow them.
        groups: dict[str, list[Case]] = {}
        for c in cases:
            if c.is_detailed:
                groups.setdefault(c.check, []).append(c)
        attention = []
        for check, group in groups.items():
            group.sort(key=lambda c: -model.rank(c.status))  # stable: keeps impl, oracle, dtype order
            attention.append((check, model.aggregate(group), group))
        attention.sort(key=lambda g: (-model.rank(g[2][0].status), model.check_sort_key(g[0])))
        rates_by_check, rates_by_row = _false_alarm_rates(cases)
        return self._write(
            f"layers/{self.layer_pages[layer]}.html",
            "layer.html",
            scripts=["copy.js"],
            **self._common("../"),
            layer=layer,
            family=self.families[layer],
            totals=model.aggregate(cases),
            impl_totals=self._impl_totals(cases),
            attention=attention,
            n_attention=sum(len(group) for _, _, group in attention),
            grids=model.case_grids(cases, self.impls),
            false_alarm_by_check=rates_by_check,
            false_alarm_by_row=rates_by_row,
            sources=sorted({c.source for c in cases}),
            quality_notes=_quality_notes(cases),
            choice_coverage=_choice_coverage(cases),
        )


#: The family prefix of backend-function results (keraspec.conformance.ops writes ``ops/<group>``).
OPS_FAMILY_PREFIX = "ops/"


def _ops_coverage(cases: list[Case]) -> list[dict[str, Any]]:
    """Per group of the backend-function spec: how many functions are implemented, planned or removed
    (from the spec: what the seeds list), and of those with results how many passed every case and
    how many have a problem.  Empty when no spec of functions is installed."""
    try:
        from keraspec.spec import ops as ops_spec
    except ImportError:
        return []
    by_function: dict[str, list[Case]] = {}
    for c in cases:
        if c.family.startswith(OPS_FAMILY_PREFIX):
            by_function.setdefault(c.layer, []).append(c)
    rows = []
    for group in ops_spec.groups():
        names = ops_spec.functions(group=group)
        statuses = Counter(ops_spec.lookup(n).status for n in names)
        tested = [n for n in names if n in by_function]
        problems = [n for n in tested if any(c.is_problem for c in by_function[n])]
        rows.append({"group": group, "functions": len(names), "statuses": dict(sorted(statuses.items())),
                     "tested": len(tested), "problems": problems,
                     "family": OPS_FAMILY_PREFIX + group})
    return rows


def _false_alarm_rates(cases: list[Case]) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """The highest recorded false-alarm rate of each statistical check among ``cases``: per check,
    and per (implementation, check) -- a row of an implementation's grid."""
    by_check: dict[str, float] = {}
    by_row: dict[tuple[str, str], float] = {}
    for c in cases:
        rate = c.false_alarm_rate
        if rate is None:
            continue
        by_check[c.check] = max(rate, by_check.get(c.check, rate))
        by_row[(c.impl, c.check)] = max(rate, by_row.get((c.impl, c.check), rate))
    return by_check, by_row


def _choice_coverage(cases: list[Case]) -> list[dict[str, Any]]:
    """Per choice parameter of a layer: its values, and each value some case did not run, with where
    (check, oracle, dtype) and why (an oracle limit of the spec, or not drawn).

    ``extra.coverage`` comes from a results file, so a hand-edited one of the wrong shape is skipped
    rather than allowed to stop the report.
    """
    params: dict[str, dict[str, Any]] = {}
    for c in cases:
        cover = c.extra.get("coverage")
        if not isinstance(cover, dict):
            continue
        where = f"{c.check} · {c.oracle} · {c.dtype}"
        for name, got in cover.items():
            if not isinstance(got, dict):
                continue
            covered, missing = _as_list(got.get("covered")), _as_list(got.get("missing"))
            why = got.get("why_missing")
            why = why if isinstance(why, dict) else {}
            entry = params.setdefault(str(name), {"name": str(name), "values": [], "missing": {}, "ineffective": []})
            if got.get("effective") is False:
                entry["ineffective"].append(where)
            for value in covered + missing:
                if repr(value) not in entry["values"]:
                    entry["values"].append(repr(value))
            for value in missing:
                places = entry["missing"].setdefault(repr(value), {"where": [], "why": set()})
                places["where"].append(where)
                places["why"].add(str(why.get(repr(value), "not drawn")))
    out = []
    for entry in params.values():
        entry["missing"] = [(value, places["where"], sorted(places["why"])) for value, places in entry["missing"].items()]
        out.append(entry)
    return out


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _quality_notes(cases: list[Case]) -> list[tuple[Case, str]]:
    """Quality notes the checks recorded (``extra.notes``): things worth fixing that are not
    conformance failures, e.g. an error message that does not name the layer and the shape."""
    return [(c, note) for c in cases for note in _as_list(c.extra.get("notes")) if isinstance(note, str)]


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

    Raises :class:`ResultsInputError` for a results path that cannot be used (missing, unreadable,
    not a results file), :class:`NoResultsError` (a subclass) when nothing readable was found (in
    ``results_paths``, or in ``previous`` when that is given), :class:`ReportOutputError` when
    ``out_dir`` cannot be written, and ``ValueError`` for a non-positive ``expected_shards``.
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
    out_dir = Path(out_dir)
    # Before the (possibly long) reading: a wrong --out should not wait for it.
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportOutputError(f"--out {out_dir}: an existing file, not a directory")
    rs = model.load(results_paths, expected_shards)
    if not any(rf.runs or rf.n_cases for rf in rs.files):
        raise NoResultsError(
            "no readable results records in " + ", ".join(str(p) for p in results_paths) + _problem_tail(rs)
        )
    diff = None
    if previous is not None:
        try:
            before = model.load([previous])
        except ResultsInputError as exc:
            raise ResultsInputError(f"--previous {exc}") from exc
        if not any(rf.runs or rf.n_cases for rf in before.files):
            raise NoResultsError(f"--previous {previous}: no readable results records" + _problem_tail(before))
        diff = model.diff(rs, before)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        _clean_stale(out_dir)
        site = _Site(rs, out_dir, diff)
        for layer in site.layers:
            site.layer_page(layer)
        for dim, options in site.filter_options():
            for value, _, _ in options:
                site.filter_page(dim, value)
        index = site.index()
    except OSError as exc:
        where = exc.filename or out_dir
        raise ReportOutputError(f"--out {out_dir}: cannot write {where} ({exc.strerror or exc})") from exc
    return index, len(rs.problems)


def _problem_tail(rs: ResultSet) -> str:
    """The first problem found (what a user most likely needs), and how many more the banner would list."""
    if not rs.problems:
        return ""
    more = len(rs.problems) - 1
    return f" ({rs.problems[0]}" + (f"; and {more} more problem{'s' if more != 1 else ''})" if more else ")")


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


def _fail(message: str) -> int:
    """Say what was wrong with the input on one line of stderr; the exit status for it is 2."""
    print(f"{PROG}: " + " ".join(str(message).split()), file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Execute a parsed ``report`` command; 0 even when cases failed, 2 on unusable input."""
    if args.expect_shards is not None and args.expect_shards < 1:
        return _fail(f"--expect-shards must be >= 1, got {args.expect_shards}")
    try:
        index, problems = _build(list(args.results), args.out, args.previous, args.expect_shards)
    except (ResultsInputError, ReportOutputError) as exc:
        return _fail(str(exc))
    print(index)
    if problems:
        # The report is the product, but a CI log should still say that the input was not clean.
        print(f"{PROG}: {problems} problem(s) with the results files; see {index}#problems", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = configure_parser(argparse.ArgumentParser(prog=PROG, description="Build the HTML conformance report."))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad arguments, 0 on --help
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)


__all__ = ["build_report", "main", "configure_parser", "run", "NoResultsError", "ReportOutputError", "ResultsInputError"]
