"""Mutants of the merge layers."""

from __future__ import annotations

import torch

from keraspec.impl import merging

from mutants.base import mutant


@mutant("concatenate-drops-masks", layer="Concatenate", sets=("fast",),
        breaks="""Concatenates the values and drops the masks (compute_mask returns None, as a port that
        forgets Keras's mask concatenation does): no output mask where Keras concatenates the inputs'
        masks, ones standing in for an unmasked input.""",
        fails=["masks"], passes="forward")
class ConcatenateDropsMasks(merging.Concatenate):
    def compute_mask(self, inputs, mask=None):
        return None


@mutant("dot-normalizes-last-axis", layer="Dot",
        breaks="""With normalize=True, L2-normalises each input along its last axis (F.normalize's
        default dim, where the feature axis usually is) instead of along the contracted axis.""",
        fails=["forward", "gradients"], passes="config")
class DotNormalizesLastAxis(merging.Dot):
    def _normalize(self, x, axis):
        return super()._normalize(x, x.dim() - 1)


@mutant("average-halves", layer="Average",
        breaks="""Divides the sum by 2 (a port of the two-input case, (x0 + x1) / 2) instead of by the
        number of inputs.""",
        fails=["forward", "gradients"], passes="shapes")
class AverageHalves(merging.Average):
    def _merge(self, xs, masks):
        out = xs[0]
        for x in xs[1:]:
            out = torch.add(out, x)
        return out / 2
