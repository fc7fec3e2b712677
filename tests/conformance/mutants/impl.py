"""The implementation under test of one mutant run (``--impl mutants.impl``): every layer of
keraspec.impl, with the mutants named in ``KERASPEC_MUTANTS`` (comma-separated ids) in place of
the layers they break."""

import os

from keraspec.impl.layers import *  # noqa: F401,F403 - every other layer unchanged

from mutants.base import select

globals().update({m.layer: m.cls for m in select(i for i in os.environ.get("KERASPEC_MUTANTS", "").split(",") if i)})
