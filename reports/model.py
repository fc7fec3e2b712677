"""Loading, merging and aggregating conformance results for the HTML report.

Everything here is plain data; ``build.py`` turns it into pages.  The rule throughout is that
nothing read from a results file is dropped without saying so: a malformed or incomplete record
is kept (with placeholder values) and a problem is recorded for the banner.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from keraspec.conformance.catalogue import check_sort_key
from keraspec.conformance.results import STATUSES, read_results
from keraspec.spec.model import DTYPE_POLICIES

#: Worst first.  Aggregation picks the highest rank; a status we do not know outranks everything,
#: because a record we cannot interpret must not hide behind a pass.
STATUS_ORDER = ("error", "failed", "xpassed", "not_implemented", "xfailed", "passed", "skipped")
_RANK = {s: len(STATUS_ORDER) - i for i, s in enumerate(STATUS_ORDER)}
UNKNOWN_RANK = len(STATUS_ORDER) + 1

#: Short labels for matrix cell counts, where space is tight.
SHORT_LABELS = {
    "error": "err",
    "failed": "fail",
    "xpassed": "xpass",
    "not_implemented": "n/i",
    "xfailed": "xfail",
    "passed": "pass",
    "skipped": "skip",
}

#: Statuses that need a person's attention and get a detail block on the layer page.
PROBLEM_STATUSES = frozenset({"failed", "error", "xpassed"})
BAD_STATUSES = frozenset({"failed", "error"})
#: Statuses of cases that never compared anything.
NOT_RUN_STATUSES = frozenset({"skipped", "not_implemented"})
#: Statuses that say nothing is wrong; they are folded into grids and counts rather than listed.
QUIET_STATUSES = frozenset({"passed", "skipped"})
KNOWN_MISMATCH_STATUSES = frozenset({"xfailed", "xpassed"})


#: The axes a case can be filtered on, in display order.
FILTER_DIMS = ("family", "status", "oracle", "impl", "device", "dtype")

#: Fields that identify a case across runs, for the diff.
DIFF_KEY = ("layer", "check", "oracle", "impl", "device", "dtype")

#: The value the harness records for an axis a check does not have (a spec-only check has no oracle,
#: a dtype-independent one no dtype).  Filters and URLs keep it; readers see PLACEHOLDER_LABELS.
NO_VALUE = "-"
PLACEHOLDER_LABELS = {
    "oracle": "none (spec-only check)",
    "dtype": "any (dtype-independent)",
}

#: Readable names of the implementations keraspec ships, in the order the report shows them.  Any
#: other implementation is shown by the last component of its module path (the full name whenever
#: that would be ambiguous); the full module name is always in the tooltip.
IMPL_LABELS = {
    "keraspec.impl.layers": "keraspec.impl",
    "keraspec.conformance.adapters.keras_torch": "Keras 3 (torch backend)",
}

#: Where statistical checks record the probability that they fail on a correct implementation.
FALSE_ALARM_KEY = "false_alarm_rate"

_STR_FIELDS = ("layer", "family", "check", "oracle", "impl", "device", "dtype", "status", "test_id")
_FLOAT_FIELDS = ("max_abs_err", "max_rel_err", "atol", "rtol")
MISSING = "(missing)"


def rank(status: str) -> int:
    return _RANK.get(status, UNKNOWN_RANK)


def is_known(status: str) -> bool:
    return status in _RANK


def status_order(statuses: Iterable[str]) -> list[str]:
    """Known statuses worst-first, then unknown ones alphabetically (they are the worst of all)."""
    seen = set(statuses)
    unknown = sorted(s for s in seen if s not in _RANK)
    return unknown + [s for s in STATUS_ORDER if s in seen]


def short_label(status: str) -> str:
    return SHORT_LABELS.get(status, status)


def css_token(value: str) -> str:
    """A value usable in a class name or an id fragment."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", value) or "_"


def worse_err(a: float | None, b: float | None) -> float | None:
    """The larger error; NaN counts as the worst, since it usually means the comparison blew up."""
    if a is None:
        return b
    if b is None:
        return a
    if math.isnan(a):
        return a
    if math.isnan(b):
        return b
    return max(a, b)


def fmt_err(value: float | None) -> str:
    """Errors in the same notation the inline script uses (JS toExponential drops exponent zeros)."""
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    mantissa, exp = f"{value:.2e}".split("e")
    return f"{mantissa}e{exp[0]}{int(exp[1:])}"


