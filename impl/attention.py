"""Dot-product and additive attention: Keras's ``Attention`` and ``AdditiveAttention``.

Both take a list ``[query, value]`` or ``[query, value, key]`` (key defaults to value), compute
scores ``(batch, Tq, Tv)``, mask them (the value mask and, with ``use_causal_mask``, the lower
triangle), softmax over Tv and return ``softmax(scores) @ value``, zeroed where the query mask is off.

Where the oracles differ: tf_keras *multiplies* the result by the query mask (a NaN or inf at a masked
query step stays NaN) where Keras 3 selects zero; tf_keras keeps the deprecated ``causal`` constructor
argument (and leaves it out of its config); Keras 3 has a ``seed``; AdditiveAttention has no
``score_mode`` in either.  Masked scores are lowered by 1e9 (65504 in float16) in both, as
``scores - large`` rather than set to it, which is what the outputs and gradients see.
"""

from __future__ import annotations

from typing import Any

import torch

import math
import string

from .base import Layer
from .einsum_dense import EinsumDense

#: How far both oracles lower a masked score before the softmax, by dtype (float16's largest finite
#: value, where 1e9 would overflow to -inf).
_MASKED_SCORE_OFFSET = {torch.float16: 65504.0}
_DEFAULT_MASKED_SCORE_OFFSET = 1.0e9


class _BaseAttention(Layer):
    """Shared by the family: the input list, the masks, the softmax and the weighted sum."""

    supports_masking = True

    def _configure_attention(self, arguments: dict[str, Any]) -> None:
        """Validate the constructor's arguments; one the flavour's oracle lacks (``causal`` in Keras 3,
        ``seed`` in tf_keras) is refused unless left at its default."""
        given = {k: v for k, v in arguments.items() if k not in ("self", "kwargs", "__class__")}
        foreign = [name for name, p in type(self).spec().params.items() if name in given and not p.in_oracle(self._flavor)
                   and given[name] != p.default]
        if foreign:
            raise TypeError(f"{type(self).__name__} '{self.name}': unrecognized argument(s) {foreign} under the "
                            f"{self._flavor} flavour [parameter(s): {', '.join(foreign)}]")
        own = {k: v for k, v in given.items() if type(self).spec().params[k].in_oracle(self._flavor)}
        self._configure(own)
        if self._tf_keras:
            # tf_keras reads ``causal`` in the call but leaves it out of get_config.
            self._causal = bool(self._config.pop("causal", False))
        else:
            self._causal = False

    # -- inputs ------------------------------------------------------------------------------------
    def _split(self, inputs: Any, mask: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any, Any]:
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{name} layer '{self.name}' must be called on a list of inputs, namely [query, value] "
                             f"or [query, value, key]. Received: a single tensor of shape {tuple(inputs.shape)}")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} layer '{self.name}' accepts inputs list of length 2 or 3, namely [query, value] "
                             f"or [query, value, key]. Received length: {len(inputs)}")
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        shapes = [tuple(x.shape) for x in inputs]
        if query.dim() < 3 or value.dim() != query.dim() or key.dim() != query.dim():
            raise ValueError(f"{name} layer '{self.name}': query, value and key must have the same rank, at least 3 "
                             f"(batch, steps, features). Received input shapes: {shapes}")
        if key.shape[-2] != value.shape[-2]:
            raise ValueError(f"{name} layer '{self.name}': key and value must have the same number of steps. "
                             f"Received input shapes: {shapes}")
        if key.shape[-1] != query.shape[-1]:
            raise ValueError(f"{name} layer '{self.name}': query and key must have the same last dimension. "
                             f"Received input shapes: {shapes}")
        if mask is not None and not isinstance(mask, (list, tuple)):
            raise ValueError(f"{name} layer '{self.name}' mask must be a list, namely [query_mask, value_mask]. "
                             f"Received: a single mask of shape {tuple(mask.shape)}")
        query_mask = mask[0] if mask else None
        value_mask = mask[1] if mask and len(mask) > 1 else None
        return query, value, key, query_mask, value_mask

    def build(self, input_shape: Any) -> None:
        self._build_scores(input_shape)
        self.built = True

    def _build_scores(self, input_shape: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the call ------------------------------------------------------------------------------------
    def call(self, inputs: Any, mask: Any = None, training: bool = False, return_attention_scores: bool = False,
             use_causal_mask: bool = False) -> Any:
        query, value, key, query_mask, value_mask = self._split(inputs, mask)
        scores = self._scores(query, key)
        keep = None
        if value_mask is not None:
            keep = value_mask.to(torch.bool).unsqueeze(-2)
        if use_causal_mask or self._causal:
            tq, tv = scores.shape[-2], scores.shape[-1]
            # Row i attends to columns j <= i (cumulative-sum indices, as both oracles build it).
            causal = torch.ones(tq, tv, dtype=torch.bool, device=scores.device).tril()
            keep = causal if keep is None else keep & causal
        if keep is not None:
            offset = _MASKED_SCORE_OFFSET.get(scores.dtype, _DEFAULT_MASKED_SCORE_OFFSET)
            scores = torch.where(keep, scores, scores - offset)
        weights = torch.softmax(scores, dim=-1)
        if training and self.dropout > 0:
            weights = torch.nn.functional.dropout(weights, self.dropout, training=True)
        result = torch.matmul(weights, value)
        if query_mask is not None:
            q_keep = query_mask.to(torch.bool).unsqueeze(-1)
            if self._tf_keras:  # a product: a non-finite masked step stays non-finite
                result = result * q_keep.to(result.dtype)
            else:
                result = torch.where(q_keep, result, torch.zeros((), dtype=result.dtype, device=result.device))
        if return_attention_scores:
            return result, weights
        return result

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not mask:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape: Any) -> Any:
        query_shape, value_shape = tuple(input_shape[0]), tuple(input_shape[1])
        return (*query_shape[:-1], value_shape[-1])


