"""Recorded oracle corpus: oracle runs saved to disk so the suite runs where TensorFlow cannot.

``keraspec record`` draws cases from the spec (the same strategies as the live suite, a fixed
seed), runs the oracle once per case and variant (inference, training, masked), and writes:

    <dir>/index.json                      format version, oracle package versions, and per case:
                                          layer, oracle, dtype, config, input shapes, seed, variants
    <dir>/<Layer>-<oracle>-<dtype>.npz    inputs, weights, outputs, gradients, masks, updated weights

``keraspec replay`` (or ``pytest --corpus DIR``) runs every check against these recorded runs:
the checks are the live ones, only the source of the oracle's results changes.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed

from keraspec import spec as spec_module
from keraspec.spec import DTYPE_POLICIES, ORACLES
from keraspec.spec.cli import one_line

from .oracle import OracleRun
from .strategies import INPUT_VALUES, Case, cases, make_inputs

FORMAT_VERSION = 4  # 2: stepped weights, probe-input results; 3: unknown-axis output shapes, initial weights, magnitudes;
# 4: a case with ties and one with edge values (NaN, infinities, extremes) per group
DEFAULT_CORPUS = Path(str(resources.files("keraspec.conformance"))) / "corpus"
_ARRAY_FIELDS = ("weights", "outputs", "grad_inputs", "grad_weights", "updated_weights", "stepped_weights", "probe_outputs")
_JSON_FIELDS = ("weight_names", "trainable", "config", "output_shape", "output_shape_unknown", "losses", "error", "grad_error", "step_error",
                "probe_errors")


#: The index fields of a recorded case and their JSON types (``magnitude`` and later additions are optional).
_CASE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "layer": str, "oracle": str, "dtype": str, "config": dict, "input_shapes": list, "seed": int, "training": bool,
    "group": str, "index": int, "variants": dict}
_INITIAL = "initial"  # the variant holding a case's initial weights (no counts: one array per weight)


class CorpusError(ValueError):
    """A corpus that cannot be replayed or added to: missing, unreadable, truncated, of another format
    version or oracle versions, or disagreeing with itself.  The message is one line naming the file
    and the problem."""


def load_index(path: Path) -> dict[str, Any]:
    """The index of the corpus in folder ``path``, checked for the fields replay reads: every problem
    is a CorpusError naming the file, never a KeyError or a JSON traceback."""
    folder = Path(path)
    index_path = folder / "index.json"
    if not folder.is_dir():
        raise CorpusError(f"no corpus folder at {folder}" if not folder.exists() else f"{folder} is a file, not a corpus folder")
    if not index_path.exists():
        raise CorpusError(f"no corpus at {folder} (index.json missing); run `keraspec record` first")
    try:
        text = index_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{index_path}: cannot be read ({exc})") from None
    try:
        index = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{index_path}: not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}); "
                          "truncated or edited by hand? re-record it") from None
    if not isinstance(index, dict):
        raise CorpusError(f"{index_path}: a JSON {type(index).__name__}, expected an object with 'format_version' and 'cases'")
    if index.get("format_version") != FORMAT_VERSION:
        raise CorpusError(f"{index_path}: format version {index.get('format_version')!r}, this keraspec reads {FORMAT_VERSION}; "
                          "re-record it (keraspec record)")
    for key, kind in (("versions", dict), ("cases", list)):
        if not isinstance(index.get(key), kind):
            problem = "missing" if key not in index else f"not a JSON {_JSON_NAMES[kind]}"
            raise CorpusError(f"{index_path}: field {key!r} is {problem}")
    for oracle, versions in index["versions"].items():
        if not isinstance(versions, dict):
            raise CorpusError(f"{index_path}: versions of {oracle!r} are not an object of package -> version")
    for position, raw in enumerate(index["cases"]):
        problem = _case_problem(raw)
        if problem is not None:
            name = (f" ({raw.get('group', '?')} #{raw.get('index', '?')})" if isinstance(raw, dict) else "")
            raise CorpusError(f"{index_path}: case {position}{name}: {problem}")
    return index


def _case_problem(raw: Any) -> str | None:
    """What is wrong with one case of the index, or None."""
    if not isinstance(raw, dict):
        return "not a JSON object"
    for key, kind in _CASE_FIELDS.items():
        if key not in raw:
            return f"field {key!r} is missing"
        if not isinstance(raw[key], kind) or (kind is int and isinstance(raw[key], bool)):
            return f"field {key!r} is {raw[key]!r}, expected a JSON {_JSON_NAMES[kind]}"
    if raw["oracle"] not in ORACLES:
        return f"oracle {raw['oracle']!r} is not one of {', '.join(ORACLES)}"
    if raw["dtype"] not in DTYPE_POLICIES:
        return f"dtype {raw['dtype']!r} is not one of {', '.join(DTYPE_POLICIES)}"
    if raw.get("values", "normal") not in INPUT_VALUES:
        return f"values {raw['values']!r} is not one of {', '.join(INPUT_VALUES)}"
    shapes = raw["input_shapes"]
    if not all(isinstance(s, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in s) for s in shapes):
        return f"input_shapes {shapes!r} is not a list of shapes (lists of sizes)"
    for variant, fields in raw["variants"].items():
        if not isinstance(fields, dict):
            return f"variant {variant!r} is not a JSON object"
        if variant == _INITIAL:
            if not isinstance(fields.get("weights"), list):
                return f"variant {variant!r} has no list of 'weights'"
            continue
        counts = fields.get("counts")
        if not isinstance(counts, dict):
            return f"variant {variant!r} has no 'counts'"
        for name in ("inputs", *_ARRAY_FIELDS):
            if not (isinstance(counts.get(name), int) and counts[name] >= 0):
                return f"variant {variant!r}: counts of {name!r} is {counts.get(name)!r}, expected an int >= 0"
        if counts["inputs"] != len(shapes):
            return f"variant {variant!r} counts {counts['inputs']} input(s), input_shapes has {len(shapes)}"
    return None


_JSON_NAMES: dict[Any, str] = {str: "string", dict: "object", list: "array", int: "integer", bool: "boolean"}


def _expected_arrays(raw: Mapping[str, Any]) -> Iterable[tuple[str, tuple[int, ...] | None]]:
    """The array keys one case's variants need in its group's .npz, each with the shape the index
    fixes (the inputs' recorded shapes) or None."""
    position = raw["index"]
    for variant, fields in raw["variants"].items():
        if variant == _INITIAL:
            for i in range(len(fields["weights"])):
                yield f"{position}/{_INITIAL}/{i}", None
            continue
        counts = fields["counts"]
        for i in range(counts["inputs"]):
            yield f"{position}/{variant}/inputs/{i}", tuple(raw["input_shapes"][i])
        for name in _ARRAY_FIELDS:
            for i in range(counts[name]):
                yield f"{position}/{variant}/{name}/{i}", None


def _npy_shape(archive: zipfile.ZipFile, member: str) -> tuple[int, ...]:
    """The shape in a .npy member's header, read without decompressing the array."""
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            return tuple(np.lib.format.read_array_header_1_0(fh)[0])
        if version == (2, 0):
            return tuple(np.lib.format.read_array_header_2_0(fh)[0])
    with archive.open(member) as fh:  # a newer header version: read the whole array
        return tuple(np.lib.format.read_array(fh).shape)


def _encode(value: Any) -> Any:
    """JSON with tuples kept distinct from lists, so configs replay exactly."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)) or isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()  # tf_keras's ReLU keeps its float arguments as 0-d arrays in its config
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def variant_name(training: bool, with_mask: bool) -> str:
    return ("train" if training else "infer") + ("-masked" if with_mask else "")


@dataclass
class RecordedCase:
    case: Case
    oracle: str
    variants: dict[str, dict[str, Any]]  # variant -> json fields of the OracleRun
    group: str  # npz file stem
    index: int  # position in the group; array keys start with it


class Corpus:
    """A recorded corpus loaded from a folder; answers oracle runs for its cases."""

    def __init__(self, path: Path):
        self.path = Path(path)
        index = load_index(self.path)  # CorpusError naming the file, for anything replay would trip on
        self._index = index
        self.versions: dict[str, dict[str, str]] = index["versions"]
        self.recorded: list[RecordedCase] = []
        for raw in index["cases"]:
            case = Case(raw["layer"], _decode(raw["config"]), tuple(tuple(s) for s in raw["input_shapes"]),
                        raw["dtype"], raw["seed"], raw["training"], magnitude=raw.get("magnitude", 0),
                        values=raw.get("values", "normal"), call=_decode(raw.get("call", {})))
            self.recorded.append(RecordedCase(case, raw["oracle"], raw["variants"], raw["group"], raw["index"]))
        self._by_key = {(r.oracle, r.case.key()): r for r in self.recorded}
        self._arrays: dict[str, Any] = {}

    def check_arrays(self) -> None:
        """Check every .npz the index names: present, a readable archive, holding every array the
        index's counts promise, and the inputs of the recorded shapes.  Reads the zip directories and
        array headers only (a second or so for the committed corpus), so a truncated or hand-edited
        file fails before a run, as a CorpusError naming it, not halfway through as a KeyError."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for raw in self._index["cases"]:
            groups.setdefault(raw["group"], []).append(raw)
        for group, raws in groups.items():
            path = self.path / f"{group}.npz"
            if not path.is_file():
                raise CorpusError(f"{path}: missing (the index has {len(raws)} case(s) of {group}); re-record it")
            try:
                with zipfile.ZipFile(path) as archive:
                    members = {name.removesuffix(".npy"): name for name in archive.namelist()}
                    for raw in raws:
                        for key, shape in _expected_arrays(raw):
                            if key not in members:
                                raise CorpusError(f"{path}: array {key!r} is missing (the index counts it for case "
                                                  f"#{raw['index']}); truncated or edited? re-record it")
                            if shape is not None and (got := _npy_shape(archive, members[key])) != shape:
                                raise CorpusError(f"{path}: array {key!r} has shape {got}, the index records input "
                                                  f"shape {shape} for case #{raw['index']}; re-record it")
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise CorpusError(f"{path}: not a readable .npz archive ({exc}); truncated? re-record it") from None
            except ValueError as exc:  # numpy: a malformed .npy header
                if isinstance(exc, CorpusError):
                    raise
                raise CorpusError(f"{path}: malformed array ({one_line(exc)}); re-record it") from None

    def _group_arrays(self, group: str) -> Any:
        arrays = self._arrays.get(group)
        if arrays is None:
            path = self.path / f"{group}.npz"
            try:
                arrays = self._arrays[group] = np.load(path)
            except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
                raise CorpusError(f"{path}: not a readable .npz archive ({one_line(exc)}); re-record it") from None
        return arrays

    def cases(self, layer: str, oracle: str, dtype: str) -> list[Case]:
        return [r.case for r in self.recorded if r.case.layer == layer and r.oracle == oracle and r.case.dtype == dtype]

    def has(self, layer: str, oracle: str) -> bool:
        return any(r.case.layer == layer and r.oracle == oracle for r in self.recorded)

    def initial(self, oracle: str, case: Case) -> list[dict[str, Any]]:
        """The recorded initial weights and initializer moments of a case (the initial_weights check)."""
        rec = self._by_key.get((oracle, case.key()))
        if rec is None or "initial" not in rec.variants:
            raise KeyError(f"corpus {self.path.name} has no initial weights of {case.describe()} for {oracle}")
        arrays = self._group_arrays(rec.group)
        return [{"initial": arrays[f"{rec.index}/initial/{i}"], **entry}
                for i, entry in enumerate(rec.variants["initial"]["weights"])]

    def run(self, oracle: str, case: Case, training: bool, with_mask: bool) -> OracleRun:
        rec = self._by_key.get((oracle, case.key()))
        variant = variant_name(training, with_mask)
        if rec is None or variant not in rec.variants:
            raise KeyError(f"corpus {self.path.name} has no {variant} run of {case.describe()} for {oracle}")
        arrays = self._group_arrays(rec.group)
        prefix = f"{rec.index}/{variant}"
        fields = {k: _decode(v) for k, v in rec.variants[variant].items()}
        counts = fields.pop("counts")
        run = OracleRun(**{k: fields[k] for k in _JSON_FIELDS if k in fields})
        for name in _ARRAY_FIELDS:
            setattr(run, name, [arrays[f"{prefix}/{name}/{i}"] for i in range(counts[name])])
        run.output_mask = arrays[f"{prefix}/output_mask"] if f"{prefix}/output_mask" in arrays else None
        inputs = [arrays[f"{prefix}/inputs/{i}"] for i in range(counts["inputs"])]
        regenerated = make_inputs(spec_module.lookup(case.layer), case)
        for got, want in zip(regenerated, inputs):
            if not np.array_equal(got, want, equal_nan=True):  # edge inputs hold NaN
                raise AssertionError(f"{case.layer}: inputs regenerated from seed {case.seed} differ from the recorded ones "
                                     "(numpy's generator changed?); re-record the corpus")
        return run


class ProgressSink(Protocol):
    """What ``record`` reports its progress to (keraspec.conformance.plugin.ProgressDisplay)."""

    def start(self, total: int) -> None: ...

    def advance(self, failed: bool = False) -> None: ...

    def finish(self) -> None: ...


def record(out_dir: Path, layers: Iterable[str] | None = None, oracles: Iterable[str] = ORACLES,
           dtypes: Iterable[str] = DTYPE_POLICIES, examples: int = 2, seed: int = 0,
           progress: ProgressSink | None = None) -> dict[str, Any]:
    """Draw cases from the spec, run the oracle on each, and write the corpus to ``out_dir``;
    ``progress`` hears of each group (layer x oracle x dtype, one .npz) written."""
    from . import oracle as oracle_module
    from .catalogue import CHECK_DTYPES
    from .harness import Target, applicable_checks, oracle_initial, oracle_run, uses_input_mask

    out_dir = Path(out_dir)
    names = list(layers) if layers is not None else spec_module.layers()
    oracles, dtypes = list(oracles), list(dtypes)
    planned = [(name, oracle, dtype) for name in names for spec in [spec_module.lookup(name)] if spec.input.max_count > 0
               for oracle in oracles if spec.has_oracle(oracle) and oracle_module.available(oracle)
               for dtype in dtypes if dtype in spec.input.dtypes]
    if layers is not None and (out_dir / "index.json").exists():
        # Recording some layers adds to the corpus there: refuse a corpus it cannot be added to now,
        # not after minutes of recording.
        _check_same_versions(out_dir, load_index(out_dir),
                             {oracle: oracle_module.get(oracle).versions() for oracle in {o for _, o, _ in planned}})
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"format_version": FORMAT_VERSION, "versions": {}, "cases": [], "recorded": time.strftime("%Y-%m-%d")}
    if progress is not None:
        progress.start(len(planned))
    started = time.perf_counter()
    for name in names:
        layer = spec_module.lookup(name)
        if layer.input.max_count == 0:
            continue  # nothing to run: such layers are checked on config and shape only
        checks = applicable_checks(layer)
        base_variants = [(False, False)]
        if "forward_training" in checks:  # (a stochastic layer's gradients are compared in inference)
            base_variants.append((True, False))
        for oracle in oracles:
            if not layer.has_oracle(oracle) or not oracle_module.available(oracle):
                continue
            index["versions"][oracle] = oracle_module.get(oracle).versions()
            for dtype in dtypes:
                if dtype not in layer.input.dtypes:
                    continue
                group = f"{name}-{oracle}-{dtype}"
                arrays: dict[str, np.ndarray] = {}
                target = Target(layer, oracle, None, "cpu", dtype)  # type: ignore[arg-type]
                for position, case in enumerate(draw_cases(layer, oracle, dtype, examples, seed)):
                    entry = {"layer": name, "oracle": oracle, "dtype": dtype, "config": _encode(case.config),
                             "input_shapes": [list(s) for s in case.input_shapes], "seed": case.seed,
                             "training": case.training, "magnitude": case.magnitude, "group": group, "index": position, "variants": {},
                             **({"values": case.values} if case.values != "normal" else {}),
                             **({"call": _encode(case.call)} if case.call else {})}
                    variants = list(base_variants)
                    if "masks" in checks and uses_input_mask(layer, case):
                        variants.append((False, True))
                    for training, with_mask in variants:
                        run = oracle_run(target, case, training, with_mask)
                        prefix = f"{position}/{variant_name(training, with_mask)}"
                        inputs = make_inputs(layer, case)
                        counts = {"inputs": len(inputs)}
                        for i, a in enumerate(inputs):
                            arrays[f"{prefix}/inputs/{i}"] = a
                        for field_name in _ARRAY_FIELDS:
                            values = getattr(run, field_name)
                            counts[field_name] = len(values)
                            for i, a in enumerate(values):
                                arrays[f"{prefix}/{field_name}/{i}"] = np.asarray(a)
                        if run.output_mask is not None:
                            arrays[f"{prefix}/output_mask"] = run.output_mask
                        # (getattr, not asdict: asdict deep-copies, which fails on the TF ListWrapper in a tf_keras config)
                        fields = {f.name: _encode(getattr(run, f.name)) for f in dataclass_fields(run) if f.name in _JSON_FIELDS}
                        entry["variants"][variant_name(training, with_mask)] = {**fields, "counts": counts}
                    if "initial_weights" in checks and dtype in CHECK_DTYPES["initial_weights"]:
                        initial = oracle_initial(target, case)
                        for i, weight in enumerate(initial):
                            arrays[f"{position}/initial/{i}"] = weight["initial"]
                        entry["variants"]["initial"] = {"weights": [
                            {"deterministic": w["deterministic"], "moments": w["moments"]} for w in initial]}
                    index["cases"].append(entry)
                np.savez_compressed(out_dir / f"{group}.npz", **arrays)
                if progress is not None:
                    progress.advance()
    index["record_seconds"] = round(time.perf_counter() - started, 2)
    if layers is not None:
        index["cases"] = _kept_cases(out_dir, index, set(names)) + index["cases"]
    (out_dir / "index.json").write_text(_index_text(index))
    if progress is not None:
        progress.finish()
    return index


