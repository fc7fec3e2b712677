"""Benchmark cases of the recurrent family (merged into bench/run.py's CASES).

The reference is torch's own fused kernel (what ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` call), given
weights already in torch's layout -- re-laid out once here, outside the timed call, as a torch user
holding an ``nn.LSTM`` would have them.  Ours re-lays Keras's layout on every call (a transpose, and
for GRU a column gather into torch's [r, z, n] order), which is part of what is measured.
GRU(reset_after=False) has no torch kernel: ours runs the general loop, and its reference is the
same recurrence written as a plain torch loop.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

# Batch 32, 50 steps, 32 features, 64 units (the goal: ours <= 1.15x torch, >= 3x faster than
# Keras 3 on torch for LSTM and GRU).
SHAPE = (32, 50, 32)
UNITS = 64


def _fused(kind: str) -> Callable[[Any], Callable[[torch.Tensor], torch.Tensor]]:
    def reference(layer: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        weights = [w.detach().clone().contiguous() for w in layer._weights_for_torch()]
        fn = {"lstm": torch._VF.lstm, "gru": torch._VF.gru, "rnn_tanh": torch._VF.rnn_tanh}[kind]

        def run(x: torch.Tensor) -> torch.Tensor:
            h0 = x.new_zeros((1, x.shape[0], UNITS))
            hx = (h0, h0) if kind == "lstm" else h0
            return fn(x, hx, weights, True, 1, 0.0, False, False, True)[1][0]

        return run

    return reference


def _gru_reset_before(layer: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """Keras's GRU with reset_after=False as a plain torch loop (no fused kernel computes it)."""
    cell = layer.cell
    kernel, recurrent_kernel, bias = (w.detach() for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    units = UNITS

    def run(x: torch.Tensor) -> torch.Tensor:
        projected = x @ kernel + bias
        h = x.new_zeros((x.shape[0], units))
        for t in range(x.shape[1]):
            x_z, x_r, x_h = projected[:, t].split(units, dim=-1)
            zr = h @ recurrent_kernel[:, : 2 * units]
            z = torch.sigmoid(x_z + zr[:, :units])
            r = torch.sigmoid(x_r + zr[:, units:])
            hh = torch.tanh(x_h + (r * h) @ recurrent_kernel[:, 2 * units:])
            h = z * h + (1 - z) * hh
        return h

    return run


CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], Any]] = {
    "LSTM": ({"units": UNITS}, SHAPE, _fused("lstm")),
    "GRU": ({"units": UNITS}, SHAPE, _fused("gru")),
    "GRU[reset_after=False]": ({"units": UNITS, "reset_after": False}, SHAPE, _gru_reset_before),
    "SimpleRNN": ({"units": UNITS}, SHAPE, _fused("rnn_tanh")),
}
