"""The suite must find bugs: run it against deliberately broken implementations (mutants).

Each mutant (``tests/conformance/mutants/``, one module per spec family) breaks one behaviour of a
correct layer the way a real porting bug would; the checks that own that behaviour must fail on it,
and a check that does not look at that behaviour must still pass.  A check that cannot fail would
show up here as a mutant that survives.

This is the fast set -- at least one mutant per family and per check kind, on both oracles, in
float32 -- run as ONE pytest process under the CI profile.  ``make mutants`` runs every mutant
under the dev profile, in float32 and float64, and prints the kill rate.
"""

import sys
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutants.base import FAMILIES, all_mutants  # noqa: E402
from mutants.run import rounds, run, summary, table  # noqa: E402

FAST = [m for m in all_mutants() if "fast" in m.sets]


def test_fast_set_covers_every_family_and_check_kind():
    from keraspec.conformance.catalogue import TARGET_CHECKS

    assert {m.family for m in FAST} == set(FAMILIES)
    named = {e.check for m in FAST for e in m.fails}
    assert named >= set(TARGET_CHECKS) | {"errors"}, f"no fast mutant for {sorted(set(TARGET_CHECKS) - named)}"
    assert len(rounds(FAST)) == 1, "the fast set runs as one process: one mutant per layer"


def test_every_mutant_is_caught():
    cells, problems = run(FAST, profile="ci")
    text, ok = summary(cells)
    assert not problems, "\n".join(problems)
    assert ok, f"{text}\n{table(cells)}"
