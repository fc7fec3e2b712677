"""The recorded corpus: it replays with no TensorFlow installed, and it is not stale."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keraspec import spec
from keraspec.conformance.corpus import DEFAULT_CORPUS, Corpus, variant_name
from keraspec.conformance.tolerance import compare, tolerance

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("tensorflow", "keras", "tf_keras")


def _blocker(tmp_path: Path) -> Path:
    """A folder that shadows TensorFlow and Keras with packages that refuse to import."""
    for name in BLOCKED:
        (tmp_path / "block" / name).mkdir(parents=True)
        (tmp_path / "block" / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    return tmp_path / "block"


def test_replay_runs_without_tensorflow(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(_blocker(tmp_path)), KERASPEC_RUN_ID="replay")
    results = tmp_path / "results"
    out = subprocess.run(
        [sys.executable, "-m", "keraspec.spec.cli", "replay", "--families", "core", "-p", "no:randomly",
         "--results", str(results), "-k", "not test_errors"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = [json.loads(line) for f in results.glob("*.jsonl") for line in f.read_text().splitlines()]
    statuses = [r["status"] for r in records if r["kind"] == "case"]
    assert statuses.count("passed") > 100, f"replay checked too little: {statuses.count('passed')} passed"
    assert "failed" not in statuses
    assert "is not installed here" not in out.stdout + out.stderr  # nothing even tried TensorFlow


def _sample(corpus: Corpus):
    seen = set()
    for rec in corpus.recorded:
        if (rec.case.layer, rec.oracle) not in seen:
            seen.add((rec.case.layer, rec.oracle))
            yield rec


def test_committed_corpus_is_not_stale():
    """Re-record one case per layer and oracle with the installed oracle; it must agree."""
    pytest.importorskip("tensorflow")
    from keraspec.conformance import oracle as oracles
    from keraspec.conformance.strategies import make_inputs

    corpus = Corpus(DEFAULT_CORPUS)
    problems = []
    for rec in _sample(corpus):
        adapter = oracles.get(rec.oracle)
        if corpus.versions.get(rec.oracle) != adapter.versions():
            problems.append(f"{rec.oracle}: corpus recorded with {corpus.versions.get(rec.oracle)}, installed {adapter.versions()}")
            continue
        layer = spec.lookup(rec.case.layer)
        recorded = corpus.run(rec.oracle, rec.case, training=False, with_mask=False)
        live = adapter.run(layer, rec.case.config, make_inputs(layer, rec.case), rec.case.dtype, False,
                           weight_seed=rec.case.seed + 1, cotangent_seed=rec.case.seed + 2)
        tol = tolerance(rec.case.dtype, "cpu", "elementwise")
        for name in ("outputs", "grad_inputs", "grad_weights"):
            for got, want in zip(getattr(live, name), getattr(recorded, name)):
                c = compare(got, want, tol, f"{rec.case.layer}/{rec.oracle} {name} ({variant_name(False, False)})")
                if not c.ok:
                    problems.append(c.detail)
    assert not problems, "the committed corpus disagrees with the installed oracle; re-record it " \
                         "(`keraspec record`):\n" + "\n".join(problems)


def test_corpus_covers_every_runnable_layer():
    corpus = Corpus(DEFAULT_CORPUS)
    missing = [(name, oracle) for name in spec.layers() for oracle in spec.lookup(name).oracles
               if spec.lookup(name).input.max_count > 0 and not corpus.has(name, oracle)]
    assert not missing, f"layers with no recorded runs (run `keraspec record --layers ...`): {missing}"


def test_corpus_is_small():
    size = sum(p.stat().st_size for p in DEFAULT_CORPUS.iterdir())
    # Two drawn cases, one with ties and one with edge values per layer, oracle and dtype, for 65
    # layers: about 17 MiB.  (The next families need a size plan: a corpus per family, fetched on demand.)
    assert size < 24 * 2**20, f"the committed corpus is {size / 2**20:.1f} MiB; keep it small"


def test_regenerated_inputs_match_the_recorded_ones():
    corpus = Corpus(DEFAULT_CORPUS)
    rec = corpus.recorded[0]
    run = corpus.run(rec.oracle, rec.case, False, False)  # raises if inputs regenerate differently
    assert run.outputs and all(np.isfinite(o).all() for o in run.outputs)


def test_recording_some_layers_adds_to_a_corpus(tmp_path):
    from keraspec.conformance.corpus import record

    record(tmp_path, layers=["Dense"], oracles=["keras3"], dtypes=["float32"], examples=1)
    record(tmp_path, layers=["Activation"], oracles=["keras3"], dtypes=["float32"], examples=1)
    corpus = Corpus(tmp_path)
    assert corpus.has("Dense", "keras3") and corpus.has("Activation", "keras3")
    for layer in ("Dense", "Activation"):
        case = corpus.cases(layer, "keras3", "float32")[0]
        assert corpus.run("keras3", case, training=False, with_mask=False).outputs  # arrays still load


def test_adding_to_a_corpus_of_other_oracle_versions_is_refused(tmp_path):
    from keraspec.conformance.corpus import record

    record(tmp_path, layers=["Dense"], oracles=["keras3"], dtypes=["float32"], examples=1)
    index = json.loads((tmp_path / "index.json").read_text())
    index["versions"]["keras3"]["keras"] = "0.0.1"
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="re-record the whole corpus"):
        record(tmp_path, layers=["Activation"], oracles=["keras3"], dtypes=["float32"], examples=1)
