"""ChannelAffine for PyTorch: a keraspec Layer subclass (the implementation under test).

Run the conformance suite on it with (from this folder, so the three modules are importable)::

    PYTHONPATH=. ../../.venv/bin/python -m pytest ../../conformance/tests --spec-dir spec \
        --impl channel_affine_torch --layers ChannelAffine --hypothesis-profile=ci -q

This module is what ``--impl`` names: it exposes the layer under its Keras class name and
``use_flavor`` (the implementation contract), so the suite can compare it with both oracles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from keraspec.impl import activations
from keraspec.impl.base import InputSpec, Layer, Shape
from keraspec.impl.flavor import use_flavor  # noqa: F401 - part of the contract: the suite switches oracles with it
from keraspec.spec.loader import add_spec_dirs

# The layer validates its config against its spec entry, so the entry is loaded with the module.
add_spec_dirs([Path(__file__).parent / "spec"])


class ChannelAffine(Layer):
    """``activation(inputs * scale + shift)``, scale and shift one per channel (the last axis)."""

    def __init__(self, use_shift: bool = True, activation: Any = None, scale_initializer: Any = "ones",
                 shift_initializer: Any = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())  # checks the arguments against the spec entry; sets self.use_shift, ...
        self.activation = activations.get(activation)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape: Shape) -> None:
        channels = int(input_shape[-1])
        self.add_weight("scale", (channels,), self.scale_initializer)
        if self.use_shift:
            self.add_weight("shift", (channels,), self.shift_initializer)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: channels})
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        out = inputs * self.scale
        if self.use_shift:
            out = out + self.shift
        return self.activation(out)


__all__ = ["ChannelAffine", "use_flavor"]
