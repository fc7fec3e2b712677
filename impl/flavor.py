"""Which Keras the implementation imitates where the two oracles disagree.

``keras3`` (the ``keras`` package) and ``tf_keras`` (Keras 2) define a few things differently --
``hard_sigmoid`` is ``relu6(x + 3) / 6`` in one and ``clip(0.2 x + 0.5, 0, 1)`` in the other, for
example.  Code that has to choose asks :func:`get_flavor`.

There are two levels, so that a test harness can switch flavour for one block without disturbing
other threads: :func:`set_flavor` changes the process-wide default, and :func:`use_flavor`
overrides it for the current context only (a :class:`contextvars.ContextVar`, so each thread and
each asyncio task sees its own override).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterator

from keraspec.spec import ORACLES

#: The flavours there are: one per oracle, named like it.
FLAVORS: tuple[str, ...] = ORACLES
DEFAULT_FLAVOR = "keras3"

_default: str = DEFAULT_FLAVOR
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("keraspec_flavor", default=None)


def validate_flavor(name: str) -> str:
    """Return ``name`` if it is a flavour; otherwise raise ``ValueError`` listing the valid ones."""
    if isinstance(name, str) and name in FLAVORS:
        return name
    close = difflib.get_close_matches(str(name), FLAVORS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown flavor {name!r}: expected one of {list(FLAVORS)}.{hint}")


def set_flavor(name: str) -> None:
    """Set the process-wide default flavour (a :func:`use_flavor` block still takes precedence)."""
    global _default
    _default = validate_flavor(name)


def get_flavor() -> str:
    """The flavour in force here: the innermost :func:`use_flavor`, else the process default."""
    override = _override.get()
    return _default if override is None else override


def resolve_flavor(flavor: str | None) -> str:
    """``flavor`` validated, or the flavour in force when it is ``None``."""
    return get_flavor() if flavor is None else validate_flavor(flavor)


@contextlib.contextmanager
def use_flavor(name: str) -> Iterator[str]:
    """Use flavour ``name`` inside the ``with`` block (this thread/task only), then restore."""
    token = _override.set(validate_flavor(name))
    try:
        yield name
    finally:
        _override.reset(token)


__all__ = ["DEFAULT_FLAVOR", "FLAVORS", "get_flavor", "resolve_flavor", "set_flavor", "use_flavor", "validate_flavor"]
