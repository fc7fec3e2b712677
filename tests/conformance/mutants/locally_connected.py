"""Mutants of the locally-connected layers (tf_keras only)."""

from __future__ import annotations

import math

import numpy as np

from keraspec.impl import locally_connected

from mutants.base import mutant


@mutant("locally-connected2d-position-order", layer="LocallyConnected2D", sets=("fast",),
        breaks="""Puts the kernel's per-position slices in the wrong order: implementation 1's output
        positions column-major (Keras: row-major), implementation 3's connected entries sorted by input
        index before output index (Keras: output first).""",
        fails=["forward", "gradients"], passes="weights")
class LocallyConnected2DPositionOrder(locally_connected.LocallyConnected2D):
    def _compact_index(self, spatial, out, channels):
        keras_shape, index = super()._compact_index(spatial, out, channels)
        if self.implementation == 1:
            positions = math.prod(out)
            column_major = np.arange(positions).reshape(out).T.reshape(-1)
            return keras_shape, index.reshape(positions, -1)[column_major].reshape(-1)
        # Implementation 3: the same connected entries, ordered by (input, output) flat index.
        r, f = self.rank, self.filters
        kernel = tuple(self.kernel_size)
        torch_pos = np.arange(math.prod(out) * channels * math.prod(kernel) * f).reshape((*out, channels, *kernel, f))
        grids = np.meshgrid(*[np.arange(d) for d in (*out, channels, *kernel, f)], indexing="ij", sparse=True)
        o, c, t, fo = grids[:r], grids[r], grids[r + 1: 2 * r + 1], grids[2 * r + 1]
        inside = np.ones((), dtype=bool)
        in_pos = []
        for d in range(r):
            pos = o[d] * self.strides[d] - self._pads_before()[d] + t[d]
            inside = inside & (pos >= 0) & (pos < spatial[d])
            in_pos.append(pos)
        inside = np.broadcast_to(inside, torch_pos.shape)

        def flat(coords, dims):
            return np.ravel_multi_index([np.broadcast_to(v, torch_pos.shape)[inside] for v in coords], tuple(dims))

        if self._channels_first:
            out_idx, in_idx = flat((fo, *o), (f, *out)), flat((c, *in_pos), (channels, *spatial))
        else:
            out_idx, in_idx = flat((*o, fo), (*out, f)), flat((*in_pos, c), (*spatial, channels))
        order = np.lexsort((out_idx, in_idx))  # the bug: by input index, then output index
        return keras_shape, torch_pos[inside][order]


@mutant("locally-connected1d-constraints-skipped", layer="LocallyConnected1D", sets=("fast",),
        breaks="apply_constraints() does nothing: the constraints are never projected after a step.",
        fails=["training_step"], passes="gradients")
class LocallyConnected1DConstraintsSkipped(locally_connected.LocallyConnected1D):
    def apply_constraints(self):
        pass


@mutant("locally-connected1d-channels-first-bias-transposed", layer="LocallyConnected1D",
        breaks="""For channels_first, adds the (out_positions, filters) bias transposed to (filters,
        out_positions); tf_keras reshapes it (no transpose).""",
        fails=["forward"], passes="shapes")
class LocallyConnected1DChannelsFirstBiasTransposed(locally_connected.LocallyConnected1D):
    def _plus_bias(self, y):
        if self.bias is None or not self._channels_first:
            return super()._plus_bias(y)
        return y + self.bias.movedim(-1, 0)
