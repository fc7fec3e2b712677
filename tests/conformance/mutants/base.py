"""What a mutant is, and the one list of them.

A mutant is a subclass of a correct ``keraspec.impl`` layer that breaks ONE behaviour the way a
real porting bug would.  It is declared with :func:`mutant`, which names the checks that must
fail on it and one check that must pass (a check that does not look at the broken behaviour, so a
mutant that breaks everything is not mistaken for a good one).

Check names are the catalogue's (``keraspec.conformance.catalogue.CHECKS``), optionally narrowed:

``"forward"``            the check, on every oracle the mutant runs on;
``"weights@tf_keras"``   on that oracle only (a behaviour only one oracle's flavour has);
``"errors:rate.max"``    the errors check of one rule (plain ``"errors"``: at least one rule fails).

The family modules next to this one (one per spec family) hold the mutants; :mod:`mutants.impl`
puts a selection of them in place of the layers they break, for one ``--impl`` run, and
:mod:`mutants.run` runs them and prints the verdicts.

Adding a mutant: subclass the correct layer in its family's module, change the one behaviour, and
decorate the class with ``@mutant(id, layer=..., breaks=..., fails=[...], passes=...)``; give
``sets=("fast",)`` only if it is the one fast mutant of its layer (the fast set runs as one
process, so one mutant per layer) and the CI profile's draws reach the behaviour in float32.  Check
the verdict with ``run.py --only ID --profile ci`` (and ``--profile dev``).  A mutant the suite
cannot catch is either a hole in the suite (keep it, and fix the suite) or an equivalent mutant
(it changes nothing the oracle can observe: drop it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: The family modules, one per spec family (``keraspec layers``).
FAMILIES = ("core", "convolutional", "pooling", "reshaping", "regularization", "locally_connected",
            "advanced_activations", "merging", "normalization")
#: The sets: ``fast`` runs in ``make test`` (CI profile), ``dev`` is ``make mutants`` (dev profile).
SETS = ("fast", "dev")


@dataclass(frozen=True)
class Expectation:
    check: str
    rule: str | None = None
    oracle: str | None = None

    @classmethod
    def parse(cls, text: str) -> Expectation:
        text, _, oracle = text.partition("@")
        check, _, rule = text.partition(":")
        return cls(check, rule or None, oracle or None)

    def __str__(self) -> str:
        return self.check + (f":{self.rule}" if self.rule else "") + (f"@{self.oracle}" if self.oracle else "")


@dataclass(frozen=True)
class Mutant:
    id: str
    layer: str  # the Keras layer it replaces
    family: str
    breaks: str  # the behaviour it breaks, as the porting bug would
    fails: tuple[Expectation, ...]
    passes: Expectation
    sets: tuple[str, ...]
    dtype: str  # the dtype the fast set runs it in
    cls: type


_MUTANTS: dict[str, Mutant] = {}


def mutant(id: str, *, layer: str, breaks: str, fails: Iterable[str], passes: str, sets: Iterable[str] = ("dev",),
           dtype: str = "float32") -> Callable[[type], type]:
    """Declare the decorated class a mutant of ``layer``.  The class keeps its own Python name in
    the family module (several mutants of one layer live side by side) and answers to the layer's
    name everywhere else (its spec entry, error messages, the impl module)."""

    sets = tuple(sets)
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise ValueError(f"mutant {id}: unknown set(s) {unknown}; expected {SETS}")
    if "fast" in sets and "dev" not in sets:
        sets = (*sets, "dev")  # the dev set is the larger one: every mutant

    def register(cls: type) -> type:
        if id in _MUTANTS:
            raise ValueError(f"two mutants are called {id!r}")
        cls.spec_name = layer
        cls.__name__ = cls.__qualname__ = layer
        family = cls.__module__.rsplit(".", 1)[-1]
        _MUTANTS[id] = Mutant(id, layer, family, " ".join(breaks.split()), tuple(Expectation.parse(f) for f in fails),
                              Expectation.parse(passes), sets, dtype, cls)
        return cls

    return register


def all_mutants() -> list[Mutant]:
    """Every mutant, family by family, in declaration order."""
    for family in FAMILIES:
        importlib.import_module(f"{__package__ or 'mutants'}.{family}")
    return list(_MUTANTS.values())


def select(ids: Iterable[str]) -> list[Mutant]:
    """The mutants of these ids; at most one per layer (one impl module has one class per name)."""
    by_id = {m.id: m for m in all_mutants()}
    chosen = []
    for i in ids:
        if i not in by_id:
            raise KeyError(f"no mutant {i!r}; known: {', '.join(by_id)}")
        chosen.append(by_id[i])
    layers = [m.layer for m in chosen]
    clash = sorted({name for name in layers if layers.count(name) > 1})
    if clash:
        raise ValueError(f"one run can hold one mutant per layer; several for {clash}")
    return chosen
