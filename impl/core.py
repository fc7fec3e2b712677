"""Core layers: Dense, Activation, and the layers that only reshape, mask or pass data through."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from . import activations, regularizers
from .base import InputSpec, Layer, Shape


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis; kernel kept in Keras's (in, out) layout."""

    supports_masking = True

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.activation = activations.get(activation)
        self.input_spec = InputSpec(min_ndim=2)

    def build(self, input_shape: Shape) -> None:
        in_dim = int(input_shape[-1])
        self.add_weight("kernel", (in_dim, self.units), self.kernel_initializer, self.kernel_regularizer,
                        self.kernel_constraint)
        self.add_bias((self.units,))
        self.input_spec = InputSpec(min_ndim=2, axes={-1: in_dim})
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        if not inputs.is_floating_point():
            inputs = inputs.to(self.kernel.dtype)  # Keras promotes integer inputs to the kernel's dtype
        # F.linear wants (out, in); the transpose of the (in, out) kernel is a free view.
        return self.activation(F.linear(inputs, self.kernel.t(), self.bias))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape[:-1]) + (self.units,)


class Activation(Layer):
    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.activation = activations.get(activation)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.activation(inputs)


class Flatten(Layer):
    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.input_spec = InputSpec(min_ndim=1)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.dim() == 1:
            return inputs.reshape(-1, 1)
        if self.data_format == "channels_first" and inputs.dim() > 2:
            inputs = inputs.movedim(1, -1)
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else int(torch.tensor(rest or (1,)).prod())
        return (input_shape[0], size)


class Reshape(Layer):
    def __init__(self, target_shape: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def build(self, input_shape: Shape) -> None:
        type(self).spec().validate_input(self._config, input_shape)
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        known = [d for d in self.target_shape if d != -1]
        size = None if any(d is None for d in input_shape[1:]) else _prod(input_shape[1:])
        resolved = tuple(
            (None if size is None else size // _prod(known)) if d == -1 else d for d in self.target_shape
        )
        return (input_shape[0],) + resolved


class Permute(Layer):
    def __init__(self, dims: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.input_spec = InputSpec(ndim=len(self.dims) + 1)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.permute((0,) + self.dims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)


class RepeatVector(Layer):
    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.input_spec = InputSpec(ndim=2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], self.n, input_shape[1])


class Masking(Layer):
    """Zeroes timesteps whose features all equal ``mask_value`` and masks them."""

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def compute_mask(self, inputs: torch.Tensor, mask: Any = None) -> torch.Tensor:
        return (inputs != self.mask_value).any(dim=-1)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        keep = (inputs != self.mask_value).any(dim=-1, keepdim=True)
        outputs = torch.where(keep, inputs, torch.zeros((), dtype=inputs.dtype, device=inputs.device))
        outputs._keras_mask = keep.squeeze(-1)  # computed once here; the base does not redo it
        return outputs


class ActivityRegularization(Layer):
    supports_masking = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.activity_regularizer = regularizers.get({"class_name": "L1L2", "config": {"l1": l1, "l2": l2}})

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


class Identity(Layer):
    supports_masking = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure({})

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs


class InputLayer(Layer):
    """Declares a model input.  Calling it checks a tensor against the declared shape and returns it."""

    def __init__(
        self,
        shape: tuple[int, ...] | None = None,
        batch_size: int | None = None,
        batch_shape: tuple[int | None, ...] | None = None,
        sparse: bool | None = None,
        ragged: bool | None = None,
        optional: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        if self.dtype_policy.is_mixed:  # Keras 3 takes a dtype here, not a dtype policy
            raise ValueError(f"InputLayer: Invalid dtype: {self.dtype_policy.name}")
        if sparse or ragged:
            raise ValueError(f"InputLayer: sparse and ragged inputs are not supported (sparse={sparse}, ragged={ragged})")
        self.batch_shape = tuple(batch_shape) if batch_shape is not None else (batch_size,) + tuple(shape or ())
        self.input_spec = InputSpec(ndim=len(self.batch_shape))
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        for axis, expected in enumerate(self.batch_shape):
            if expected is not None and inputs.shape[axis] != expected:
                raise ValueError(
                    f"InputLayer '{self.name}': expected shape {self.batch_shape}, received {tuple(inputs.shape)}"
                )
        return inputs

    def compute_output_shape(self, input_shape: Any = None) -> Shape:
        return self.batch_shape

    def get_config(self) -> dict[str, Any]:
        # Keras reports the resolved batch_shape, never shape/batch_size.
        return {
            "batch_shape": self.batch_shape,
            "dtype": self.dtype,
            "sparse": bool(self._config["sparse"]),
            "ragged": bool(self._config["ragged"]),
            "name": self.name,
            "optional": self.optional,
        }


def _prod(values: Any) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


class Embedding(Layer):
    """Rows of ``embeddings`` (input_dim, output_dim) gathered by integer indices of any rank: the
    output is ``input_shape + (output_dim,)``.  With ``mask_zero`` index 0 is padding and the output
    mask is ``inputs != 0``.

    Keras computes nothing in the compute dtype but a cast: the gather reads the float32 variable
    under a mixed policy and casts the rows.  Keras 3 gathers with ``ops.take``, which counts a
    negative index from the end (-1 is the last row), so it accepts [-input_dim, input_dim); tf_keras
    gathers with ``tf.nn.embedding_lookup``, which refuses a negative one.  An index outside the
    flavour's range is refused with the layer's name and the range, as TensorFlow's CPU gather
    refuses it (InvalidArgumentError).  tf_keras's ``input_length`` only declares the sequence
    length of the input.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        activity_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        input_length = kwargs.pop("input_length", None)
        kwargs.pop("batch_input_shape", None)  # tf_keras's config repeats input_length as it
        super().__init__(**kwargs)
        own = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__", "input_length")}
        self._configure({**own, "input_length": input_length})
        if not self._tf_keras:  # Keras 3 drops input_length (with a deprecation warning)
            self._config.pop("input_length")
        self.supports_masking = bool(self.mask_zero)

    def build(self, input_shape: Shape = None) -> None:
        self.add_weight("embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer,
                        self.embeddings_regularizer, self.embeddings_constraint)
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.is_floating_point():
            inputs = inputs.to(torch.int64)  # Keras casts other dtypes to int32 before the gather
        if inputs.numel():
            low, high = int(inputs.min()), int(inputs.max())
            lowest = 0 if self._tf_keras else -self.input_dim
            if low < lowest or high >= self.input_dim:
                raise ValueError(f"Embedding '{self.name}': indices must be in [{lowest}, {self.input_dim}) (input_dim), "
                                 f"got values from {low} to {high} in an input of shape {tuple(inputs.shape)}")
            if low < 0:  # Keras 3 counts a negative index from the end
                inputs = torch.where(inputs < 0, inputs + self.input_dim, inputs)
        return F.embedding(inputs, self.embeddings)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return inputs != 0 if self.mask_zero else None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._tf_keras:  # tf_keras declares the input shape of a model's first layer from input_length
            config["batch_input_shape"] = (None, self.input_length)
        return config

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape) + (self.output_dim,)
