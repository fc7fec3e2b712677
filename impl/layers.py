"""Every public layer class of keraspec.impl under its Keras name and its Keras aliases.

This module is the implementation contract's entry point: the conformance suite looks layers up
here by Keras class name (``--impl`` points it at any other module that follows the contract).
"""

from __future__ import annotations

import importlib
import importlib.util

from keraspec import spec as _spec
from keraspec.spec import loader as _loader

from .base import Layer, iter_layers
from .flavor import use_flavor

#: Modules holding layers the spec does not draw (a Lambda wraps a user's function: no oracle can
#: run it), beside the one module per spec family.
UNSPECIFIED_LAYER_MODULES = ("lambda_layer",)

#: The family modules of keraspec.impl: one per layer family of the spec, named like its YAML file (a
#: family whose module does not exist yet is simply not implemented: the suite says so per layer).
#: (The package's own families only: a user's --spec-dir family lives in the user's module.)
FAMILY_MODULES = tuple(
    name for name in (*sorted({s.family for s in _loader.load_all(_loader.SPEC_DIR, user_dirs=()).values()}),
                      *UNSPECIFIED_LAYER_MODULES)
    if importlib.util.find_spec(f"keraspec.impl.{name}") is not None)

_registry: dict[str, type[Layer]] = {}
for _module_name in FAMILY_MODULES:
    _module = importlib.import_module(f"keraspec.impl.{_module_name}")
    for _name, _cls in iter_layers(_module):
        _registry[_name] = _cls
for _name in list(_registry):
    try:
        _aliases = _spec.lookup(_name).aliases
    except KeyError:
        continue
    for _alias in _aliases:
        _registry.setdefault(_alias, _registry[_name])

globals().update(_registry)
# use_flavor is part of the implementation contract: the suite selects each oracle's semantics with it.
__all__ = sorted(_registry) + ["use_flavor"]


def get(name: str) -> type[Layer]:
    """The layer class for a Keras class name or alias."""
    try:
        return _registry[name]
    except KeyError:
        raise KeyError(f"keraspec.impl has no layer {name!r}") from None
