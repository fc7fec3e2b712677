"""Keras weight initializers in PyTorch.

Each initializer is called with the *Keras* shape of the weight (a ``Dense`` kernel is
``(input_dim, units)``, a ``Conv2D`` kernel ``(kh, kw, in_channels, filters)``), because the fans
that the variance-scaling family divides by are defined on that shape; the layer converts the
result to torch's layout afterwards.

The draws are not bit-identical to TensorFlow's (different generators) but come from the same
distributions: uniform on ``[minval, maxval)``, normal, and the normal truncated at two standard
deviations that ``tf.random.truncated_normal`` uses.  Names, constructor arguments, defaults and
``get_config()`` are Keras 3's (``keras`` 3.15); :func:`get` also reads tf_keras's serialized
forms.

Seeding: a ``generator`` passed to the call wins; otherwise an initializer built with an integer
``seed`` draws from a fresh ``torch.Generator`` seeded with it, so -- as in Keras -- it returns
the same values on every call; an unseeded one draws from torch's global RNG.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ._serialization import keras_serialize

Shape = Sequence[int]
Device = torch.device | str | None

#: ``stddev`` of a standard normal truncated to [-2, 2]; Keras divides by it so that the
#: *truncated* draw has the variance the scaling rule asks for.
TRUNCATED_NORMAL_STDDEV_CORRECTION = 0.87962566103423978


# -- helpers ---------------------------------------------------------------------------------------
def compute_fans(shape: Shape, input_axes: Sequence[int] | None = None,
                 output_axes: Sequence[int] | None = None) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of Keras shape ``shape``, exactly as Keras computes them.

    Rank 0: (1, 1); rank 1: (n, n); rank 2: (rows, cols); rank > 2 (conv kernels
    ``(*spatial, in, out)``): both multiplied by the receptive field ``prod(shape[:-2])``.  With
    ``input_axes`` and ``output_axes`` (Keras 3.15, e.g. for EinsumDense) the fans are the
    products of those axes instead.
    """
    shape = tuple(int(s) for s in shape)
    if input_axes is not None and output_axes is not None:
        fan_in = math.prod(shape[a] for a in input_axes)
        fan_out = math.prod(shape[a] for a in output_axes)
        return int(fan_in), int(fan_out)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Draw in float32 for the 16-bit floats (erfinv/QR/uniform there are missing or coarse)."""
    return dtype if dtype == torch.float64 else torch.float32


def _sampling_device(device: Device, generator: torch.Generator | None) -> torch.device:
    if generator is not None:
        return generator.device
    return torch.device(device) if device is not None else torch.device("cpu")


def _finish(x: torch.Tensor, dtype: torch.dtype, device: Device) -> torch.Tensor:
    target = torch.device(device) if device is not None else torch.device("cpu")
    return x.to(device=target, dtype=dtype)


def _require_float(dtype: torch.dtype, what: str) -> None:
    if not dtype.is_floating_point:
        raise ValueError(f"{what} needs a floating point dtype, got {dtype}.")


def _normalise_seed(seed: Any) -> int | None:
    """``None``, an int, or a serialized ``keras.random.SeedGenerator`` (its int seed)."""
    if seed is None or isinstance(seed, bool):
        return None if seed is None else int(seed)
    if isinstance(seed, int):
        return seed
    if isinstance(seed, Mapping):
        inner = seed.get("config", seed)
        if isinstance(inner, Mapping) and isinstance(inner.get("seed"), int):
            return inner["seed"]
    raise ValueError(
        "`seed` argument should be an integer (or a serialized keras.random.SeedGenerator). "
        f"Received: seed={seed!r}"
    )


# -- base classes ----------------------------------------------------------------------------------
class Initializer:
    """Base class: ``init(shape, dtype, device, generator) -> tensor`` of Keras shape ``shape``."""

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError("Initializer subclasses must implement __call__().")

    def get_config(self) -> dict[str, Any]:
        """Keras 3's ``get_config()`` for this initializer."""
        return {}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Initializer:
        return cls(**config)

    def clone(self) -> Initializer:
        return type(self).from_config(self.get_config())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class RandomInitializer(Initializer):
    """An initializer with a ``seed``; see the module docstring for how seeds are used."""

    def __init__(self, seed: int | None = None) -> None:
        self._init_seed = seed
        self.seed = _normalise_seed(seed)

    def _generator(self, device: Device, generator: torch.Generator | None) -> torch.Generator | None:
        if generator is not None or self.seed is None:
            return generator
        g = torch.Generator(device=_sampling_device(device, None))
        g.manual_seed(self.seed)
        return g

    def get_config(self) -> dict[str, Any]:
        return {"seed": self._init_seed}


