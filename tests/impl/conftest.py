"""Shared fixtures for the keraspec.impl unit tests: the oracles, imported once per session.

TensorFlow, Keras 3 (on the TensorFlow backend) and tf_keras are imported lazily by
session-scoped fixtures, so tests that need no oracle run without TensorFlow installed and the
ones that do pay the import once.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def tf() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="session")
def keras3(tf: ModuleType) -> ModuleType:
    """Keras 3 on the TensorFlow backend (the ``keras3`` oracle)."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"keras was imported with the {keras.backend.backend()!r} backend; the oracle needs tensorflow")
    return keras


@pytest.fixture(scope="session")
def tf_keras(tf: ModuleType) -> ModuleType:
    """Keras 2 (the ``tf_keras`` oracle)."""
    return pytest.importorskip("tf_keras")


@pytest.fixture
def oracle(request: pytest.FixtureRequest):
    """``oracle("keras3")`` / ``oracle("tf_keras")``: that oracle's module (skips if missing)."""

    def get(name: str) -> ModuleType:
        return request.getfixturevalue(name)

    return get