class Attention(_BaseAttention):
    """Luong-style dot-product attention (``score_mode="dot"``) or the concat form ``"concat"``:
    ``concat_score_weight * sum(tanh(scale * (q + k)))``."""

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0, seed: int | None = None,
                 causal: bool = False, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        self._configure_attention(locals())

    def _build_scores(self, input_shape: Any) -> None:
        if self.use_scale:
            self.add_weight("scale", (), initializer="ones")
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", (), initializer="ones")

    def _scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-2, -1))
            return scores * self.scale if self.use_scale else scores
        pairs = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.use_scale:
            pairs = self.scale * pairs
        return self.concat_score_weight * torch.tanh(pairs).sum(dim=-1)


class AdditiveAttention(_BaseAttention):
    """Bahdanau-style attention: ``sum(scale * tanh(q + k))`` over features, ``scale`` a
    (features,) weight (glorot-uniform) with ``use_scale``."""

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, seed: int | None = None, causal: bool = False,
                 **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        self._configure_attention(locals())

    def _build_scores(self, input_shape: Any) -> None:
        if self.use_scale:
            # Keras 3 sizes it by the query's features, tf_keras by the value's; the spec ties them.
            self.add_weight("scale", (int(input_shape[0][-1]),), initializer="glorot_uniform")

    def _scores(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        tanh = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))
        return (self.scale * tanh if self.use_scale else tanh).sum(dim=-1)




#: Keras 3's fused path (ops.dot_product_attention on TensorFlow) sets a masked logit to this.
_FUSED_MASKED_LOGIT = -0.7 * 3.38953e38


def _proj_equation(free_dims: int, bound_dims: int, output_dims: int) -> tuple[str, str, int]:
    """Keras's ``_build_proj_equation``: (equation, bias axes, output rank) of a projection."""
    letters = string.ascii_lowercase
    free = letters[:free_dims]
    bound = letters[free_dims:free_dims + bound_dims]
    out = letters[free_dims + bound_dims:free_dims + bound_dims + output_dims]
    return f"{free}{bound},{bound}{out}->{free}{out}", out, free_dims + output_dims


