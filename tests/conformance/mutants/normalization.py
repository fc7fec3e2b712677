"""Mutants of the normalization layers."""

from __future__ import annotations

import torch

from keraspec.impl import normalization

from mutants.base import mutant


@mutant("batch-norm-torch-momentum", layer="BatchNormalization", sets=("fast",),
        breaks="""Takes momentum in torch's convention, as the weight of the new batch in the moving
        averages (moving = (1 - momentum) * moving + momentum * batch) where Keras's momentum is the
        decay (moving * momentum + batch * (1 - momentum)): with the default 0.99 the moving statistics
        jump to the batch's.  Outputs and gradients are untouched; only the weights after a training
        call show it.""",
        fails=["forward_training"], passes="forward")
class BatchNormalizationTorchMomentum(normalization.BatchNormalization):
    def _momentum_weights(self, momentum):
        return 1.0 - momentum, momentum


@mutant("batch-norm-unbiased-variance", layer="BatchNormalization",
        breaks="""Normalises with (and folds into the moving variance) the unbiased batch variance, n / (n - 1)
        times the biased one, as torch.var does by default, where Keras 3 and tf_keras's plain path use
        tf.nn.moments' biased one.  (tf_keras's fused kernel does fold in the unbiased variance, but
        normalises with the biased one; this mutant changes only Keras 3's path.)""",
        fails=["forward_training@keras3", "gradients@keras3"], passes="forward")
class BatchNormalizationUnbiasedVariance(normalization.BatchNormalization):
    def _moments_keras3(self, x, mask):
        mean, var = super()._moments_keras3(x, mask)
        n = x.numel() // mean.numel()
        return mean, var * (n / max(n - 1, 1))


@mutant("layer-norm-last-axis", layer="LayerNormalization",
        breaks="""Normalises over the last axis whatever `axis` says (torch's F.layer_norm habit of a trailing
        normalized_shape), then applies gamma and beta on their own axes: right for the default axis=-1,
        wrong for axis=1, -2 or [-2, -1] on a rank-3/4 input.""",
        fails=["forward"], passes="weights")
class LayerNormalizationLastAxis(normalization.LayerNormalization):
    def call(self, inputs):
        dims = sorted(self._axes(self.axis, tuple(inputs.shape)))
        x = inputs.float() if inputs.dtype in (torch.float16, torch.bfloat16) else inputs
        mean = x.mean(dim=-1, keepdim=True)
        var = (x - mean).square().mean(dim=-1, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.epsilon)
        gamma, beta = self._broadcast(self.gamma, x, dims), self._broadcast(self.beta, x, dims)
        if gamma is not None:
            y = y * gamma.to(y.dtype)
        if beta is not None:
            y = y + beta.to(y.dtype)
        return y.to(self._compute_dtype)