# -- sampling --------------------------------------------------------------------------------------
def _uniform(shape: Shape, low: float, high: float, dtype: torch.dtype, device: Device,
             generator: torch.Generator | None) -> torch.Tensor:
    dev = _sampling_device(device, generator)
    if not dtype.is_floating_point:
        if dtype == torch.bool:
            raise ValueError(f"Expected float or integer dtype, got {dtype}.")
        x = torch.randint(int(low), int(high), tuple(shape), dtype=dtype, device=dev, generator=generator)
        return _finish(x, dtype, device)
    x = torch.empty(tuple(shape), dtype=_work_dtype(dtype), device=dev).uniform_(low, high, generator=generator)
    return _finish(x, dtype, device)


def _normal(shape: Shape, mean: float, stddev: float, dtype: torch.dtype, device: Device,
            generator: torch.Generator | None) -> torch.Tensor:
    _require_float(dtype, "A normal initializer")
    dev = _sampling_device(device, generator)
    x = torch.empty(tuple(shape), dtype=_work_dtype(dtype), device=dev).normal_(mean, stddev, generator=generator)
    return _finish(x, dtype, device)


_SQRT2 = math.sqrt(2.0)
_ERF2 = math.erf(2.0 / _SQRT2)  # P(|Z| < 2) = erf(sqrt 2)


def _truncated_normal(shape: Shape, mean: float, stddev: float, dtype: torch.dtype, device: Device,
                      generator: torch.Generator | None) -> torch.Tensor:
    """Normal(mean, stddev) truncated to ``mean +- 2 stddev``, like ``tf.random.truncated_normal``.

    Inverse-CDF sampling (one pass, no rejection loop): ``u`` uniform on ``(-erf(sqrt2),
    erf(sqrt2))`` maps through ``sqrt2 * erfinv(u)`` onto a standard normal conditioned on
    ``|z| < 2``; the clamp only guards the last ulp.
    """
    _require_float(dtype, "A truncated normal initializer")
    dev = _sampling_device(device, generator)
    x = torch.empty(tuple(shape), dtype=_work_dtype(dtype), device=dev).uniform_(-_ERF2, _ERF2, generator=generator)
    x.erfinv_().mul_(_SQRT2).clamp_(-2.0, 2.0).mul_(stddev).add_(mean)
    return _finish(x, dtype, device)


# -- constant initializers -------------------------------------------------------------------------
class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.zeros(tuple(shape), dtype=dtype, device=device)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.ones(tuple(shape), dtype=dtype, device=device)


def _deserialize_value(value: Any) -> Any:
    """A value from a config: plain, or Keras's ``{"class_name": "__numpy__", ...}`` wrapper."""
    if isinstance(value, Mapping) and value.get("class_name") in ("__numpy__", "__tensor__"):
        return value.get("config", {}).get("value")
    return value


def _serialize_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 and value.dim() == 0 else value.tolist()
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # numpy scalar
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


