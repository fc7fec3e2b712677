"""Loads the YAML spec files, validates them against the JSON Schema and resolves ``extends``."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .model import LayerSpec

SPEC_DIR = Path(str(resources.files("keraspec.spec"))) / "layers"
OBJECTS_PATH = Path(str(resources.files("keraspec.spec"))) / "objects.yaml"
SCHEMA_PATH = Path(str(resources.files("keraspec.spec"))) / "schema.json"


class SpecFileError(ValueError):
    """A spec file that does not follow the schema, or refers to a base that is not there."""


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@lru_cache(maxsize=None)
def _validator(ref: str | None = None) -> Any:
    """A compiled validator for the whole schema, or for one of its ``$defs`` (``ref``).  The schema
    is checked against its meta-schema once here; ``jsonschema.validate`` would do it per call."""
    document = schema()
    target = document if ref is None else {"$defs": document["$defs"], "$ref": f"#/$defs/{ref}"}
    cls = jsonschema.validators.validator_for(document)
    cls.check_schema(target)
    return cls(target)


def _check(data: Any, ref: str | None = None) -> None:
    error = jsonschema.exceptions.best_match(_validator(ref).iter_errors(data))
    if error is not None:
        raise error


@lru_cache(maxsize=None)
def objects() -> dict[str, Any]:
    """The named-object spec (spec/objects.yaml): drawn values and per-value oracle limits."""
    return load_file(OBJECTS_PATH, "objects_file")


def load_file(path: Path, ref: str | None = None) -> dict[str, Any]:
    """Parse one spec file (safe_load only) and validate it against the schema (or its ``$defs/ref``)."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    try:
        _check(data, ref)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise SpecFileError(f"{path.name}: {where}: {exc.message}") from None
    return data


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@lru_cache(maxsize=None)
def load_all(spec_dir: Path = SPEC_DIR) -> dict[str, LayerSpec]:
    """Every concrete layer spec, keyed by Keras class name."""
    raw: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(spec_dir.glob("*.yaml")):
        data = load_file(path)
        for entry in data["layers"]:
            if entry["name"] in raw:
                raise SpecFileError(f"{path.name}: layer {entry['name']} is defined twice")
            raw[entry["name"]] = (data["family"], entry)

    def resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in seen:
            raise SpecFileError(f"extends cycle: {' -> '.join(seen + (name,))}")
        if name not in raw:
            raise SpecFileError(f"{seen[-1] if seen else '?'} extends unknown entry {name!r}")
        entry = raw[name][1]
        if "extends" not in entry:
            return entry
        base = resolve(entry["extends"], seen + (name,))
        merged = _deep_merge(base, {k: v for k, v in entry.items() if k != "extends"})
        merged["abstract"] = entry.get("abstract", False)
        # Aliases and docs belong to one class; they are never inherited.
        merged["aliases"] = entry.get("aliases", [])
        return merged

    specs: dict[str, LayerSpec] = {}
    for name, (family, _) in raw.items():
        entry = resolve(name)
        if entry.get("abstract", False):
            continue
        for pname, param in entry.get("params", {}).items():
            try:  # with extends resolved, every parameter must be complete
                _check(param, "param")
            except jsonschema.ValidationError as exc:
                raise SpecFileError(f"{name}.{pname}: {exc.message}") from None
        specs[name] = LayerSpec(entry, family, objects().get("oracle_limits", ()))
    return specs
