"""Weights cross the numpy boundary in every dtype a layer may have, bfloat16 included."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import torch

from keraspec.impl.layers import Dense


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_set_then_get_weights_keeps_values_and_dtype(dtype: str) -> None:
    layer = Dense(3, dtype=dtype)
    layer.build((None, 2))
    numpy_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    # Values exactly representable in every dtype under test, so the round trip must be exact.
    kernel = (np.arange(6).reshape(2, 3) / 8).astype(numpy_dtype)
    bias = np.array([-1.5, 0.25, 3.0]).astype(numpy_dtype)
    layer.set_weights([kernel, bias])
    got = layer.get_weights()
    assert [w.dtype for w in got] == [np.dtype(numpy_dtype)] * 2
    np.testing.assert_array_equal(got[0].astype(np.float64), kernel.astype(np.float64))
    np.testing.assert_array_equal(got[1].astype(np.float64), bias.astype(np.float64))


def test_bfloat16_weights_accept_float32_arrays_and_round_them() -> None:
    layer = Dense(1, dtype="bfloat16")
    layer.build((None, 1))
    layer.set_weights([np.array([[1.0 + 2.0**-10]], np.float32), np.zeros(1, np.float32)])
    assert layer.kernel.dtype == torch.bfloat16
    assert float(layer.get_weights()[0][0, 0]) == 1.0  # 1 + 2^-10 rounds to 1 in bfloat16's 8-bit mantissa


def test_get_weights_returns_copies_not_views():
    """Arrays from get_weights must not change when the layer's weights change later (as Keras's don't)."""
    import numpy as np

    from keraspec.impl.layers import Dense

    layer = Dense(2)
    layer.build((None, 3))
    before = layer.get_weights()
    kept = [w.copy() for w in before]
    layer.set_weights([np.ones_like(w) for w in before])
    for got, want in zip(before, kept):
        np.testing.assert_array_equal(got, want)