class Constant(Initializer):
    """Every element ``value`` (a scalar, or anything that broadcasts to the shape)."""

    def __init__(self, value: Any = 0.0) -> None:
        self.value = _deserialize_value(value)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        value = self.value
        if isinstance(value, (bool, int, float)):
            return torch.full(tuple(shape), value, dtype=dtype, device=device)
        return torch.as_tensor(value, dtype=dtype, device=device).expand(tuple(shape)).clone()

    def get_config(self) -> dict[str, Any]:
        return {"value": _serialize_value(self.value)}


class Identity(Initializer):
    """``gain * eye(rows, cols)``; 2-D shapes only.

    Keras 3.15's ``Identity.get_config()`` is ``{}`` -- it forgets ``gain`` -- and this mirrors it
    so configs compare equal; ``gain`` still reads from a tf_keras config ``{"gain": ...}``.
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        shape = tuple(shape)
        if len(shape) != 2:
            raise ValueError(
                "Identity matrix initializer can only be used for 2D matrices. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        eye = torch.eye(shape[0], shape[1], dtype=dtype, device=device)
        return eye if self.gain == 1 else eye.mul_(self.gain)

    def get_config(self) -> dict[str, Any]:
        return {}


# -- random initializers ---------------------------------------------------------------------------
class RandomNormal(RandomInitializer):
    """Normal(mean, stddev)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return _normal(shape, self.mean, self.stddev, dtype, device, self._generator(device, generator))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomInitializer):
    """Normal(mean, stddev) truncated to two standard deviations (``stddev`` is pre-truncation)."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return _truncated_normal(shape, self.mean, self.stddev, dtype, device, self._generator(device, generator))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Uniform on ``[minval, maxval)`` (integers for an integer dtype, as in Keras)."""

    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None) -> None:
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return _uniform(shape, self.minval, self.maxval, dtype, device, self._generator(device, generator))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