def _attention_equations(rank: int, attn_axes: tuple[int, ...]) -> tuple[str, str, int]:
    """Keras's ``_build_attention_equation``: (dot-product equation, combine equation, scores rank)."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    offset, source = rank, ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes] + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


class MultiHeadAttention(Layer):
    """Multi-head attention as Keras's ``MultiHeadAttention``: EinsumDense projections ``query``,
    ``key``, ``value`` and ``attention_output`` (their weights, in that order, are the layer's), and
    each oracle's own masking and softmax (see the spec's notes in spec/layers/attention.yaml)."""

    supports_masking = True

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape: Any = None, attention_axes: Any = None,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, seed: int | None = None,
                 softmax_robust_masking: bool = False, flash_attention: bool | None = None,
                 use_gate: bool = False, sliding_window: int | None = None, **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        # Keras 3's options that change the computation and are not implemented: refused, not ignored.
        for name, value, default in (("flash_attention", flash_attention, (None, False)),
                                     ("use_gate", use_gate, (False,)), ("sliding_window", sliding_window, (None,))):
            if value not in default:
                raise ValueError(f"MultiHeadAttention '{self.name}': {name}={value!r} is not supported by "
                                 f"keraspec.impl [parameter(s): {name}]")
        given = {k: v for k, v in locals().items()
                 if k not in ("self", "kwargs", "__class__", "flash_attention", "use_gate", "sliding_window",
                              "name", "value", "default")}
        params = type(self).spec().params
        foreign = [k for k, p in params.items() if k in given and not p.in_oracle(self._flavor) and given[k] != p.default]
        if foreign:
            raise TypeError(f"MultiHeadAttention '{self.name}': unrecognized argument(s) {foreign} under the "
                            f"{self._flavor} flavour [parameter(s): {', '.join(foreign)}]")
        for name in ("num_heads", "key_dim"):
            if isinstance(given[name], bool) or not isinstance(given[name], int):
                raise TypeError(f"MultiHeadAttention '{self.name}': '{name}' must be a positive int, got "
                                f"{given[name]!r} [parameter(s): {name}]")
        self._configure({k: v for k, v in given.items() if params[k].in_oracle(self._flavor)})
        # The regularizer goes to the four projections (as in Keras), not to this layer's output.
        self.activity_regularizer = None
        self._config["value_dim"] = self.value_dim = value_dim or key_dim
        if isinstance(output_shape, int) and not self._tf_keras:
            output_shape = (output_shape,)
        elif isinstance(output_shape, list) and not self._tf_keras:
            output_shape = tuple(output_shape)
        self._config["output_shape"] = self.output_shape = output_shape or None if not self._tf_keras else output_shape
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        self._config["attention_axes"] = self.attention_axes = attention_axes
        # tf_keras's config records the input shapes it was built for (None until then).
        self._built_shapes: tuple[Any, Any, Any] = (None, None, None)
        self._scale = 1.0 / math.sqrt(float(key_dim))
        if not self._tf_keras:
            # Keras 3 casts the Python float with tf.cast, which makes a float32 tensor first: the
            # scale of a float64 layer is float32's rounding of 1/sqrt(key_dim).
            self._scale = float(torch.tensor(self._scale, dtype=torch.float32))
        self._dense: list[EinsumDense] = []

    # -- build ---------------------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        shapes = [tuple(s) for s in input_shape] if isinstance(input_shape[0], (list, tuple)) else [tuple(input_shape)]
        if len(shapes) < 2:
            raise ValueError(f"MultiHeadAttention '{self.name}': build needs the shapes of query and value "
                             f"(and key), got {input_shape}")
        query_shape, value_shape = shapes[0], shapes[1]
        key_shape = shapes[2] if len(shapes) > 2 else value_shape
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"MultiHeadAttention '{self.name}': all dimensions of `value` and `key`, except the "
                             f"last one, must be equal. Received: value_shape={value_shape} and key_shape={key_shape}")
        common = dict(kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
                      kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
                      activity_regularizer=self._config.get("activity_regularizer"),
                      kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
                      dtype=self.dtype_policy.name)

        def projection(shape: tuple, dims: list[int], name: str, bound: int = 1) -> EinsumDense:
            equation, bias_axes, out_rank = _proj_equation(len(shape) - 1, bound, len(dims))
            layer = EinsumDense(equation, output_shape=[None] * (out_rank - 1 - len(dims)) + dims,
                                bias_axes=bias_axes if self.use_bias else None, name=name, **common)
            layer._device = self._device
            return layer

        self.query_dense = projection(query_shape, [self.num_heads, self.key_dim], "query")
        self.query_dense.build(query_shape)
        self.key_dense = projection(key_shape, [self.num_heads, self.key_dim], "key")
        self.key_dense.build(key_shape)
        self.value_dense = projection(value_shape, [self.num_heads, self.value_dim], "value")
        self.value_dense.build(value_shape)
        rank = len(query_shape) + 1  # the projected tensors' rank
        if self.attention_axes is None:
            axes = tuple(range(1, rank - 2))
        else:
            axes = tuple(a if a >= 0 else (rank - 1) + a for a in self.attention_axes)
        if not self._tf_keras or self.attention_axes is None:
            # Keras stores the normalised axes, and its get_config reports them once built.
            self._config["attention_axes"] = self.attention_axes = axes
        self._axes = axes
        self._dot_equation, self._combine_equation, scores_rank = _attention_equations(rank, axes)
        self._norm_axes = tuple(range(scores_rank - len(axes), scores_rank))
        out = self.output_shape
        out_dims = list(out) if isinstance(out, (list, tuple)) else ([out] if out else [query_shape[-1]])
        self.output_dense = projection(query_shape, out_dims, "attention_output", bound=2)
        self.output_dense.build((*query_shape[:-1], self.num_heads, self.value_dim))
        self._dense = [self.query_dense, self.key_dense, self.value_dense, self.output_dense]
        self._built_shapes = (query_shape, key_shape, value_shape)
        self.built = True

    # -- weights: the four projections' in Keras's order ---------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        return [n for d in self._dense for n in d.weight_names]

    def get_weights(self) -> list[Any]:
        return [w for d in self._dense for w in d.get_weights()]

    def set_weights(self, weights: Any) -> None:
        weights = list(weights)
        expected = sum(len(d.weight_names) for d in self._dense)
        if len(weights) != expected:
            raise ValueError(f"MultiHeadAttention '{self.name}': set_weights expects {expected} arrays "
                             f"({', '.join(d.name + '/' + n for d in self._dense for n in d.weight_names) or 'none; build the layer first'}), "
                             f"got {len(weights)}")
        at = 0
        for d in self._dense:
            n = len(d.weight_names)
            try:
                d.set_weights(weights[at:at + n])
            except ValueError as exc:
                raise ValueError(f"MultiHeadAttention '{self.name}': {exc}") from None
            at += n

    def keras_weights(self) -> list[torch.Tensor]:
        return [w for d in self._dense for w in d.keras_weights()]

    def weight_to_keras(self, weight: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        for d in self._dense:
            if any(w is weight for w in d.keras_weights()):
                return d.weight_to_keras(weight, value)
        raise ValueError(f"MultiHeadAttention '{self.name}': not one of its weights")

    def apply_constraints(self) -> None:
        for d in self._dense:
            d.apply_constraints()

    # -- the call ------------------------------------------------------------------------------------
    def forward(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        # tf_keras autocasts the query (its first input) to the compute dtype into a new tensor without
        # the query's _keras_mask, and its call reads the mask from that tensor: under a float16 /
        # bfloat16 policy fed float32 data the query mask never reaches the attention (the output mask
        # is still the query's).  The tf_keras flavour follows it; see the spec's notes.
        self.__dict__["_query_mask_lost"] = (
            self._tf_keras and isinstance(query, torch.Tensor) and query.is_floating_point()
            and query.dtype != self._compute_dtype)
        return super().forward(query, *args, **kwargs)

    def _masked_fill_value(self, dtype: torch.dtype) -> float:
        if self._tf_keras:  # tf_keras's Softmax: float16.min / 2, else -1e9
            return -32752.0 if dtype == torch.float16 else -1.0e9
        return -3.0e4 if dtype == torch.float16 else -1.0e9

    def call(self, query: torch.Tensor, value: torch.Tensor | None = None, key: torch.Tensor | None = None,
             mask: Any = None, training: bool = False, return_attention_scores: bool = False,
             use_causal_mask: bool = False) -> Any:
        if value is None:
            raise ValueError(f"MultiHeadAttention '{self.name}' needs a value tensor: layer(query, value, key=None). "
                             f"Received query of shape {tuple(query.shape)}")
        value_mask = getattr(value, "_keras_mask", None)
        key_mask = getattr(key, "_keras_mask", None) if key is not None else None
        value = self._cast(value)
        if key is None:
            key = value
            if self._tf_keras:  # tf_keras reads the key's mask after key = value (the value's again)
                key_mask = value_mask
        else:
            key = self._cast(key)
        if tuple(value.shape[1:-1]) != tuple(key.shape[1:-1]):
            raise ValueError(f"MultiHeadAttention '{self.name}': all dimensions of `value` and `key`, except the "
                             f"last one, must be equal. Received: value_shape={tuple(value.shape)} and "
                             f"key_shape={tuple(key.shape)}")
        query_mask = None if self.__dict__.get("_query_mask_lost") else mask
        attention_mask = None
        for m, axis in ((query_mask, -1), (value_mask, -2), (key_mask, -2)):
            if m is not None:
                m = m.to(torch.bool).unsqueeze(axis)
                attention_mask = m if attention_mask is None else attention_mask & m
        if use_causal_mask:
            tq, ts = query.shape[1], value.shape[1]
            causal = torch.ones(1, tq, ts, dtype=torch.bool, device=query.device).tril()
            attention_mask = causal if attention_mask is None else attention_mask & causal
        q = self.query_dense(query)
        k = self.key_dense(key)
        v = self.value_dense(value)
        k, v = self._expand_heads(k), self._expand_heads(v)
        fused = not self._tf_keras and not (self.dropout > 0.0 or return_attention_scores or q.dim() != 4)
        if fused:
            output = self._fused_attention(q, k, v, attention_mask)
            scores = None
        else:
            output, scores = self._explicit_attention(q, k, v, attention_mask, training)
        output = self.output_dense(output)
        if return_attention_scores:
            return output, scores
        return output

    def _expand_heads(self, projected: torch.Tensor) -> torch.Tensor:
        """Key/value heads as the query's (GroupQueryAttention repeats them); MHA has one per query head."""
        return projected

    def _fused_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any) -> torch.Tensor:
        """Keras 3's ops.dot_product_attention on TensorFlow: logits in at least float32, the scale
        applied to the logits, masked logits set to -0.7 * 3.38953e38, no zeroing after the softmax."""
        logits_dtype = torch.promote_types(q.dtype, torch.float32)
        if mask is None and q.dtype == logits_dtype:
            # Unmasked in float32/float64: torch's fused kernel computes the same softmax(q k^T * scale) v
            # (up to rounding: it may scale q and k by sqrt(scale) each).  Not with a mask -- a fully
            # masked row is NaN there and uniform in Keras -- nor in float16/bfloat16, where Keras
            # takes the logits and the softmax in float32.
            out = torch.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=self._scale)
            return out.transpose(1, 2)
        logits = torch.einsum("btnh,bsnh->bnts", q, k).to(logits_dtype)
        logits = logits * torch.tensor(self._scale, dtype=logits_dtype)
        if mask is not None:
            while mask.dim() < 4:
                mask = mask.unsqueeze(-3)
            logits = torch.where(mask, logits, torch.tensor(_FUSED_MASKED_LOGIT, dtype=logits_dtype, device=logits.device))
        probs = torch.softmax(logits, dim=-1).to(k.dtype)
        return torch.einsum("bnts,bsnh->btnh", probs, v)

    def _explicit_attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Any,
                            training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The einsum path: the query scaled, each oracle's masked Softmax, dropout, the combination."""
        q = q * torch.tensor(self._scale, dtype=q.dtype)
        scores = torch.einsum(self._dot_equation, k, q)
        if mask is not None:
            expand_at = -len(self._axes) * 2 - 1
            while mask.dim() < scores.dim():
                mask = mask.unsqueeze(expand_at)
            fill = torch.tensor(self._masked_fill_value(scores.dtype), dtype=scores.dtype, device=scores.device)
            if self._tf_keras and not self.softmax_robust_masking:
                scores = scores + (1.0 - mask.to(scores.dtype)) * fill
            else:
                scores = torch.where(mask, scores, fill)
        if len(self._norm_axes) > 1:
            probs = torch.exp(scores - torch.logsumexp(scores, dim=self._norm_axes, keepdim=True))
        else:
            probs = torch.softmax(scores, dim=self._norm_axes[0])
        if mask is not None and not self._tf_keras:
            # Keras 3's Softmax zeroes masked weights (a fully masked row is zeros, not uniform).
            probs = torch.where(mask, probs, torch.zeros((), dtype=probs.dtype, device=probs.device))
        dropped = probs
        if training and self.dropout > 0:
            dropped = torch.nn.functional.dropout(probs, self.dropout, training=True)
        return torch.einsum(self._combine_equation, dropped, v), probs

    def compute_output_shape(self, query_shape: Any, value_shape: Any = None, key_shape: Any = None) -> Any:
        if value_shape is None and isinstance(query_shape, (list, tuple)) and query_shape and isinstance(query_shape[0], (list, tuple)):
            shapes = list(query_shape)
            query_shape, value_shape = shapes[0], shapes[1]
            key_shape = shapes[2] if len(shapes) > 2 else None
        query_shape = tuple(query_shape)
        out = self.output_shape
        if out:
            return query_shape[:-1] + (tuple(out) if isinstance(out, (list, tuple)) else (out,))
        return query_shape

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._tf_keras:
            config.update(zip(("query_shape", "key_shape", "value_shape"), self._built_shapes))
        return config

    @classmethod
    def from_config(cls, config: Any) -> MultiHeadAttention:
        """tf_keras's config carries the built input shapes: the layer is rebuilt for them, as tf_keras does."""
        config = dict(config)
        shapes = [config.pop(k, None) for k in ("query_shape", "value_shape", "key_shape")]
        layer = cls(**config)
        if all(s is not None for s in shapes):
            layer.build([tuple(s) for s in shapes])
        return layer


