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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import seed as hypothesis_seed

from keraspec import spec as spec_module
from keraspec.spec import DTYPE_POLICIES, ORACLES

from .oracle import OracleRun
from .strategies import Case, cases, make_inputs

FORMAT_VERSION = 3  # 2: stepped weights, probe-input results; 3: unknown-axis output shapes, initial weights, magnitudes
DEFAULT_CORPUS = Path(str(resources.files("keraspec.conformance"))) / "corpus"
_ARRAY_FIELDS = ("weights", "outputs", "grad_inputs", "grad_weights", "updated_weights", "stepped_weights", "probe_outputs")
_JSON_FIELDS = ("weight_names", "trainable", "config", "output_shape", "output_shape_unknown", "losses", "error", "grad_error", "step_error",
                "probe_errors")


def _encode(value: Any) -> Any:
    """JSON with tuples kept distinct from lists, so configs replay exactly."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
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
        index_path = self.path / "index.json"
        if not index_path.exists():
            raise FileNotFoundError(f"no corpus at {self.path} (index.json missing); run `keraspec record` first")
        index = json.loads(index_path.read_text())
        if index.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"corpus {self.path}: format {index.get('format_version')}, expected {FORMAT_VERSION}")
        self.versions: dict[str, dict[str, str]] = index["versions"]
        self.recorded: list[RecordedCase] = []
        for raw in index["cases"]:
            case = Case(raw["layer"], _decode(raw["config"]), tuple(tuple(s) for s in raw["input_shapes"]),
                        raw["dtype"], raw["seed"], raw["training"], magnitude=raw.get("magnitude", 0))
            self.recorded.append(RecordedCase(case, raw["oracle"], raw["variants"], raw["group"], raw["index"]))
        self._by_key = {(r.oracle, r.case.key()): r for r in self.recorded}
        self._arrays: dict[str, Any] = {}

    def cases(self, layer: str, oracle: str, dtype: str) -> list[Case]:
        return [r.case for r in self.recorded if r.case.layer == layer and r.oracle == oracle and r.case.dtype == dtype]

    def has(self, layer: str, oracle: str) -> bool:
        return any(r.case.layer == layer and r.oracle == oracle for r in self.recorded)

    def initial(self, oracle: str, case: Case) -> list[dict[str, Any]]:
        """The recorded initial weights and initializer moments of a case (the initial_weights check)."""
        rec = self._by_key.get((oracle, case.key()))
        if rec is None or "initial" not in rec.variants:
            raise KeyError(f"corpus {self.path.name} has no initial weights of {case.describe()} for {oracle}")
        arrays = self._arrays.get(rec.group)
        if arrays is None:
            arrays = self._arrays[rec.group] = np.load(self.path / f"{rec.group}.npz")
        return [{"initial": arrays[f"{rec.index}/initial/{i}"], **entry}
                for i, entry in enumerate(rec.variants["initial"]["weights"])]

    def run(self, oracle: str, case: Case, training: bool, with_mask: bool) -> OracleRun:
        rec = self._by_key.get((oracle, case.key()))
        variant = variant_name(training, with_mask)
        if rec is None or variant not in rec.variants:
            raise KeyError(f"corpus {self.path.name} has no {variant} run of {case.describe()} for {oracle}")
        arrays = self._arrays.get(rec.group)
        if arrays is None:
            arrays = self._arrays[rec.group] = np.load(self.path / f"{rec.group}.npz")
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
            if not np.array_equal(got, want):
                raise AssertionError(f"{case.layer}: inputs regenerated from seed {case.seed} differ from the recorded ones "
                                     "(numpy's generator changed?); re-record the corpus")
        return run


def record(out_dir: Path, layers: Iterable[str] | None = None, oracles: Iterable[str] = ORACLES,
           dtypes: Iterable[str] = DTYPE_POLICIES, examples: int = 2, seed: int = 0) -> dict[str, Any]:
    """Draw cases from the spec, run the oracle on each, and write the corpus to ``out_dir``."""
    from . import oracle as oracle_module
    from .catalogue import CHECK_DTYPES
    from .harness import Target, applicable_checks, oracle_initial, oracle_run, uses_input_mask

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"format_version": FORMAT_VERSION, "versions": {}, "cases": [], "recorded": time.strftime("%Y-%m-%d")}
    started = time.perf_counter()
    for name in layers or spec_module.layers():
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
                             "training": case.training, "magnitude": case.magnitude, "group": group, "index": position, "variants": {}}
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
                        fields = {k: _encode(v) for k, v in asdict(run).items() if k in _JSON_FIELDS}
                        entry["variants"][variant_name(training, with_mask)] = {**fields, "counts": counts}
                    if "initial_weights" in checks and dtype in CHECK_DTYPES["initial_weights"]:
                        initial = oracle_initial(target, case)
                        for i, weight in enumerate(initial):
                            arrays[f"{position}/initial/{i}"] = weight["initial"]
                        entry["variants"]["initial"] = {"weights": [
                            {"deterministic": w["deterministic"], "moments": w["moments"]} for w in initial]}
                    index["cases"].append(entry)
                np.savez_compressed(out_dir / f"{group}.npz", **arrays)
    index["record_seconds"] = round(time.perf_counter() - started, 2)
    if layers is not None:
        index["cases"] = _kept_cases(out_dir, index, set(layers)) + index["cases"]
    (out_dir / "index.json").write_text(_index_text(index))
    return index


def _kept_cases(out_dir: Path, index: Mapping[str, Any], recorded_layers: set[str]) -> list[dict[str, Any]]:
    """The cases of an existing corpus in ``out_dir`` for layers not recorded now, so that recording
    some layers adds to a corpus instead of replacing it.  Only a corpus of the same oracle versions
    can be added to: mixed versions would make the staleness check meaningless."""
    index_path = out_dir / "index.json"
    if not index_path.exists():
        return []
    existing = json.loads(index_path.read_text())
    for oracle, versions in index["versions"].items():
        if existing.get("versions", {}).get(oracle, versions) != versions:
            raise ValueError(f"{out_dir} was recorded with {oracle} {existing['versions'][oracle]}, the installed oracle "
                             f"is {versions}: re-record the whole corpus (keraspec record without --layers)")
    index["versions"].update({k: v for k, v in existing.get("versions", {}).items() if k not in index["versions"]})
    return [case for case in existing["cases"] if case["layer"] not in recorded_layers]


def _index_text(index: Mapping[str, Any]) -> str:
    """The index as JSON with one compact line per case: small, and a re-record diffs case by case."""
    head = {k: v for k, v in index.items() if k != "cases"}
    lines = [json.dumps(case, sort_keys=True, separators=(",", ":")) for case in index["cases"]]
    return (json.dumps(head, indent=1, sort_keys=True)[:-2] + ',\n "cases": [\n  '
            + ",\n  ".join(lines) + "\n ]\n}\n")


def draw_cases(layer: Any, oracle: str, dtype: str, examples: int, seed: int) -> list[Case]:
    """``examples`` distinct cases drawn deterministically from the spec's strategies."""
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
    return drawn
