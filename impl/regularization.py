"""Stochastic regularization layers: Dropout, SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout,
AlphaDropout.

Every one is the identity in inference (``training=False`` returns the input tensor itself) and
draws noise only in training.  One class per kind of noise; the spatial dropouts are one class
parameterised by ``spatial_rank``.

Random numbers: a layer built with ``seed=s`` owns a ``torch.Generator`` seeded with ``s``, created
lazily on the device of the first input it draws for (and re-created, seeded with ``s`` again, if
the inputs move to another device), so two fresh layers with the same seed give the same training
outputs, and successive calls of one layer give fresh draws -- as Keras's SeedGenerator does.
``seed=None`` draws from torch's global generator.

Broadcast draws (Dropout's ``noise_shape``, the spatial dropouts' per-channel draws) are made on the
small broadcast shape and broadcast by the multiplication; no full-size mask is materialised.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .base import InputSpec, Layer

#: SELU's constants (Klambauer et al., 2017); AlphaDropout sets dropped units to -alpha * scale.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class _RandomLayer(Layer):
    """Base of the stochastic layers: masks pass through, and the seeded generator lives here."""

    supports_masking = True

    def _generator(self, device: torch.device) -> torch.Generator | None:
        """This layer's generator on ``device`` (None: use torch's global one)."""
        seed = self.seed
        if seed is None:
            return None
        generator = self.__dict__.get("_torch_generator")
        if generator is None or generator.device != device:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(seed))  # a negative seed maps to 2**64 + seed, as in torch.manual_seed
            self.__dict__["_torch_generator"] = generator  # plain attribute: skip nn.Module.__setattr__
        return generator


def _dropout(x: torch.Tensor, rate: float, shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """Zero with probability ``rate`` and scale the rest by 1 / (1 - rate), one draw per entry of
    ``shape`` (which broadcasts against ``x``)."""
    keep = 1.0 - rate
    mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep, generator=generator)
    return x * mask.div_(keep)


def _broadcast_noise_shape(layer: Layer, noise_shape: tuple[int | None, ...], x: torch.Tensor) -> tuple[int, ...]:
    """``noise_shape`` resolved against the input: None entries take the input's size on that axis
    (counted from the left, as Keras does) and the result broadcasts against the input from the
    right (as TensorFlow broadcasts), so a shorter noise shape shares its draws along the leading axes."""
    shape = tuple(x.shape)
    if len(noise_shape) > len(shape):
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}': noise_shape={noise_shape} has more axes than the input "
            f"of shape {shape}"
        )
    resolved = tuple(shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))
    aligned = (1,) * (len(shape) - len(resolved)) + resolved
    if any(n != 1 and n != s for n, s in zip(aligned, shape)):
        raise ValueError(
            f"{type(layer).__name__} '{layer.name}': noise_shape={noise_shape} does not broadcast to the input "
            f"of shape {shape}; each entry must be 1, None or the input's size on that axis"
        )
    return aligned


class Dropout(_RandomLayer):
    """Zeroes units with probability ``rate`` in training and scales the kept ones by 1 / (1 - rate)."""

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training or self.rate == 0:
            return inputs
        generator = self._generator(inputs.device)
        if generator is None and self.noise_shape is None:
            return F.dropout(inputs, self.rate, training=True)  # the same semantics, torch's own kernel
        shape = tuple(inputs.shape) if self.noise_shape is None else _broadcast_noise_shape(self, self.noise_shape, inputs)
        return _dropout(inputs, self.rate, shape, generator)


class _SpatialDropout(_RandomLayer):
    """Dropout of whole channels: one draw per (sample, channel), shared along the spatial axes.

    Keras 3's constructors take only ``rate``, ``data_format`` (2D/3D), ``seed``, ``name`` and
    ``dtype`` -- no ``trainable`` -- and ``get_config`` reports exactly those, ``dtype`` as a name.
    """

    spatial_rank: ClassVar[int] = 1
    #: SpatialDropout1D has no data_format: its input is always (batch, steps, channels).
    data_format: str = "channels_last"

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, dtype: Any = None,
                 data_format: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        own: dict[str, Any] = {"rate": rate, "seed": seed}
        if "data_format" in type(self).spec().params:
            own["data_format"] = data_format
        self._configure(own)
        self.input_spec = InputSpec(ndim=self.spatial_rank + 2)

    def call(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training or self.rate == 0:
            return inputs
        size = inputs.shape
        ones = (1,) * self.spatial_rank
        if self.data_format == "channels_first":
            shape = (size[0], size[1]) + ones
        else:
            shape = (size[0],) + ones + (size[-1],)
        return _dropout(inputs, self.rate, shape, self._generator(inputs.device))

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}
        config.update((k, v) for k, v in self._config.items() if k not in config)
        return config


class SpatialDropout1D(_SpatialDropout):
    spatial_rank = 1

    def __init__(self, rate: float, seed: int | None = None, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(rate, seed=seed, name=name, dtype=dtype)


class SpatialDropout2D(_SpatialDropout):
    spatial_rank = 2

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(rate, seed=seed, name=name, dtype=dtype, data_format=data_format)


class SpatialDropout3D(_SpatialDropout):
    spatial_rank = 3

    def __init__(self, rate: float, data_format: str | None = None, seed: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(rate, seed=seed, name=name, dtype=dtype, data_format=data_format)


class GaussianNoise(_RandomLayer):
    """Adds N(0, stddev^2) noise in training."""

    def __init__(self, stddev: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training or self.stddev == 0:
            return inputs
        noise = torch.empty_like(inputs).normal_(0.0, float(self.stddev), generator=self._generator(inputs.device))
        return inputs + noise


class GaussianDropout(_RandomLayer):
    """Multiplies by N(1, rate / (1 - rate)) noise in training (dropout's mean and variance)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        noise = torch.empty_like(inputs).normal_(1.0, stddev, generator=self._generator(inputs.device))
        return inputs * noise


class AlphaDropout(_RandomLayer):
    """Dropout that keeps SELU's self-normalisation: a dropped unit is set to alpha' = -alpha * scale,
    then ``a * x + b`` restores zero mean and unit variance, with
    ``a = ((1 - rate) * (1 + rate * alpha'^2)) ** -0.5`` and ``b = -a * alpha' * rate``."""

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())

    def call(self, inputs: torch.Tensor, training: bool = False) -> torch.Tensor:
        if not training or self.rate == 0:
            return inputs
        rate = float(self.rate)
        shape = tuple(inputs.shape) if self.noise_shape is None else _broadcast_noise_shape(self, self.noise_shape, inputs)
        # A unit is kept when a uniform draw is >= rate (probability 1 - rate), as in Keras.
        draw_dtype = inputs.dtype if inputs.dtype == torch.float64 else torch.float32
        kept = torch.rand(shape, dtype=draw_dtype, device=inputs.device, generator=self._generator(inputs.device)) >= rate
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1.0 - rate) * (1.0 + rate * alpha_p**2)) ** -0.5
        b = -a * alpha_p * rate
        return torch.where(kept, inputs * a + b, a * alpha_p + b)