class GroupQueryAttention(MultiHeadAttention):
    """Keras 3's ``GroupQueryAttention`` (class GroupedQueryAttention): num_query_heads query heads
    sharing num_key_value_heads key/value heads (each repeated num_query_heads // num_key_value_heads
    times, np.repeat order), head_dim per head, attention over the steps, and the output projected back
    to the query's features.  Its masks and the fused/einsum paths are MultiHeadAttention's in Keras 3."""

    def __init__(self, head_dim: int, num_query_heads: int, num_key_value_heads: int, dropout: float = 0.0,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None, activity_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, seed: int | None = None,
                 flash_attention: bool | None = None, use_gate: bool = False, sliding_window: int | None = None,
                 **kwargs: Any) -> None:
        Layer.__init__(self, **kwargs)
        for name, value, default in (("flash_attention", flash_attention, (None, False)),
                                     ("use_gate", use_gate, (False,)), ("sliding_window", sliding_window, (None,))):
            if value not in default:
                raise ValueError(f"GroupQueryAttention '{self.name}': {name}={value!r} is not supported by "
                                 f"keraspec.impl [parameter(s): {name}]")
        for name, value in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                            ("num_key_value_heads", num_key_value_heads)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"GroupQueryAttention '{self.name}': '{name}' must be a positive int, got {value!r} "
                                f"[parameter(s): {name}]")
        given = {k: v for k, v in locals().items() if k in type(self).spec().params}
        self._configure(given)
        if num_query_heads % num_key_value_heads:
            raise ValueError(f"GroupQueryAttention '{self.name}': `num_query_heads` ({num_query_heads}) must be "
                             f"divisible by `num_key_value_heads` ({num_key_value_heads}) "
                             f"[parameter(s): num_query_heads, num_key_value_heads]")
        # Keras 3 also regularizes this layer's own output (its activity_regularizer attribute) besides
        # handing the regularizer to the projections; not drawn (see the spec), kept off the output here.
        self.activity_regularizer = None
        self.num_heads, self.key_dim, self.value_dim = num_query_heads, head_dim, head_dim
        self.output_shape, self.attention_axes = None, (1,)
        self._repeats = num_query_heads // num_key_value_heads
        self._scale = float(torch.tensor(1.0 / math.sqrt(float(head_dim)), dtype=torch.float32))
        self._built_shapes = (None, None, None)
        self._dense = []

    def build(self, input_shape: Any) -> None:
        shapes = [tuple(s) for s in input_shape] if isinstance(input_shape[0], (list, tuple)) else [tuple(input_shape)]
        if len(shapes) < 2:
            raise ValueError(f"GroupQueryAttention '{self.name}': build needs the shapes of query and value "
                             f"(and key), got {input_shape}")
        query_shape, value_shape = shapes[0], shapes[1]
        key_shape = shapes[2] if len(shapes) > 2 else value_shape
        common = dict(kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
                      kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
                      activity_regularizer=self._config.get("activity_regularizer"),
                      kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
                      dtype=self.dtype_policy.name)
        kv, h = self.num_key_value_heads, self.head_dim
        self.query_dense = EinsumDense("bqm,muh->bquh", (None, self.num_query_heads, h),
                                       bias_axes="uh" if self.use_bias else None, name="query", **common)
        self.key_dense = EinsumDense("bkm,mvh->bkvh", (None, kv, h), bias_axes="vh" if self.use_bias else None,
                                     name="key", **common)
        self.value_dense = EinsumDense("bkm,mvh->bkvh", (None, kv, h), bias_axes="vh" if self.use_bias else None,
                                       name="value", **common)
        self.output_dense = EinsumDense("bquh,uhm->bqm", (None, query_shape[-1]), bias_axes="m" if self.use_bias else None,
                                        name="attention_output", **common)
        for layer, shape in ((self.query_dense, query_shape), (self.key_dense, key_shape),
                             (self.value_dense, value_shape), (self.output_dense, (None, None, self.num_query_heads, h))):
            layer._device = self._device
            layer.build(shape)
        self._axes = (1,)
        self._dot_equation, self._combine_equation, _ = _attention_equations(4, (1,))
        self._norm_axes = (3,)
        self._dense = [self.query_dense, self.key_dense, self.value_dense, self.output_dense]
        self.built = True

    def _expand_heads(self, projected: torch.Tensor) -> torch.Tensor:
        return projected.repeat_interleave(self._repeats, dim=2) if self._repeats > 1 else projected

    def get_config(self) -> dict[str, Any]:
        return Layer.get_config(self)

    @classmethod
    def from_config(cls, config: Any) -> GroupQueryAttention:
        return cls(**dict(config))


__all__ = ["AdditiveAttention", "Attention", "GroupQueryAttention", "MultiHeadAttention"]