def fmt_rate(value: float | None) -> str:
    """A small probability or expected count, to two significant digits: 6e-7, 0.0012, 3.5."""
    if value is None:
        return ""
    text = f"{value:.2g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{exp[0].replace('+', '')}{int(exp[1:])}"
    return text


def fmt_tol(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


def safe_filename(name: str) -> str:
    """Only ``[A-Za-z0-9_.-]``; never empty, never a dot-name that a server or shell would hide."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]
    if not cleaned or cleaned.startswith("."):
        cleaned = "_" + cleaned
    return cleaned


class UniqueNames:
    """Maps arbitrary strings to distinct safe file names, stable for a given set of inputs.

    A hash suffix is added whenever sanitising changed the name or it would collide (also
    case-insensitively, for file systems that fold case), so two layers never share a page.
    """

    def __init__(self, values: Iterable[str]):
        self._names: dict[str, str] = {}
        used: set[str] = set()
        for value in sorted(set(values)):
            base = safe_filename(value)
            if base != value or base.lower() in used:
                base = f"{base}-{hashlib.sha1(value.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
            while base.lower() in used:  # astronomically unlikely, but never overwrite a page
                base += "_"
            used.add(base.lower())
            self._names[value] = base

    def __getitem__(self, value: str) -> str:
        return self._names[value]


def impl_order(impls: Iterable[str]) -> list[str]:
    """The implementations keraspec ships first (in IMPL_LABELS order), then the others alphabetically."""
    known = list(IMPL_LABELS)
    return sorted(set(impls), key=lambda i: (known.index(i), "") if i in IMPL_LABELS else (len(known), i))


def value_order(dim: str, values: Iterable[str]) -> list[str]:
    """Display order of one axis's values: dtypes as the spec lists its policies, implementations as
    :func:`impl_order`, the rest alphabetically; the placeholder for "no such axis" always last."""
    distinct = set(values)
    if dim == "impl":
        return impl_order(distinct)
    if dim == "status":
        return status_order(distinct)
    if dim == "dtype":
        policies = list(DTYPE_POLICIES)
        return sorted(distinct, key=lambda v: (v == NO_VALUE, policies.index(v) if v in policies else len(policies), v))
    return sorted(distinct, key=lambda v: (v == NO_VALUE, v))


class Labels:
    """What a reader sees for a raw axis value (the raw value stays in filters, URLs and file names).

    Built once over all values of a report, so that two implementations never share a label.
    """

    def __init__(self, impls: Iterable[str]):
        impls = impl_order(impls)
        wanted = {impl: IMPL_LABELS.get(impl) or impl.rsplit(".", 1)[-1] or impl for impl in impls}
        taken = Counter(wanted.values())
        self._impl = {impl: label if taken[label] == 1 else impl for impl, label in wanted.items()}

    def __call__(self, dim: str, value: str) -> str:
        if dim == "impl":
            return self._impl.get(value, value)
        if value == NO_VALUE and dim in PLACEHOLDER_LABELS:
            return PLACEHOLDER_LABELS[dim]
        return value

    def title(self, dim: str, value: str) -> str:
        """The raw value, for a tooltip, where the label differs from it; else empty."""
        return value if self(dim, value) != value else ""


@dataclass
class Case:
    idx: int  # position in ResultSet.cases; used for anchors and the inline data
    layer: str
    family: str
    check: str
    oracle: str
    impl: str
    device: str
    dtype: str
    status: str
    test_id: str
    message: str
    max_abs_err: float | None
    max_rel_err: float | None
    atol: float | None
    rtol: float | None
    example: Any
    seed: str | None
    repro: str
    duration_s: float | None
    xfail_entry: str | None
    extra: dict[str, Any]
    source: str  # results file it came from
    run_id: str

    def get(self, dim: str) -> str:
        return getattr(self, dim)

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in DIFF_KEY)

    @property
    def example_json(self) -> str:
        return pretty_json(self.example)

    @property
    def extra_json(self) -> str:
        return pretty_json(self.extra)

    @property
    def message_first_line(self) -> str:
        first = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return first if len(first) <= 160 else first[:157] + "..."

    @property
    def message_is_long(self) -> bool:
        return self.message.strip() != self.message_first_line

    @property
    def false_alarm_rate(self) -> float | None:
        """The probability this (statistical) check fails on a correct implementation, if recorded."""
        return probability(self.extra.get(FALSE_ALARM_KEY))

    @property
    def is_problem(self) -> bool:
        """Needs a person's attention: failed, errored, unexpectedly passed, or a status we do not know."""
        return self.status in PROBLEM_STATUSES or not is_known(self.status)

    @property
    def is_detailed(self) -> bool:
        """Gets a detail block on its layer page (everything but the passed and skipped cases)."""
        return self.status not in QUIET_STATUSES


def probability(value: Any) -> float | None:
    """``value`` as a probability in [0, 1], or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if 0.0 <= value <= 1.0 else None


#: Lines of JSON shown on a page (shrunk examples, extra data) are kept within this width where they can be.
JSON_LINE_WIDTH = 100


def pretty_json(value: Any, indent: int = 0, column: int | None = None) -> str:
    """JSON that is as compact as it can be and still readable: a list or object that fits on its
    line stays on it (an input shape is one line, not one line per number); one that does not is
    broken into one member per line.  A list of plain values is never broken: one long line (the
    page wraps it) reads better than a number per line.

    ``indent`` is the indentation of the line the value is on, ``column`` where the value starts.
    """
    flat = json.dumps(value, ensure_ascii=False, default=repr, allow_nan=True)
    start = indent if column is None else column
    fits = start + len(flat) <= JSON_LINE_WIDTH
    plain_list = isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value)
    if fits or plain_list or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        members = []
        for key, member in value.items():
            name = json.dumps(str(key), ensure_ascii=False)
            members.append(f"{pad}{name}: {pretty_json(member, indent + 2, indent + 2 + len(name) + 2)}")
        return "{\n" + ",\n".join(members) + "\n" + " " * indent + "}"
    members = [pad + pretty_json(member, indent + 2) for member in value]
    return "[\n" + ",\n".join(members) + "\n" + " " * indent + "]"


@dataclass
class ResultFile:
    path: str
    runs: list[dict[str, Any]]
    footer: dict[str, Any] | None
    n_cases: int
    problems: list[str]
    readable: bool = True

    @property
    def header(self) -> dict[str, Any]:
        return self.runs[0] if self.runs else {}

    @property
    def run_id(self) -> str:
        return _text(self.header.get("run_id")) or "(no run header)"

    @property
    def shard(self) -> str:
        return _text(self.header.get("shard"))

    @property
    def worker(self) -> str:
        return _text(self.header.get("worker"))

    @property
    def complete(self) -> bool:
        return self.footer is not None


@dataclass
class ResultSet:
    files: list[ResultFile]
    cases: list[Case]
    problems: list[str]
    notes: list[str] = field(default_factory=list)  # informational, not failures of the run


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value)
    return str(value)


def _as_float(value: Any) -> tuple[float | None, bool]:
    """(value, ok).  Strings such as "NaN" are accepted since JSON writers differ on them."""
    if value is None:
        return None, True
    if isinstance(value, bool):
        return None, False
    if isinstance(value, (int, float)):
        return float(value), True
    if isinstance(value, str):
        try:
            return float(value), True
        except ValueError:
            return None, False
    return None, False


class ResultsInputError(ValueError):
    """A path given as results cannot be used at all: missing, unreadable, or not a results file.

    Damage inside a results file (a line cut by a killed writer, a hand-edited record, a field of the
    wrong type) is not this: it goes to the report's problem banner, since a partially broken run
    should still be reported.
    """


#: How much of a file is looked at to tell a results file from something else.
_SNIFF_BYTES = 64 * 1024
RESULTS_SUFFIX = ".jsonl"
#: The ``kind`` values of results records (conformance/results.py).
RECORD_KINDS = ("run", "case", "end")


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, directories as their ``*.jsonl`` files.

    Raises :class:`ResultsInputError` for a path that does not exist, a directory that cannot be
    listed or holds no results files, and a file that cannot be read or is not a results file.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                entries = sorted(path.iterdir())
            except OSError as exc:
                raise ResultsInputError(f"{path}: the directory cannot be read ({_os_reason(exc)})") from exc
            candidates = [p for p in entries if p.suffix == RESULTS_SUFFIX and p.is_file()]
            if not candidates:
                others = f" (it holds {len(entries)} other entr{'y' if len(entries) == 1 else 'ies'})" if entries else " (it is empty)"
                raise ResultsInputError(f"{path}: the directory holds no results files (*{RESULTS_SUFFIX}){others}")
        elif path.is_file():
            candidates = [path]
        elif path.exists():
            raise ResultsInputError(f"{path}: not a results file or a directory of them")
        else:
            raise ResultsInputError(f"{path}: no such file or directory")
        for candidate in candidates:
            resolved = candidate.resolve()
            if resolved not in seen:  # the same file named twice would count its cases twice
                seen.add(resolved)
                _check_results_file(candidate)
                files.append(candidate)
    return files


def _os_reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _check_results_file(path: Path) -> None:
    """Refuse a file that cannot be read or is plainly something else (an image, a log, other JSON).

    Only the start is looked at.  A file whose first line starts a JSON object but does not finish
    it passes: that is how a writer killed while writing its header leaves a results file.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise ResultsInputError(f"{path}: the file cannot be read ({_os_reason(exc)})") from exc
    try:
        # Incremental, so that a multi-byte character cut at the sniff boundary is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        raise ResultsInputError(f"{path}: not a results file (binary data, not JSON-lines text)")
    lines = text.splitlines()
    first = next(((n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()), None)
    if first is None:
        return  # empty: load() reports it; alone it is "no readable results"
    n, line = first
    complete = n < len(lines) or len(head) < _SNIFF_BYTES
    if not line.startswith("{"):
        raise ResultsInputError(
            f"{path}: not a results file (line {n} is not a JSON record: {_preview(line)})"
        )
    if complete:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return  # a damaged line; if nothing else in the file is usable, load() says so
        if not isinstance(record, dict) or record.get("kind") not in RECORD_KINDS:
            raise ResultsInputError(
                f"{path}: not a results file (line {n} is JSON but not a keraspec run, case or end record)"
            )


def _preview(line: str, limit: int = 40) -> str:
    shown = line if len(line) <= limit else line[: limit - 3] + "..."
    return ascii(shown)


def load(paths: Iterable[Path | str], expected_shards: int | None = None) -> ResultSet:
    """Read and merge results files (directories are expanded to their ``*.jsonl``).

    Raises :class:`ResultsInputError` for a path that cannot be used at all (see :func:`expand_paths`).
    """
    file_paths = expand_paths(paths)
    problems: list[str] = []
    files: list[ResultFile] = []
    cases: list[Case] = []
    notes: list[str] = []
    for path in file_paths:
        try:
            read = read_results(path)
            runs, raw_cases, footer, file_problems = read.runs, read.cases, read.footer, read.problems
        except OSError as exc:  # it was readable a moment ago; keep the run, say what happened
            problems.append(f"{path}: could not be read ({type(exc).__name__}: {exc})")
            files.append(ResultFile(str(path), [], None, 0, [], readable=False))
            continue
        if len(runs) > 1:
            file_problems.append(
                f"{path}: {len(runs)} run headers in one file; cases are attributed to the first "
                f"(run_id {_text(runs[0].get('run_id'))!r})"
            )
        rf = ResultFile(str(path), runs, footer, len(raw_cases), file_problems)
        files.append(rf)
        for n, raw in enumerate(raw_cases, 1):
            cases.append(_normalise(raw, len(cases), rf, n, file_problems))
        problems.extend(file_problems)
    problems.extend(_shard_problems(files, expected_shards, notes))
    problems.extend(_family_problems(cases))
    return ResultSet(files, cases, problems, notes)


def _normalise(raw: dict[str, Any], idx: int, rf: ResultFile, n: int, problems: list[str]) -> Case:
    where = f"{rf.path}: case record #{n}"
    values: dict[str, Any] = {}
    for name in _STR_FIELDS:
        value = raw.get(name)
        if value is None or value == "":
            problems.append(f"{where} has no {name!r}")
            values[name] = MISSING
        else:
            values[name] = _text(value)
    if values["status"] not in STATUSES and values["status"] != MISSING:
        problems.append(f"{where} has unknown status {values['status']!r} (ranked worst)")
    for name in _FLOAT_FIELDS:
        value, ok = _as_float(raw.get(name))
        if not ok:
            problems.append(f"{where}: {name} is not a number ({raw.get(name)!r})")
        values[name] = value
    duration, _ = _as_float(raw.get("duration_s"))
    extra = raw.get("extra")
    if isinstance(extra, dict) and FALSE_ALARM_KEY in extra and probability(extra[FALSE_ALARM_KEY]) is None:
        problems.append(f"{where}: extra.{FALSE_ALARM_KEY} is not a probability ({extra[FALSE_ALARM_KEY]!r})")
    seed = raw.get("seed")
    entry = raw.get("xfail_entry")
    return Case(
        idx=idx,
        message=_text(raw.get("message")),
        example=raw.get("example"),
        seed=None if seed is None else _text(seed),
        repro=_text(raw.get("repro")),
        duration_s=duration,
        xfail_entry=None if entry is None else _text(entry),
        extra=extra if isinstance(extra, dict) else ({} if extra is None else {"value": extra}),
        source=rf.path,
        run_id=rf.run_id,
        **values,
    )


#: Run header fields that say which cases a run selected (besides the implementation).
_SELECTION_FIELDS = ("oracles", "devices", "dtypes")

_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def _shard_problems(files: list[ResultFile], expected: int | None, notes: list[str]) -> list[str]:
    """Missing, duplicated and inconsistent shards.

    Shards are matched on their "i/n" labels across all files, not per run_id: the plugin gives
    each shard its own run_id unless KERASPEC_RUN_ID is shared, so separately started CI shard jobs
    would otherwise each look like a run missing all the other shards.
    """
    problems: list[str] = []
    headed = [rf for rf in files if rf.readable and rf.runs]
    run_ids = sorted({rf.run_id for rf in headed})
    if len(run_ids) > 1:
        notes.append(f"Results from {len(run_ids)} different run ids were merged: {', '.join(run_ids)}.")
    present: dict[int, set[int]] = defaultdict(set)  # n -> indices seen
    # Keyed by what the run selected too: one run per implementation under test is how a comparison
    # is made, and one implementation may be run once per oracle (`make report` runs Keras 3 on torch
    # live against tf_keras, then against the recorded keras3 corpus).  Only runs that selected the
    # same implementation, oracles, devices and dtypes can be re-runs of each other.
    runs_per_label: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    slots: Counter[tuple[str, str, str]] = Counter()
    unlabelled = 0
    for rf in headed:
        slots[(rf.run_id, rf.shard, rf.worker)] += 1
        if not rf.shard:
            unlabelled += 1
            continue
        m = _SHARD_RE.fullmatch(rf.shard)
        if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
            problems.append(f"{rf.path}: shard label {rf.shard!r} is not of the form i/n with 1 <= i <= n")
            continue
        i, n = int(m.group(1)), int(m.group(2))
        present[n].add(i)
        selection = "; ".join(f"{name} {_text(rf.header.get(name))}" for name in _SELECTION_FIELDS if rf.header.get(name))
        runs_per_label[(_text(rf.header.get("impl")), selection, f"{i}/{n}")].add(rf.run_id)
    for (run_id, shard, worker), count in sorted(slots.items()):
        if count > 1:
            problems.append(
                f"run {run_id}: {count} files claim shard {shard or '-'} worker {worker or '-'} "
                "(duplicated or re-run; all their cases are included)"
            )
    for (impl, selection, label), ids in sorted(
        runs_per_label.items(), key=lambda kv: (kv[0][0], kv[0][1], _shard_key(kv[0][2]))
    ):
        if len(ids) > 1:
            problems.append(
                f"shard {label} of {impl or 'an unnamed implementation'}"
                + (f" ({selection})" if selection else "")
                + f" comes from {len(ids)} runs "
                f"({', '.join(sorted(ids))}): a re-run or results of different runs merged; all their cases are included"
            )
    totals = sorted(present)
    if len(totals) > 1:
        problems.append(f"shard headers disagree on the number of shards: n = {', '.join(map(str, totals))}")
    if expected is not None and totals and totals != [expected]:
        problems.append(
            f"--expect-shards {expected}, but shard headers say n = {', '.join(map(str, totals))}"
        )
    for n in [expected] if expected is not None else totals:
        if expected is not None and not totals:
            if unlabelled < n:
                problems.append(
                    f"expected {n} shard files, found {unlabelled}; their headers carry no shard numbers, "
                    f"so {n - unlabelled} unnamed shard(s) are missing"
                )
            continue
        for i in range(1, n + 1):
            if i not in present.get(n, set()):
                problems.append(f"shard {i}/{n} is missing -- no results file has it")
    return problems


def _family_problems(cases: list[Case]) -> list[str]:
    families: dict[str, set[str]] = defaultdict(set)
    for c in cases:
        families[c.layer].add(c.family)
    return [
        f"layer {layer!r} is reported under several families ({', '.join(sorted(fams))}); "
        "the matrix lists it under the most frequent"
        for layer, fams in sorted(families.items())
        if len(fams) > 1
    ]


@dataclass
class Agg:
    """Statuses and worst errors over a set of cases."""

    counts: Counter[str] = field(default_factory=Counter)
    worst_abs: float | None = None
    worst_rel: float | None = None

    def add(self, case: Case) -> None:
        self.counts[case.status] += 1
        self.worst_abs = worse_err(self.worst_abs, case.max_abs_err)
        self.worst_rel = worse_err(self.worst_rel, case.max_rel_err)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def worst(self) -> str | None:
        return status_order(self.counts)[0] if self.counts else None

    @property
    def ordered_counts(self) -> list[tuple[str, int]]:
        return [(s, self.counts[s]) for s in status_order(self.counts)]

    @property
    def needs_detail(self) -> bool:
        """Some case here did not pass, so its layer page has a detail block for it."""
        return any(s not in QUIET_STATUSES for s in self.counts)

    @property
    def other(self) -> int:
        """Cases whose status is not one of the known ones."""
        return sum(n for s, n in self.counts.items() if s not in _RANK)

    @property
    def judged(self) -> int:
        return self.counts["passed"] + self.counts["failed"] + self.counts["error"]

    @property
    def conformance(self) -> float | None:
        """passed / (passed + failed + error); xfailed and the rest are reported separately."""
        return self.counts["passed"] / self.judged if self.judged else None


def aggregate(cases: Iterable[Case]) -> Agg:
    agg = Agg()
    for c in cases:
        agg.add(c)
    return agg


def group_by_impl(cases: Iterable[Case], dim: str, impls: list[str]) -> list[tuple[str, list[Agg | None]]]:
    """Per value of ``dim``: one aggregate per implementation (None where it has no such case)."""
    groups: dict[str, dict[str, Agg]] = defaultdict(dict)
    for c in cases:
        by_impl = groups[c.get(dim)]
        agg = by_impl.get(c.impl)
        if agg is None:
            agg = by_impl[c.impl] = Agg()
        agg.add(c)
    return [(value, [groups[value].get(impl) for impl in impls]) for value in value_order(dim, groups)]


@dataclass
class MatrixRow:
    """One implementation's cases of one layer."""

    layer: str
    impl: str
    page: str  # file name stem of the layer page
    layer_idx: int  # index into the inline data's layer list
    impl_idx: int  # index into the inline data's impl list
    cells: list[Agg | None]
    agg: Agg
    first_of_layer: bool  # the layer's first row (its other implementations' rows follow it)


@dataclass
class Matrix:
    checks: list[str]
    impls: list[str]  # the implementations with rows, in display order
    families: list[tuple[str, list[MatrixRow]]]

    @property
    def n_rows(self) -> int:
        return sum(len(rows) for _, rows in self.families)


def layer_families(cases: Iterable[Case]) -> dict[str, str]:
    """Each layer's most frequent family (ties broken alphabetically)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for c in cases:
        counts[c.layer][c.family] += 1
    return {layer: min(fc, key=lambda f: (-fc[f], f)) for layer, fc in counts.items()}


def build_matrix(
    cases: list[Case],
    pages: UniqueNames,
    layer_index: dict[str, int],
    families: dict[str, str],
    impl_index: dict[str, int],
    checks: list[str] | None = None,
) -> Matrix:
    """Layers by checks, a row per (layer, implementation) so implementations sit next to each other.

    ``impl_index`` gives each implementation's position in the report; rows follow that order.
    """
    if checks is None:
        checks = sorted({c.check for c in cases}, key=check_sort_key)
    col = {check: i for i, check in enumerate(checks)}
    per_row: dict[tuple[str, str], list[Agg | None]] = {}
    totals: dict[tuple[str, str], Agg] = {}
    for c in cases:
        key = (c.layer, c.impl)
        cells = per_row.get(key)
        if cells is None:
            cells = per_row[key] = [None] * len(checks)
            totals[key] = Agg()
        totals[key].add(c)
        j = col[c.check]
        cell = cells[j]
        if cell is None:
            cell = cells[j] = Agg()
        cell.add(c)
    grouped: dict[str, list[MatrixRow]] = defaultdict(list)
    previous_layer = None
    for layer, impl in sorted(per_row, key=lambda k: (k[0], impl_index[k[1]])):
        grouped[families[layer]].append(
            MatrixRow(layer, impl, pages[layer], layer_index[layer], impl_index[impl], per_row[(layer, impl)],
                      totals[(layer, impl)], first_of_layer=layer != previous_layer)
        )
        previous_layer = layer
    impls = sorted({impl for _, impl in per_row}, key=impl_index.__getitem__)
    return Matrix(checks, impls, sorted(grouped.items()))


@dataclass
class GridCell:
    agg: Agg
    worst: Case  # the case a click on the cell leads to: the worst status, the first such


@dataclass
class CaseGrid:
    """One implementation's cases of one layer, compactly: a row per check, a column per (oracle, dtype).

    Devices are folded into the cells (each cell counts its cases), as the matrix folds them.
    """

    impl: str
    columns: list[tuple[str, str]]  # (oracle, dtype)
    rows: list[tuple[str, list[GridCell | None]]]  # (check, a cell per column)

    @property
    def oracle_spans(self) -> list[tuple[str, int]]:
        """Consecutive columns of the same oracle, for the grouped header row."""
        spans: list[tuple[str, int]] = []
        for oracle, _ in self.columns:
            if spans and spans[-1][0] == oracle:
                spans[-1] = (oracle, spans[-1][1] + 1)
            else:
                spans.append((oracle, 1))
        return spans


def case_grids(cases: list[Case], impls: list[str]) -> list[CaseGrid]:
    """A :class:`CaseGrid` per implementation (in ``impls`` order) that has cases among ``cases``."""
    grids = []
    for impl in impls:
        mine = [c for c in cases if c.impl == impl]
        if not mine:
            continue
        oracles = value_order("oracle", (c.oracle for c in mine))
        dtypes = value_order("dtype", (c.dtype for c in mine))
        present = {(c.oracle, c.dtype) for c in mine}
        columns = [(o, d) for o in oracles for d in dtypes if (o, d) in present]
        col = {key: j for j, key in enumerate(columns)}
        rows: dict[str, list[GridCell | None]] = {}
        for c in mine:
            cells = rows.setdefault(c.check, [None] * len(columns))
            j = col[(c.oracle, c.dtype)]
            cell = cells[j]
            if cell is None:
                cells[j] = GridCell(Agg(), c)
                cell = cells[j]
            elif rank(c.status) > rank(cell.worst.status):
                cell.worst = c
            cell.agg.add(c)
        grids.append(CaseGrid(impl, columns, sorted(rows.items(), key=lambda kv: check_sort_key(kv[0]))))
    return grids


@dataclass
class FalseAlarms:
    """What the statistical checks' recorded false-alarm rates say about a set of cases."""

    checks: list[str]  # the checks whose cases record a rate
    n_cases: int  # cases that record a rate
    max_rate: float
    expected: float  # expected number of false alarms among them: the sum of their rates
    failed: int  # of those cases, how many failed
    unrated: int  # cases of the same checks that record no rate (not counted above)


def false_alarms(cases: list[Case]) -> FalseAlarms | None:
    """None when no case records a false-alarm rate: the report then says nothing about it."""
    rated = [(c, rate) for c in cases if (rate := c.false_alarm_rate) is not None]
    if not rated:
        return None
    checks = {c.check for c, _ in rated}
    return FalseAlarms(
        checks=sorted(checks, key=check_sort_key),
        n_cases=len(rated),
        max_rate=max(rate for _, rate in rated),
        expected=math.fsum(rate for _, rate in rated),
        failed=sum(1 for c, _ in rated if c.status in BAD_STATUSES),
        # Cases that did not run (skipped, not implemented) could not raise an alarm either way.
        unrated=sum(
            1 for c in cases
            if c.check in checks and c.false_alarm_rate is None and c.status not in NOT_RUN_STATUSES
        ),
    )


@dataclass
class DiffRow:
    key: tuple[str, ...]
    before: Agg | None
    now: Agg | None
    message: str = ""
    case_idx: int | None = None  # the worst current case, for a link to its details

    @property
    def layer(self) -> str:
        return self.key[0]

    @property
    def impl(self) -> str:
        return self.key[DIFF_KEY.index("impl")]

    @property
    def fields(self) -> dict[str, str]:
        return dict(zip(DIFF_KEY, self.key))


@dataclass
class Diff:
    sources: list[str]
    problems: list[str]
    new_failures: list[DiffRow]
    fixed: list[DiffRow]
    changed: list[DiffRow]
    appeared: list[DiffRow]
    disappeared: list[DiffRow]
    unchanged: int
    previous_impls: frozenset[str] = frozenset()  # the implementations the previous run has cases of

    def counts_for(self, impl: str) -> tuple[int, int]:
        """(new failures, fixes) of one implementation, for its headline."""
        return (sum(1 for r in self.new_failures if r.impl == impl), sum(1 for r in self.fixed if r.impl == impl))


def _by_key(cases: Iterable[Case]) -> dict[tuple[str, ...], tuple[Agg, Case]]:
    out: dict[tuple[str, ...], tuple[Agg, Case]] = {}
    for c in cases:
        if c.key in out:
            agg, worst = out[c.key]
            agg.add(c)
            if rank(c.status) > rank(worst.status):
                out[c.key] = (agg, c)
        else:
            agg = Agg()
            agg.add(c)
            out[c.key] = (agg, c)
    return out


def diff(now: ResultSet, before: ResultSet) -> Diff:
    """Compare two result sets case by case, keyed by (layer, check, oracle, impl, device, dtype)."""
    cur = _by_key(now.cases)
    old = _by_key(before.cases)
    new_failures, fixed, changed, appeared, disappeared = [], [], [], [], []
    unchanged = 0
    for key in sorted(set(cur) | set(old)):
        c_agg, c_case = cur.get(key, (None, None))
        o_agg = old[key][0] if key in old else None
        row = DiffRow(
            key,
            o_agg,
            c_agg,
            c_case.message_first_line if c_case else old[key][1].message_first_line,
            c_case.idx if c_case else None,
        )
        if o_agg is None:
            appeared.append(row)
        elif c_agg is None:
            disappeared.append(row)
        else:
            was, is_ = o_agg.worst, c_agg.worst
            if is_ in BAD_STATUSES and was not in BAD_STATUSES:
                new_failures.append(row)
            elif was in BAD_STATUSES | {"xfailed"} and is_ in {"passed", "xpassed"}:
                fixed.append(row)
            elif was != is_:
                changed.append(row)
            else:
                unchanged += 1
    return Diff(
        sources=[rf.path for rf in before.files],
        problems=before.problems,
        new_failures=new_failures,
        fixed=fixed,
        changed=changed,
        appeared=appeared,
        disappeared=disappeared,
        unchanged=unchanged,
        previous_impls=frozenset(c.impl for c in before.cases),
    )


@dataclass
class RunInfo:
    run_id: str
    files: list[ResultFile]
    fields: list[tuple[str, str]]  # (name, value) for the metadata list
    started: str
    finished: str
    commands: list[str]
    versions: list[tuple[str, str]]  # package -> version(s), "a | b" where shards disagree


_RUN_FIELDS = ("impl", "profile", "oracles", "devices", "dtypes")


def run_infos(files: list[ResultFile]) -> list[RunInfo]:
    by_run: dict[str, list[ResultFile]] = defaultdict(list)
    for rf in files:
        by_run[rf.run_id].append(rf)
    infos = []
    for run_id, run_files in sorted(by_run.items()):
        headers = [rf.header for rf in run_files if rf.runs]
        fields = []
        for name in _RUN_FIELDS:
            values = _distinct(_text(h.get(name)) for h in headers)
            fields.append((name, " | ".join(values) if values else ""))
        shards = _distinct(rf.shard for rf in run_files if rf.shard)
        fields.append(("shards present", ", ".join(sorted(shards, key=_shard_key)) or "(unsharded)"))
        started = min((_text(h.get("started")) for h in headers if h.get("started")), default="")
        if all(rf.complete for rf in run_files):
            finished = max((_text(rf.footer.get("finished")) for rf in run_files if rf.footer), default="")
        else:
            finished = "incomplete -- at least one file has no end record"
        versions: dict[str, list[str]] = defaultdict(list)
        for h in headers:
            v = h.get("versions")
            if isinstance(v, dict):
                for pkg, ver in v.items():
                    if _text(ver) not in versions[str(pkg)]:
                        versions[str(pkg)].append(_text(ver))
            elif v is not None:
                if _text(v) not in versions["(versions)"]:
                    versions["(versions)"].append(_text(v))
        infos.append(
            RunInfo(
                run_id=run_id,
                files=run_files,
                fields=fields,
                started=started,
                finished=finished,
                commands=_distinct(_text(h.get("command")) for h in headers if h.get("command")),
                versions=[(pkg, " | ".join(vs)) for pkg, vs in sorted(versions.items())],
            )
        )
    return infos


def _distinct(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _shard_key(label: str) -> tuple[int, int, str]:
    m = _SHARD_RE.fullmatch(label)
    return (int(m.group(2)), int(m.group(1)), label) if m else (1 << 30, 0, label)