def _kept_cases(out_dir: Path, index: Mapping[str, Any], recorded_layers: set[str]) -> list[dict[str, Any]]:
    """The cases of an existing corpus in ``out_dir`` for layers not recorded now, so that recording
    some layers adds to a corpus instead of replacing it.  Only a corpus of the same oracle versions
    can be added to: mixed versions would make the staleness check meaningless."""
    if not (out_dir / "index.json").exists():
        return []
    existing = load_index(out_dir)
    _check_same_versions(out_dir, existing, index["versions"])
    index["versions"].update({k: v for k, v in existing["versions"].items() if k not in index["versions"]})
    return [case for case in existing["cases"] if case["layer"] not in recorded_layers]


def _check_same_versions(out_dir: Path, existing: Mapping[str, Any], versions: Mapping[str, Any]) -> None:
    for oracle, installed in versions.items():
        if existing["versions"].get(oracle, installed) != installed:
            raise CorpusError(f"{out_dir} was recorded with {oracle} {existing['versions'][oracle]}, the installed oracle "
                              f"is {installed}: re-record the whole corpus (keraspec record without --layers)")


def _index_text(index: Mapping[str, Any]) -> str:
    """The index as JSON with one compact line per case: small, and a re-record diffs case by case."""
    head = {k: v for k, v in index.items() if k != "cases"}
    lines = [json.dumps(case, sort_keys=True, separators=(",", ":")) for case in index["cases"]]
    return (json.dumps(head, indent=1, sort_keys=True)[:-2] + ',\n "cases": [\n  '
            + ",\n  ".join(lines) + "\n ]\n}\n")


def draw_cases(layer: Any, oracle: str, dtype: str, examples: int, seed: int) -> list[Case]:
    """``examples`` distinct cases drawn deterministically from the spec's strategies, then the first
    of them again with ties and with edge values (strategies.INPUT_VALUES), so that a replay (on
    CUDA too) checks where ties send gradients and how NaN and the infinities propagate."""
    drawn: list[Case] = []
    seen: set[str] = set()

    @settings(max_examples=examples * 4, database=None, deadline=None, phases=[Phase.generate])
    @hypothesis_seed(seed)
    @given(cases(layer, oracle, dtype))
    def collect(case: Case) -> None:
        if len(drawn) < examples and case.key() not in seen:
            seen.add(case.key())
            drawn.append(case)

    collect()
    specials = [replace(drawn[0], values=kind, magnitude=0) for kind in INPUT_VALUES[1:]
                if drawn and (kind != "edge" or layer.edge_values)]
    return drawn + specials