class VarianceScaling(RandomInitializer):
    """Draws with variance ``scale / n``, ``n`` the fan chosen by ``mode``.

    ``distribution``: ``"truncated_normal"`` (``"normal"`` is read as this, as Keras does) uses
    stddev ``sqrt(scale / n) / 0.8796...`` before truncation so the truncated draw has the
    intended variance; ``"untruncated_normal"`` stddev ``sqrt(scale / n)``; ``"uniform"`` limit
    ``sqrt(3 scale / n)``.  ``n`` is never below 1.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("uniform", "truncated_normal", "untruncated_normal")

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 seed: int | None = None, input_axes: Sequence[int] | None = None,
                 output_axes: Sequence[int] | None = None) -> None:
        if scale <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        if mode not in self._MODES:
            raise ValueError(f"Invalid `mode` argument: {mode}. Please use one of {set(self._MODES)}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution` argument: {distribution}. Please use one of {set(self._DISTRIBUTIONS)}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed=seed)

    def _variance(self, shape: Shape) -> float:
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        if self.mode == "fan_in":
            n = max(1.0, fan_in)
        elif self.mode == "fan_out":
            n = max(1.0, fan_out)
        else:
            n = max(1.0, (fan_in + fan_out) / 2.0)
        return self.scale / n

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        _require_float(dtype, type(self).__name__)
        variance = self._variance(shape)
        gen = self._generator(device, generator)
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(variance) / TRUNCATED_NORMAL_STDDEV_CORRECTION
            return _truncated_normal(shape, 0.0, stddev, dtype, device, gen)
        if self.distribution == "untruncated_normal":
            return _normal(shape, 0.0, math.sqrt(variance), dtype, device, gen)
        limit = math.sqrt(3.0 * variance)
        return _uniform(shape, -limit, limit, dtype, device, gen)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "input_axes": self.input_axes,
            "output_axes": self.output_axes,
        }


class _FixedVarianceScaling(VarianceScaling):
    """A named variance-scaling preset: only ``seed`` (and Keras 3.15's axes) are arguments."""

    _SCALE: float = 1.0
    _MODE: str = "fan_in"
    _DISTRIBUTION: str = "truncated_normal"

    def __init__(self, seed: int | None = None, input_axes: Sequence[int] | None = None,
                 output_axes: Sequence[int] | None = None) -> None:
        super().__init__(scale=self._SCALE, mode=self._MODE, distribution=self._DISTRIBUTION, seed=seed,
                         input_axes=input_axes, output_axes=output_axes)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self._init_seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform on ``+-sqrt(6 / (fan_in + fan_out))``."""

    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_avg", "uniform"


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal, variance ``2 / (fan_in + fan_out)``."""

    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_avg", "truncated_normal"


class LecunUniform(_FixedVarianceScaling):
    """Uniform on ``+-sqrt(3 / fan_in)``."""

    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_in", "uniform"


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal, variance ``1 / fan_in``."""

    _SCALE, _MODE, _DISTRIBUTION = 1.0, "fan_in", "truncated_normal"


class HeUniform(_FixedVarianceScaling):
    """Uniform on ``+-sqrt(6 / fan_in)``."""

    _SCALE, _MODE, _DISTRIBUTION = 2.0, "fan_in", "uniform"


class HeNormal(_FixedVarianceScaling):
    """Truncated normal, variance ``2 / fan_in``."""

    _SCALE, _MODE, _DISTRIBUTION = 2.0, "fan_in", "truncated_normal"


class Orthogonal(RandomInitializer):
    """``gain`` times a random orthogonal matrix (Keras's QR recipe), reshaped to ``shape``.

    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``; a normal matrix of shape
    ``(max, min)`` of those is QR-factorised, ``Q``'s columns are sign-fixed by ``diag(R)`` so the
    draw is uniform (Haar), and ``Q`` is transposed when there are fewer rows than columns.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        shape = tuple(int(s) for s in shape)
        if len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. "
                f"Received: shape={shape} of rank {len(shape)}."
            )
        _require_float(dtype, "Orthogonal")
        num_rows = math.prod(shape[:-1])
        num_cols = shape[-1]
        flat_shape = (max(num_rows, num_cols), min(num_rows, num_cols))
        gen = self._generator(device, generator)
        dev = _sampling_device(device, gen)
        a = torch.empty(flat_shape, dtype=_work_dtype(dtype), device=dev).normal_(0.0, 1.0, generator=gen)
        q, r = torch.linalg.qr(a, mode="reduced")
        q = q * torch.sign(torch.diagonal(r))
        if num_rows < num_cols:
            q = q.T
        q = q.reshape(shape)
        if self.gain != 1:
            q = q * self.gain
        return _finish(q, dtype, device)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gain": self.gain}


class _FromValue(Initializer):
    """Keras's "a tensor as an initializer": the value itself, cast, for exactly its shape."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32, device: Device = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        value = torch.as_tensor(self.value)
        if tuple(value.shape) != tuple(shape):
            raise ValueError(
                f"Expected `shape` to be {tuple(value.shape)} for direct tensor as initializer. "
                f"Received shape={tuple(shape)}"
            )
        return value.to(dtype=dtype, device=device, copy=True)

    def get_config(self) -> dict[str, Any]:
        raise ValueError("An initializer made from a tensor cannot be serialized (Keras cannot either).")

    def __repr__(self) -> str:
        return f"_FromValue(shape={tuple(torch.as_tensor(self.value).shape)})"


# -- lookup ----------------------------------------------------------------------------------------
_CLASSES: tuple[type[Initializer], ...] = (
    Constant, GlorotNormal, GlorotUniform, HeNormal, HeUniform, Identity, LecunNormal, LecunUniform,
    Ones, Orthogonal, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling, Zeros,
)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


#: Every name Keras 3 or tf_keras resolves to an initializer class (class names, snake_case names
#: and the aliases both accept).
NAMES: dict[str, type[Initializer]] = {}
for _cls in _CLASSES:
    NAMES[_cls.__name__] = _cls
    NAMES[_snake(_cls.__name__)] = _cls
NAMES.update(
    {
        "normal": RandomNormal,
        "uniform": RandomUniform,
        "one": Ones,
        "zero": Zeros,
        "IdentityInitializer": Identity,
        "OrthogonalInitializer": Orthogonal,
    }
)
#: tf_keras's extra deserialization aliases ("GlorotUniformV2", "glorot_uniformV2", ...), accepted
#: but not suggested.
_LEGACY_NAMES: dict[str, type[Initializer]] = {
    **{cls.__name__ + "V2": cls for cls in _CLASSES},
    **{_snake(cls.__name__) + "V2": cls for cls in (GlorotNormal, GlorotUniform, HeNormal, HeUniform,
                                                     LecunNormal, LecunUniform)},
}
del _cls


def _lookup(name: str) -> type[Initializer]:
    cls = NAMES.get(name) or _LEGACY_NAMES.get(name)
    if cls is not None:
        return cls
    if name in ("STFT", "stft", "STFTInitializer"):
        raise ValueError(f"Initializer {name!r} (Keras 3's STFT) is not implemented in keraspec.")
    close = difflib.get_close_matches(name, list(NAMES), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Unknown initializer {name!r}.{hint} Known initializers: {', '.join(sorted(NAMES))}.")


def deserialize(config: Mapping[str, Any] | str) -> Initializer:
    """An initializer from a Keras-3 dict, a tf_keras dict (new or legacy format), or a name."""
    if isinstance(config, str):
        return _lookup(config)()
    if not isinstance(config, Mapping) or "class_name" not in config:
        raise ValueError(f"Could not interpret initializer identifier: {config!r}")
    cls = _lookup(str(config["class_name"]))
    kwargs = dict(config.get("config") or {})
    kwargs.pop("dtype", None)  # tf_keras v1 configs carry a dtype; Keras ignores it too
    try:
        return cls.from_config(kwargs)
    except TypeError as err:
        allowed = list(inspect.signature(cls.__init__).parameters)[1:]
        raise ValueError(f"Invalid config for initializer {cls.__name__}: {kwargs!r} (arguments: {allowed})") from err


def get(identifier: Any) -> Initializer | Callable[..., torch.Tensor] | None:
    """Resolve ``identifier`` like ``keras.initializers.get``.

    ``None`` -> ``None``; an :class:`Initializer` -> itself; an Initializer class -> a default
    instance; a name (``"glorot_uniform"``, ``"GlorotUniform"``, aliases) -> a default instance
    (``"constant"`` gives ``Constant(0.0)``, which Keras 3.15 cannot build from the string); a
    serialized dict -> the configured instance; a tensor/array -> an initializer returning it
    (shape-checked); any other callable is returned unchanged.  Unknown names raise
    ``ValueError`` with the closest names.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str) or isinstance(identifier, Mapping):
        return deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, torch.Tensor) or (hasattr(identifier, "__array__") and hasattr(identifier, "shape")):
        return _FromValue(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")


def serialize(initializer: Initializer | str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Keras 3's serialized form (``None`` stays ``None``)."""
    return keras_serialize(initializer, Initializer, get, "keras.initializers")


# Keras's lower-case function aliases (``keras.initializers.glorot_uniform`` is the class).
zeros = Zeros
ones = Ones
constant = Constant
identity = Identity
orthogonal = Orthogonal
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform = GlorotUniform
glorot_normal = GlorotNormal
he_uniform = HeUniform
he_normal = HeNormal
lecun_uniform = LecunUniform
lecun_normal = LecunNormal

__all__ = [
    "NAMES", "TRUNCATED_NORMAL_STDDEV_CORRECTION", "Constant", "GlorotNormal", "GlorotUniform", "HeNormal",
    "HeUniform", "Identity", "Initializer", "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomInitializer",
    "RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "Zeros", "compute_fans", "deserialize",
    "get", "serialize",
]
