"""Bench cases of the preprocessing layers and EinsumDense (merged into bench/run.py's CASES).

Each reference is the plain torch computation of the same math from ours' constants or weights.
"""

from __future__ import annotations

from typing import Any

import torch

CASES: dict[str, tuple[dict[str, Any], tuple[int, ...], Any]] = {
    "Rescaling": ({"scale": 1 / 255, "offset": -1.0}, (32, 112, 112, 3),
                  lambda l: (lambda x, s=l._scale, o=l._offset: x * s + o)),
    "Rescaling[per_channel]": ({"scale": [0.5, 0.25, 2.0], "offset": [0.0, 1.0, -1.0]}, (32, 112, 112, 3),
                               lambda l: (lambda x, s=l._scale, o=l._offset: x * s + o)),
    # A view of the input, as the plain slice is.
    "CenterCrop": ({"height": 96, "width": 96}, (32, 112, 112, 3), lambda l: (lambda x: x[:, 8:104, 8:104, :])),
    "Normalization": ({"mean": [0.5, 0.4, 0.3], "variance": [0.1, 0.2, 0.3]}, (32, 112, 112, 3),
                      lambda l: (lambda x, m=l._mean, s=l._std: (x - m) / s)),
    # Plain torch's bilinear resize (half-pixel centres, as TF's): a fused kernel the TF-exact
    # per-axis taps are measured against.
    "Resizing": ({"height": 160, "width": 160}, (32, 112, 112, 3),
                 lambda l: (lambda x: torch.nn.functional.interpolate(
                     x.permute(0, 3, 1, 2), size=(160, 160), mode="bilinear", align_corners=False).permute(0, 2, 3, 1))),
    "EinsumDense": ({"equation": "abc,cde->abde", "output_shape": (None, 8, 64), "bias_axes": "de",
                     "activation": "relu"}, (32, 128, 256),
                    lambda l: (lambda x, k=l.kernel, b=l.bias: torch.relu(torch.einsum("abc,cde->abde", x, k) + b))),
    "EinsumDense[dense]": ({"equation": "ab,bc->ac", "output_shape": 256}, (64, 512),
                           lambda l: (lambda x, k=l.kernel: torch.einsum("ab,bc->ac", x, k))),
}
