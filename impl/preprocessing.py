"""Preprocessing layers that compute numbers without data-dependent code: Rescaling, CenterCrop
(resizing an image smaller than its window), Resizing, and Normalization with a given mean and
variance or an adapted state loaded as weights (no ``adapt()``, no randomness).  Every resampling
is keraspec.impl.resize's (one implementation, shared with UpSampling2D).

The constants these layers use (scale, offset, mean, standard deviation) are made once, when the
layer is built, in the compute dtype and on the input's device, rounded as each oracle rounds
them: both oracles read a Python float through a float32 tensor for Rescaling, and Keras 3 does
for Normalization's mean and variance too (tf_keras keeps them in float64 until the cast).  They
are non-persistent buffers, so ``.to(device)`` moves them and no state_dict carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .base import InputSpec, Layer, Shape
from .flavor import get_flavor
from .resize import INTERPOLATIONS, resize

#: Keras's ``backend.epsilon()``: the floor of Normalization's standard deviation.
EPSILON = 1e-7


def _constant(value: Any, through_float32: bool, dtype: torch.dtype, device: torch.device | None) -> torch.Tensor:
    """``value`` (a number or nested list) as a tensor of ``dtype``, rounded through float32 first
    when the oracle does so (``tf.cast`` of a Python float, Keras 3's ``convert_to_tensor``)."""
    array = np.asarray(value, dtype=np.float32 if through_float32 else np.float64)
    return torch.from_numpy(array).to(device=device, dtype=dtype)


def _as_compute(layer: Layer, inputs: torch.Tensor) -> torch.Tensor:
    # Keras casts integer inputs to the compute dtype too (the base layer casts only floats).
    return inputs if inputs.is_floating_point() else inputs.to(layer._compute_dtype)


def aspect_window(height: int, width: int, target_height: int, target_width: int,
                  float32: bool) -> tuple[int, int, int, int]:
    """(rows, cols, top, left) of the largest central window of ``target``'s aspect ratio (at least
    1 x 1), as Keras's smart_resize and crop_to_aspect_ratio compute it: truncating divisions in
    float32 tensors (``float32``: tf_keras, Keras 3's resize op) or Python floats (Keras 3's
    smart_resize with static shapes)."""
    f = np.float32 if float32 else float
    crop_h = max(min(height, int(f(width * target_height) / f(target_width))), 1)
    crop_w = max(min(width, int(f(height * target_width) / f(target_height))), 1)
    return crop_h, crop_w, int(f(height - crop_h) / f(2)), int(f(width - crop_w) / f(2))


class Rescaling(Layer):
    """``inputs * scale + offset`` in the compute dtype; scale and offset are numbers or one per
    channel (broadcast against the last axis)."""

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        # Keras 3 passes masks through; tf_keras's Rescaling does not support masking.
        self.supports_masking = get_flavor() == "keras3"  # type: ignore[misc]
        self._computes_mask = self.supports_masking

    def build(self, input_shape: Shape) -> None:
        dtype = self._compute_dtype
        for name in ("scale", "offset"):
            value = getattr(self, name)
            channels = np.shape(value)
            if channels and input_shape[-1] is not None and channels[-1] not in (1, input_shape[-1]):
                raise ValueError(
                    f"Rescaling '{self.name}': {name} has {channels[-1]} entries, which do not broadcast against the "
                    f"last axis of the input. Full shape received: {tuple(input_shape)}"
                )
            self.register_buffer(f"_{name}", _constant(value, True, dtype, self._device), persistent=False)
        self.built = True

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        return _as_compute(self, inputs) * self._scale + self._offset

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for name in ("scale", "offset"):  # Keras serializes a tuple as a list
            if isinstance(config[name], tuple):
                config[name] = list(config[name])
        return config


class CenterCrop(Layer):
    """The central ``height`` x ``width`` window of each image (rank 4, or an unbatched rank-3 image;
    the start rounds down).  An image smaller than the window on an axis is resized instead, as
    Keras's smart_resize does: the largest central window of the target's aspect ratio, bilinear."""

    def __init__(self, height: int, width: int, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if get_flavor() == "tf_keras" and data_format is not None:
            raise TypeError(f"CenterCrop '{self.name}': tf_keras's CenterCrop has no data_format argument")
        self._configure(locals())
        self.data_format = self.data_format or "channels_last"
        self._spatial_axes = (-2, -1) if self.data_format == "channels_first" else (-3, -2)
        self._flavor = get_flavor()

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        # The rank is checked here rather than by an InputSpec: a crop is a view, so the generic
        # check would cost more than the layer's own work.
        if not 3 <= inputs.dim() <= 4:
            raise ValueError(
                f"Input 0 of layer '{self.name}' (CenterCrop) is incompatible with the layer: expected an image batch "
                f"(ndim=4) or one image (ndim=3), found ndim={inputs.dim()}. Full shape received: {tuple(inputs.shape)}"
            )
        rows, cols = self._spatial_axes
        height, width = inputs.shape[rows], inputs.shape[cols]
        if height < self.height or width < self.width:
            return self._smart_resize(inputs, height, width)
        top, left = (height - self.height) // 2, (width - self.width) // 2
        return inputs.narrow(rows, top, self.height).narrow(cols, left, self.width)

    def _smart_resize(self, inputs: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Keras's smart_resize: the largest central window of the target's aspect ratio, resized
        (bilinear) to height x width.  Keras 3 computes the window in Python floats and returns
        tf.image.resize's float32 image; tf_keras in float32 tensors, cast back to the compute dtype."""
        rows, cols = self._spatial_axes
        crop_h, crop_w, top, left = aspect_window(height, width, self.height, self.width, self._flavor == "tf_keras")
        # TF's ResizeBilinear reads any float image as float32 and returns float32.
        window = inputs.narrow(rows, top, crop_h).narrow(cols, left, crop_w).to(torch.float32)
        out = resize(window, rows, cols, self.height, self.width, "bilinear")
        return out.to(self._compute_dtype if self._flavor == "tf_keras" else torch.float32)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        rows, cols = self._spatial_axes
        shape[rows], shape[cols] = self.height, self.width
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._flavor == "tf_keras":
            config.pop("data_format", None)
        return config


#: Resizing's interpolations per flavour (Keras 3's resize has no gaussian or mitchellcubic).
RESIZE_INTERPOLATIONS = INTERPOLATIONS


class Resizing(Layer):
    """Images resized to ``height`` x ``width`` as ``tf.image.resize`` (half-pixel centers, no
    antialiasing) with keraspec.impl.resize's TF-exact kernels; ``crop_to_aspect_ratio`` first takes
    the largest central window of the target's aspect ratio, Keras 3's ``pad_to_aspect_ratio`` pads
    the short side with ``fill_value`` instead.

    Dtypes: 'nearest' gathers in the input's dtype.  The other methods compute in float32 in both
    oracles (TF's kernels); tf_keras casts the result to the compute dtype, Keras 3 saturates it
    (clips to the dtype's finite range first, so an overflow gives the largest finite value, not inf).
    keraspec.impl computes float64 in float64 (the spec's oracle_precision) and half precision in float32.
    """

    def __init__(self, height: int, width: int, interpolation: str = "bilinear", crop_to_aspect_ratio: bool = False,
                 pad_to_aspect_ratio: bool = False, fill_mode: str = "constant", fill_value: float = 0.0,
                 antialias: bool = False, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        flavor = get_flavor()
        if flavor == "tf_keras":
            for name, value, default in (("pad_to_aspect_ratio", pad_to_aspect_ratio, False),
                                         ("fill_mode", fill_mode, "constant"), ("fill_value", fill_value, 0.0),
                                         ("antialias", antialias, False), ("data_format", data_format, None)):
                if value != default:
                    raise TypeError(f"Resizing '{self.name}': tf_keras's Resizing has no {name} argument")
        if antialias:
            raise ValueError(f"Resizing '{self.name}': antialias=True is not implemented by keraspec.impl "
                             f"[parameter(s): antialias]")
        self._configure({"height": height, "width": width, "interpolation": interpolation,
                         "crop_to_aspect_ratio": crop_to_aspect_ratio, "pad_to_aspect_ratio": pad_to_aspect_ratio,
                         "fill_mode": fill_mode, "fill_value": fill_value, "data_format": data_format})
        self.antialias = False
        self.data_format = self.data_format or "channels_last"
        self._spatial_axes = (-2, -1) if self.data_format == "channels_first" else (-3, -2)

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        if not 3 <= inputs.dim() <= 4:
            raise ValueError(
                f"Input 0 of layer '{self.name}' (Resizing) is incompatible with the layer: expected an image batch "
                f"(ndim=4) or one image (ndim=3), found ndim={inputs.dim()}. Full shape received: {tuple(inputs.shape)}"
            )
        method = self.interpolation
        if method not in INTERPOLATIONS[self._flavor]:
            # Keras 3's constructor takes gaussian and mitchellcubic; its resize raises at call.
            raise ValueError(f"Resizing '{self.name}': interpolation={method!r} is not one of "
                             f"{INTERPOLATIONS[self._flavor]} [parameter(s): interpolation]")
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError(f"Resizing '{self.name}': only one of pad_to_aspect_ratio and crop_to_aspect_ratio "
                             f"can be True [parameter(s): pad_to_aspect_ratio, crop_to_aspect_ratio]")
        x = _as_compute(self, inputs)
        if method != "nearest" and x.dtype in (torch.float16, torch.bfloat16):
            x = x.to(torch.float32)  # TF's kernels compute a half-precision image in float32
        rows, cols = self._spatial_axes
        height, width = x.shape[rows], x.shape[cols]
        if self.crop_to_aspect_ratio:
            crop_h, crop_w, top, left = aspect_window(height, width, self.height, self.width, True)
            x = x.narrow(rows, top, crop_h).narrow(cols, left, crop_w)
        elif self.pad_to_aspect_ratio:
            x = self._pad_to_aspect(x, height, width)
        out = resize(x, rows, cols, self.height, self.width, method)
        if method == "nearest" or self._compute_dtype == torch.float32:
            return out
        if self._flavor == "tf_keras":
            return out.to(self._compute_dtype)
        # Keras 3 saturates TF's float32 result to the compute dtype (float64: to float32's range).
        limit = min(torch.finfo(torch.float32).max, torch.finfo(self._compute_dtype).max)
        return out.clamp(-limit, limit).to(self._compute_dtype)

    def _pad_to_aspect(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Keras 3's pad_to_aspect_ratio: ``start`` rows (columns) of fill_value on both sides, where
        start is half the shortfall of the short side (float32 truncations, as its TF ops)."""
        f = np.float32
        pad_h = max(height, int(f(width * self.height) / f(self.width)))
        pad_w = max(width, int(f(height * self.width) / f(self.height)))
        for axis, start in zip(self._spatial_axes, (int(f(pad_h - height) / f(2)), int(f(pad_w - width) / f(2)))):
            if start > 0:
                shape = list(x.shape)
                shape[axis] = start
                fill = torch.full(shape, float(self.fill_value), dtype=x.dtype, device=x.device)
                x = torch.cat([fill, x, fill], dim=axis)
        return x

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        rows, cols = self._spatial_axes
        shape[rows], shape[cols] = self.height, self.width
        return tuple(shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        if self._flavor == "tf_keras":
            for name in ("pad_to_aspect_ratio", "fill_mode", "fill_value", "data_format"):
                config.pop(name, None)
        return config


class Normalization(Layer):
    """``(inputs - mean) / max(sqrt(variance), 1e-7)`` (``invert``: ``mean + inputs * ...``) with a
    given mean and variance, broadcast over the kept ``axis`` (a list aligns with the last kept axis)."""

    def __init__(self, axis: Any = -1, mean: Any = None, variance: Any = None, invert: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._configure(locals())
        self.axis = _axis_tuple(axis)
        # No mean and variance: an adapted layer, whose statistics come as weights (set_weights).
        self._adapted = self.mean is None and self.variance is None
        self.supports_masking = get_flavor() == "keras3"  # type: ignore[misc]
        self._computes_mask = self.supports_masking
        # Keras 3 reads mean and variance through a float32 tensor; tf_keras through float64.
        self._through_float32 = get_flavor() == "keras3"

    def build(self, input_shape: Shape) -> None:
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                f"Normalization '{self.name}': every axis must be in [-ndim, ndim) = [{-ndim}, {ndim}), got "
                f"axis={self.axis} [parameter(s): axis]. Full shape received: {tuple(input_shape)}"
            )
        keep = sorted({a % ndim for a in self.axis})
        unknown = [a for a in keep if input_shape[a] is None]
        if unknown:
            raise ValueError(
                f"Normalization '{self.name}': the kept axes {keep} must have a known size, axis {unknown[0]} has none. "
                f"Full shape received: {tuple(input_shape)}"
            )
        broadcast = [int(input_shape[a]) if a in keep else 1 for a in range(ndim)]
        self._broadcast_shape = broadcast
        # A kept axis of size 1 broadcasts against any size in both oracles (the statistics are
        # reshaped to the broadcast shape, not checked against the input), so only the others are pinned.
        self.input_spec = InputSpec(ndim=ndim, axes={a: int(input_shape[a]) for a in keep if input_shape[a] != 1})
        if self._adapted:
            self._build_adapted(tuple(int(input_shape[a]) for a in keep))
            return
        constants = {}
        for name in ("mean", "variance"):
            value = _constant(getattr(self, name), self._through_float32, self._compute_dtype, self._device)
            if value.dim():  # a list lies along the last kept axes
                aligned = [1] * ndim
                for i in range(1, value.dim() + 1):
                    aligned[keep[-i]] = value.shape[-i]
                value = value.reshape(aligned)
            try:
                constants[name] = value.expand(broadcast)
            except RuntimeError:
                raise ValueError(
                    f"Normalization '{self.name}': {name} of shape {tuple(np.shape(getattr(self, name)))} does not "
                    f"broadcast to the kept axes {keep} of the input [parameter(s): {name}, axis]. "
                    f"Full shape received: {tuple(input_shape)}"
                ) from None
        std = torch.sqrt(constants["variance"])
        std = torch.maximum(std, torch.tensor(EPSILON, dtype=std.dtype, device=std.device))
        self.register_buffer("_mean", constants["mean"].contiguous(), persistent=False)
        self.register_buffer("_std", std.contiguous(), persistent=False)
        self.built = True

    def _build_adapted(self, shape: tuple[int, ...]) -> None:
        """An adapted layer's state, as saved files hold it: weights ``mean`` (zeros), ``variance``
        (ones) of the kept axes' shape and a scalar ``count``, all non-trainable, for set_weights.

        Keras 3 stores mean and variance in the variable dtype and count as int32; tf_keras stores
        them in the compute dtype (float16 under mixed_float16) and count as int64.
        """
        tf_keras = self._tf_keras
        del self.mean, self.variance  # the config's None; the weights take these names (get_config reads _config)
        self.add_weight("mean", shape, "zeros", trainable=False)
        self.add_weight("variance", shape, "ones", trainable=False)
        self.add_weight("count", (), "zeros", trainable=False)
        device = self._device or torch.device("cpu")
        stored = self._compute_dtype if tf_keras else self.mean.dtype
        # Re-registered in the oracle's storage dtypes (add_weight makes the variable dtype).
        self.mean = torch.nn.Parameter(self.mean.detach().to(stored), requires_grad=False)
        self.variance = torch.nn.Parameter(self.variance.detach().to(stored), requires_grad=False)
        count_dtype = torch.int64 if tf_keras else torch.int32
        self.count = torch.nn.Parameter(torch.zeros((), dtype=count_dtype, device=device), requires_grad=False)
        self.built = True

    def _statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and the floored standard deviation, broadcast over the input, in the compute dtype."""
        if not self._adapted:
            return self._mean, self._std
        # Adapted: both oracles reshape the weights and cast them to the compute dtype at load
        # (finalize_state); read here, so set_weights needs no hook.  The square root is taken
        # in the compute dtype, as the oracles do.
        mean = self.mean.reshape(self._broadcast_shape).to(self._compute_dtype)
        variance = self.variance.reshape(self._broadcast_shape).to(self._compute_dtype)
        std = torch.maximum(torch.sqrt(variance), torch.tensor(EPSILON, dtype=variance.dtype, device=variance.device))
        return mean, std

    def call(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = _as_compute(self, inputs)
        mean, std = self._statistics()
        if self.invert:
            return mean + inputs * std
        return (inputs - mean) / std

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        for name in ("mean", "variance"):  # Keras: np.array(value).tolist()
            config[name] = np.array(config[name]).tolist()
        return config


def _axis_tuple(axis: Any) -> tuple[int, ...]:
    """Keras's form of Normalization's axis: None -> (), an int -> (int,), a sequence -> a tuple."""
    if axis is None:
        return ()
    if isinstance(axis, (int, np.integer)):
        return (int(axis),)
    if isinstance(axis, Sequence) and all(isinstance(a, (int, np.integer)) for a in axis):
        return tuple(int(a) for a in axis)
    raise TypeError(f"Normalization: 'axis' must be an int, a sequence of ints or None, got {axis!r}")


__all__ = ["CenterCrop", "Normalization", "Rescaling", "Resizing"]
