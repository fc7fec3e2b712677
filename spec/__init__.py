"""keraspec.spec -- the machine-readable spec of Keras layers.

>>> from keraspec import spec
>>> spec.lookup("Permute").output_shape({"dims": (2, 1)}, (None, 10, 64))
(None, 64, 10)
"""

from __future__ import annotations

import difflib

from .expr import Expr, ExprError
from .loader import SpecFileError, load_all
from .model import (
    BASE_LAYER_ARGUMENTS,
    DTYPE_POLICIES,
    EDGE_VALUES,
    FLOAT_DTYPES,
    MIXED_POLICIES,
    ORACLE_PACKAGES,
    ORACLES,
    Constraint,
    Domain,
    LayerSpec,
    OracleLimit,
    ParamSpec,
    SpecConfigError,
    SpecTypeError,
    Stochastic,
    WeightSpec,
    compute_dtype,
    variable_dtype,
)

__all__ = [
    "BASE_LAYER_ARGUMENTS",
    "DTYPE_POLICIES",
    "EDGE_VALUES",
    "FLOAT_DTYPES",
    "MIXED_POLICIES",
    "ORACLE_PACKAGES",
    "ORACLES",
    "Constraint",
    "Domain",
    "Expr",
    "ExprError",
    "LayerSpec",
    "OracleLimit",
    "ParamSpec",
    "SpecConfigError",
    "SpecFileError",
    "SpecTypeError",
    "Stochastic",
    "UnknownLayerError",
    "WeightSpec",
    "compute_dtype",
    "families",
    "layers",
    "lookup",
    "variable_dtype",
]


class UnknownLayerError(KeyError, LookupError):
    """No layer of that name or alias is in the spec."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def layers(family: str | None = None) -> list[str]:
    """Names of every layer in the spec (optionally of one family), in file order."""
    return [name for name, s in load_all().items() if family is None or s.family == family]


def families() -> list[str]:
    return sorted({s.family for s in load_all().values()})


def _alias_table() -> dict[str, str]:
    table = {}
    for name, s in load_all().items():
        table[name] = name
        for alias in s.aliases:
            table[alias] = name
    return table


def lookup(name: str) -> LayerSpec:
    """The spec of a layer by Keras class name or alias; unknown names suggest close matches."""
    table = _alias_table()
    if name in table:
        return load_all()[table[name]]
    folded = {k.lower(): v for k, v in table.items()}
    if name.lower() in folded:
        return load_all()[folded[name.lower()]]
    close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UnknownLayerError(f"no layer named {name!r} in the spec{hint}")
