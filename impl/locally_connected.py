"""Locally-connected layers: LocallyConnected1D/2D (tf_keras only), one class parameterised by ``rank``.

A locally-connected layer is a convolution whose weights are not shared: output position ``p``
has its own ``(features, filters)`` matrix.  tf_keras stores the kernel in one of three shapes,
chosen by ``implementation`` (see ``spec/layers/locally_connected.yaml``):

1. ``(P, prod(kernel_size) * C, filters)`` -- a matrix per output position, features flattened in
   the input's layout: ``(kernel..., C)`` for channels_last, ``(C, kernel...)`` for channels_first;
2. the dense ``(inputs, outputs)`` kernel ``in_spatial + (C,) + out_spatial + (filters,)``
   (channels_first: ``(C,) + in_spatial + (filters,) + out_spatial``), masked to the connected
   pairs in the forward pass;
3. a vector of the connected entries of the sparse ``(out_size * filters, in_size * C)`` matrix,
   in sorted index order.

Implementations 1 and 3 are stored in one torch layout, ``(P, C * prod(kernel_size), filters)``
with features in ``unfold``'s ``(C, kernel...)`` order, converted from Keras's shape once (in
``set_weights``) by a fixed index map (:class:`_IndexLayout`); for implementation 3 the kernel taps
that fall on 'same' padding have no Keras entry and stay zero.  Their forward pass is one
``unfold`` of the (padded) channels-first view and one ``bmm`` batched over output positions.
Implementation 2's weight *is* the dense matrix: every entry is a weight (get/set_weights,
regularizers and constraints see the unconnected ones too), so it is stored as it is and applied
as tf_keras does, one matmul with the precomputed 0/1 connectivity mask.

Two tf_keras behaviours that are easy to miss, both followed here:

* 'same' padding is the locally-connected one of ``conv_utils.conv_connected_inputs``, not
  TensorFlow's: output ``o`` sees inputs ``[o * s - k // 2, o * s - k // 2 + k)`` clipped to the
  input, whatever the stride or size (so ``k // 2`` zero cells before).
* The bias has shape ``out_spatial + (filters,)`` in both layouts; for channels_first
  ``backend.bias_add`` *reshapes* it to ``(filters,) + out_spatial`` (no transpose), which is what
  the view in :meth:`_LocallyConnected._plus_bias` does.

These layers exist in tf_keras only, so activations and serialization always follow tf_keras's
definitions, whatever flavour is in force.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import activations
from .base import InputSpec, Shape, WeightLayout, torch_dtype
from .flavor import use_flavor
from .spatial import SpatialLayer, conv_output_length, torch_pad_arg

#: The flavour these layers follow: tf_keras is the only Keras that has them.
FLAVOR = "tf_keras"


class _IndexLayout:
    """A weight stored in a different shape, related to Keras's by a fixed element map.

    ``index[j]`` is the position, in the flattened torch tensor, of element ``j`` of the flattened
    Keras tensor.  Torch positions no Keras element maps to hold zeros.  ``to_keras`` is a gather
    (differentiable, so regularizer penalties and gradients go through it); ``to_torch`` is the
    matching scatter into zeros.
    """

    def __init__(self, keras_shape: Sequence[int], torch_shape: Sequence[int], index: np.ndarray):
        self.keras_shape = tuple(int(d) for d in keras_shape)
        self.torch_shape = tuple(int(d) for d in torch_shape)
        if index.shape != (math.prod(self.keras_shape),):
            raise ValueError(f"index map of {index.shape[0]} entries for a Keras shape {self.keras_shape}")
        self._index = torch.as_tensor(index, dtype=torch.long)
        self._on_device: dict[torch.device, torch.Tensor] = {}

    def _index_on(self, device: torch.device) -> torch.Tensor:
        if device not in self._on_device:
            self._on_device[device] = self._index.to(device)
        return self._on_device[device]

    def to_torch(self, value: torch.Tensor) -> torch.Tensor:
        flat = value.new_zeros(math.prod(self.torch_shape))
        flat = flat.index_copy(0, self._index_on(value.device), value.reshape(-1))
        return flat.view(self.torch_shape)

    def to_keras(self, value: torch.Tensor) -> torch.Tensor:
        return value.reshape(-1)[self._index_on(value.device)].view(self.keras_shape)


class _LocallyConnected(SpatialLayer):
    """N-D convolution with unshared weights, ``activation(local_conv(x, kernel) + bias)``."""

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        implementation: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        with use_flavor(FLAVOR):
            self._configure(locals())
            self.activation = activations.get(activation)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def get_config(self) -> dict[str, Any]:
        with use_flavor(FLAVOR):
            return super().get_config()

    # -- geometry -------------------------------------------------------------------------------
    def _out_sizes(self, spatial: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(conv_output_length(n, k, s, 1, self.padding)
                     for n, k, s in zip(spatial, self.kernel_size, self.strides))

    def _pads_before(self) -> tuple[int, ...]:
        """Cells before each window's start: ``k // 2`` for 'same' (tf_keras's local rule), else 0."""
        return tuple(k // 2 if self.padding == "same" else 0 for k in self.kernel_size)

    # -- build ----------------------------------------------------------------------------------
    def build(self, input_shape: Shape) -> None:
        shape = self._check_shape(input_shape)
        self._validate_input(shape)  # every size known, the kernel fits ('valid')
        channels = int(shape[self._channel_axis])
        spatial = tuple(int(n) for n in self._spatial(shape))
        out = tuple(int(o) for o in self._out_sizes(spatial))
        self._in_spatial, self._out_spatial, self._channels = spatial, out, channels
        positions, taps = math.prod(out), math.prod(self.kernel_size)
        if self.implementation == 2:
            keras_shape = (
                (channels, *spatial, self.filters, *out) if self._channels_first
                else (*spatial, channels, *out, self.filters)
            )
            layout: Any = WeightLayout()
            self.register_buffer("_mask", self._dense_mask(spatial, out), persistent=False)
        else:
            keras_shape, index = self._compact_index(spatial, out, channels)
            layout = _IndexLayout(keras_shape, (positions, channels * taps, self.filters), index)
        self.add_weight("kernel", keras_shape, self.kernel_initializer, self.kernel_regularizer,
                        self.kernel_constraint, layout=layout)
        self.add_bias((*out, self.filters))
        # Every axis sizes the weights: once built, only the batch size may change.
        sizes = {axis: int(shape[axis]) for axis in range(1, self.rank + 2)}
        self.input_spec = InputSpec(ndim=self.rank + 2, axes=sizes)
        self.built = True

    def _window_starts(self, out: Sequence[int]) -> list[np.ndarray]:
        """Per axis, the (unclipped) input position of each output's first kernel tap."""
        return [np.arange(o) * s - p for o, s, p in zip(out, self.strides, self._pads_before())]

    def _dense_mask(self, spatial: Sequence[int], out: Sequence[int]) -> torch.Tensor:
        """Implementation 2's 0/1 connectivity, shaped to broadcast against the dense kernel."""
        mask = np.ones((), dtype=bool)
        for n, k, start in zip(spatial, self.kernel_size, self._window_starts(out)):
            i = np.arange(n)[:, None]
            connected = (start[None, :] <= i) & (i < start[None, :] + k)  # (n, o) for this axis
            # Accumulate as (in_1..in_d, out_1..out_d): new input axis before the outputs.
            d = mask.ndim // 2
            mask = mask[(slice(None),) * d + (None,) + (slice(None),) * d + (None,)] & \
                connected.reshape((1,) * d + (n,) + (1,) * d + (connected.shape[1],))
        r = self.rank
        if self._channels_first:  # (1, in..., 1, out...)
            mask = mask.reshape((1, *mask.shape[:r], 1, *mask.shape[r:]))
        else:  # (in..., 1, out..., 1)
            mask = mask.reshape((*mask.shape[:r], 1, *mask.shape[r:], 1))
        # Applied to the kernel in the call, so in the compute dtype (the kernel's dtype there).
        return torch.as_tensor(mask, dtype=torch_dtype(self.compute_dtype), device=self._device or torch.device("cpu"))

    def _compact_index(
        self, spatial: Sequence[int], out: Sequence[int], channels: int
    ) -> tuple[tuple[int, ...], np.ndarray]:
        """Keras's kernel shape for implementation 1 or 3, and where each of its entries lives in the
        torch kernel ``(P, C * prod(kernel_size), filters)`` (features in ``(C, kernel...)`` order)."""
        r, f = self.rank, self.filters
        kernel = tuple(self.kernel_size)
        # Torch flat position of every (out..., C, taps..., filter) cell.
        torch_pos = np.arange(math.prod(out) * channels * math.prod(kernel) * f).reshape((*out, channels, *kernel, f))
        if self.implementation == 1:
            # Keras: (P, features, f) with features (kernel..., C) for channels_last, (C, kernel...) for channels_first.
            if self._channels_first:
                keras_order = torch_pos
            else:
                keras_order = torch_pos.transpose(*range(r), *range(r + 1, 2 * r + 1), r, 2 * r + 1)
            keras_shape = (math.prod(out), channels * math.prod(kernel), f)
            return keras_shape, keras_order.reshape(-1)
        # Implementation 3: the connected cells, ordered as tf_keras sorts its (out_idx, in_idx) pairs.
        grids = np.meshgrid(*[np.arange(d) for d in (*out, channels, *kernel, f)], indexing="ij", sparse=True)
        o, c, t, fo = grids[:r], grids[r], grids[r + 1: 2 * r + 1], grids[2 * r + 1]
        inside = np.ones((), dtype=bool)
        in_pos = []
        for d in range(r):
            pos = o[d] * self.strides[d] - self._pads_before()[d] + t[d]
            inside = inside & (pos >= 0) & (pos < spatial[d])
            in_pos.append(pos)
        full = torch_pos.shape
        inside = np.broadcast_to(inside, full)

        def flat(coords: Sequence[np.ndarray], dims: Sequence[int]) -> np.ndarray:
            """Row-major flat index of the connected cells' coordinates."""
            return np.ravel_multi_index([np.broadcast_to(v, full)[inside] for v in coords], tuple(dims))

        if self._channels_first:
            out_idx, in_idx = flat((fo, *o), (f, *out)), flat((c, *in_pos), (channels, *spatial))
        else:
            out_idx, in_idx = flat((*o, fo), (*out, f)), flat((*in_pos, c), (*spatial, channels))
        order = np.lexsort((in_idx, out_idx))  # by output index, then input index
        return (int(inside.sum()),), torch_pos[inside][order]

    # -- call -----------------------------------------------------------------------------------
    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        batch = inputs.shape[0]
        out, f = self._out_spatial, self.filters
        if self.implementation == 2:
            weights = (self.kernel * self._mask).reshape(-1, math.prod(out) * f)
            flat = inputs.reshape(batch, -1)
            if flat.dtype not in _SPARSE_MATMUL_DTYPES or bool(torch.isfinite(flat).all()):
                y = flat @ weights
            else:  # tf_keras multiplies by the masked kernel as a sparse matrix (b_is_sparse): an inf
                # or NaN input is never multiplied by a zero of the kernel, which a dense product would
                y = torch.sparse.mm(weights.t().to_sparse(), flat.t()).t()
            y = y.reshape(batch, *((f, *out) if self._channels_first else (*out, f)))
        else:
            x = self._to_channels_first(inputs)
            if self.padding == "same":
                axes = zip(self._pads_before(), out, self.strides, self.kernel_size, self._in_spatial)
                pads = [(p, max(0, (o - 1) * s + k - p - n)) for p, o, s, k, n in axes]
                x = F.pad(x, torch_pad_arg(pads))
            for d in range(self.rank):  # (B, C, out..., kernel...)
                x = x.unfold(2 + d, self.kernel_size[d], self.strides[d]).narrow(2 + d, 0, out[d])
            r = self.rank
            patches = x.permute(*range(2, 2 + r), 0, 1, *range(2 + r, 2 + 2 * r)).reshape(math.prod(out), batch, -1)
            y = torch.bmm(patches, self.kernel)  # (P, B, filters): one contraction for every position
            y = (y.permute(1, 2, 0).reshape(batch, f, *out) if self._channels_first
                 else y.transpose(0, 1).reshape(batch, *out, f))
        return self.activation(self._plus_bias(y))

    def _plus_bias(self, y: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return y
        if self._channels_first:  # tf_keras reshapes (out..., filters) to (filters, out...): a view
            return y + self.bias.view(self.filters, *self._out_spatial)
        return y + self.bias

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = self._check_shape(input_shape)
        out = self._out_sizes(self._spatial(shape))
        window = f"kernel_size={self.kernel_size}, strides={self.strides}, padding={self.padding!r}"
        return self._windowed_output_shape(shape, out, self.filters, window)


#: The dtypes TensorFlow's sparse matmul (SparseMatMul) exists for; tf_keras's ``b_is_sparse`` falls
#: back to a dense product in the others.
_SPARSE_MATMUL_DTYPES = (torch.float32, torch.bfloat16)


class LocallyConnected1D(_LocallyConnected):
    rank = 1


class LocallyConnected2D(_LocallyConnected):
    rank = 2
