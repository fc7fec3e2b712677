"""The known-mismatch registry: cases that are expected to fail, each with its reason.

Entries live in ``known_mismatches.yaml`` beside this module.  A matching failure is reported
as xfailed with the entry's reason; a matching case that passes is XPASS (and fails the strict
profile so stale entries get removed); an entry that matches no collected test is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from keraspec.spec.expr import Expr, compile_expr

REGISTRY_PATH = Path(str(resources.files("keraspec.conformance"))) / "known_mismatches.yaml"
#: ``unexplained``: a difference measured and reproducible whose cause is not isolated yet; the reason
#: says what was observed, not a guess at why.
CATEGORIES = ("our_bug", "oracle_bug", "oracle_difference", "spec_gap", "unsupported", "unexplained")
_SCOPE_KEYS = ("layer", "check", "oracle", "oracle_version", "device", "dtype", "impl")


@dataclass(frozen=True)
class Entry:
    id: str
    category: str
    reason: str
    scope: Mapping[str, Any]
    when: Expr | None = None  # predicate on the case (names: the config, `input`, `dtype`, `magnitude`, `values`)
    link: str = ""
    matched: list[str] = field(default_factory=list, compare=False, hash=False)

    def matches_target(self, attrs: Mapping[str, Any]) -> bool:
        for key in _SCOPE_KEYS:
            want = self.scope.get(key)
            if want is None:
                continue
            have = attrs.get(key)
            if isinstance(want, list) and have not in want or not isinstance(want, list) and have != want:
                return False
        return True

    def matches_case(self, config: Mapping[str, Any], input_shapes: Any, dtype: str, magnitude: int = 0,
                     values: str = "normal") -> bool:
        if self.when is None:
            return True
        env = dict(config, input=tuple(input_shapes[0]) if input_shapes else (), dtype=dtype, magnitude=magnitude,
                   values=values)
        try:
            return bool(self.when(env))
        except Exception:  # noqa: BLE001 - a predicate that cannot apply to this config does not match
            return False


def load_for_impl(path: str | Path, impl: str) -> list[Entry]:
    """An implementation's own known-mismatch file (``--xfails-file``): its entries apply to that
    implementation only, whatever scope they give, so they can never hide another one's failure."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"--xfails-file {path}: no such file")
    return [Entry(e.id, e.category, e.reason, {**e.scope, "impl": impl}, e.when, e.link) for e in load(path)]


class RegistryError(ValueError):
    """A known-mismatch file that cannot be read or breaks the format; names the file and entry."""


def load(path: Path = REGISTRY_PATH) -> list[Entry]:
    if not path.exists():
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: cannot read known mismatches: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries", []), list):
        raise RegistryError(f"{path}: expected a mapping with a list under 'entries'")
    entries = []
    for raw in data.get("entries", []):
        if not isinstance(raw, dict) or not raw.get("id"):
            raise RegistryError(f"{path.name}: every entry needs an id, got {raw!r}")
        if raw.get("category") not in CATEGORIES:
            raise RegistryError(f"{path.name}: entry {raw.get('id')!r}: category must be one of {CATEGORIES}")
        if not raw.get("reason"):
            raise RegistryError(f"{path.name}: entry {raw.get('id')!r} has no reason")
        entries.append(
            Entry(
                id=raw["id"],
                category=raw["category"],
                reason=raw["reason"],
                scope={k: raw[k] for k in _SCOPE_KEYS if k in raw},
                when=compile_expr(raw["when"]) if "when" in raw else None,
                link=raw.get("link", ""),
            )
        )
    return entries
