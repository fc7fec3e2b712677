"""A pytest plugin for mutant runs (``-p mutants.noshrink``): ``<profile>-noshrink``, each of the
suite's hypothesis profiles without the shrink and explain phases.

The examples are the profile's own (same budget, same seeds, same draws) and so is every verdict;
what is dropped is only the search for a minimal failing example after a check has failed, which a
mutant run does not need and which costs most of its time (a failing check shrinks for tens of
seconds, running the oracle for every candidate).
"""

from hypothesis import Phase, settings

import keraspec.conformance.plugin  # noqa: F401 - registers the suite's profiles (ci, dev, thorough)

for _name in ("ci", "dev", "thorough"):
    _base = settings.get_profile(_name)
    settings.register_profile(f"{_name}-noshrink", _base,
                              phases=[p for p in _base.phases if p not in (Phase.shrink, Phase.explain)])
