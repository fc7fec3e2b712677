"""Loads the YAML spec files, validates them against the JSON Schema and resolves ``extends``.

Besides the package's own files (``spec/layers``), users can keep spec entries for their own
layers in folders of their own: ``add_spec_dirs`` (the pytest plugin's ``--spec-dir``, the CLI's
``--spec-dir``) or the environment variable ``KERASPEC_SPEC_DIRS`` (folders separated by
``os.pathsep``).  Their ``*.yaml`` files are validated by the same schema and loaded next to the
package's; a name (or alias) that clashes with a built-in layer, or with another user entry, is
refused (SpecFileError naming the file and the layer).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
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
#: The environment variable naming user spec folders (separated by os.pathsep).
SPEC_DIRS_ENV = "KERASPEC_SPEC_DIRS"
#: User spec folders given in this process (add_spec_dirs), after those of SPEC_DIRS_ENV.
_added_dirs: list[Path] = []


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


def load_file(path: Path, ref: str | None = None, display: str | None = None) -> dict[str, Any]:
    """Parse one spec file (safe_load only) and validate it against the schema (or its ``$defs/ref``);
    errors name the file as ``display`` (default: its file name)."""
    display = display or path.name
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise SpecFileError(f"{display}: not valid YAML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise SpecFileError(f"{display}: cannot be read: {exc.strerror or exc}") from None
    try:
        _check(data, ref)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise SpecFileError(f"{display}: {where or '(top level)'}: {exc.message}") from None
    return data


def _as_spec_dir(value: str | os.PathLike[str], source: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise SpecFileError(f"{source} {str(value)!r}: not a folder (a folder of spec *.yaml files is expected)")
    return path.resolve()


def add_spec_dirs(dirs: Iterable[str | os.PathLike[str]]) -> None:
    """Load the spec entries of the ``*.yaml`` files in ``dirs`` next to the package's, from now on
    in this process.  SpecFileError for a path that is not a folder (files are checked on load)."""
    for value in dirs:
        path = _as_spec_dir(value, "--spec-dir")
        if path not in _added_dirs:
            _added_dirs.append(path)


def user_spec_dirs() -> tuple[Path, ...]:
    """The user spec folders in force: those of KERASPEC_SPEC_DIRS, then those added (no repeats)."""
    found: list[Path] = []
    for value in os.environ.get(SPEC_DIRS_ENV, "").split(os.pathsep):
        if value.strip():
            path = _as_spec_dir(value.strip(), SPEC_DIRS_ENV)
            if path not in found:
                found.append(path)
    return tuple(found + [p for p in _added_dirs if p not in found])


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_all(spec_dir: Path = SPEC_DIR, user_dirs: Iterable[Path] | None = None) -> dict[str, LayerSpec]:
    """Every concrete layer spec, keyed by Keras class name: ``spec_dir``'s, then the user folders'
    (``user_dirs``; default: :func:`user_spec_dirs` for the package's spec, none for another)."""
    if user_dirs is None:
        user_dirs = user_spec_dirs() if spec_dir == SPEC_DIR else ()
    return _load_all(spec_dir, tuple(user_dirs))


@lru_cache(maxsize=None)
def _load_all(spec_dir: Path, user_dirs: tuple[Path, ...]) -> dict[str, LayerSpec]:
    raw: dict[str, tuple[str, dict[str, Any]]] = {}
    for path in sorted(spec_dir.glob("*.yaml")):
        data = load_file(path)
        for entry in data["layers"]:
            if entry["name"] in raw:
                raise SpecFileError(f"{path.name}: layer {entry['name']} is defined twice")
            raw[entry["name"]] = (data["family"], entry)
    # Names and aliases taken so far, and where: a user entry may take none of them.
    taken = {alias: "the built-in layer " + name for name, (_, e) in raw.items() for alias in [name, *e.get("aliases", [])]}
    for folder in user_dirs:
        for path in sorted(folder.glob("*.yaml")):
            data = load_file(path, display=str(path))
            for entry in data["layers"]:
                for name in [entry["name"], *entry.get("aliases", [])]:
                    if name in taken:
                        raise SpecFileError(f"{path}: layer {name} clashes with {taken[name]}; give your layer another name")
                    taken[name] = f"{entry['name']} of {path}"
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
