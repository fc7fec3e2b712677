"""TF-exact resampling: ``tf.image.resize`` (half-pixel centers, no antialiasing) to any output
size, along one axis at a time, in any layout (:func:`resize`; UpSampling2D, Resizing, CenterCrop).
Every tap builder takes the axis's input and output sizes (UpSampling2D passes ``size * factor``).

Nearest upsampling repeats cells with a broadcast ``expand`` + ``reshape`` (:func:`repeat_cells`, a
single copy, exact).  Every other method is a separable linear map whose per-axis taps (a banded
resampling matrix) are computed once per axis size in TF's float32 arithmetic and cached, then
summed in TF's order of operations (:func:`lerp_axis` for bilinear, :func:`resample_axis` for
bicubic, area, lanczos3/5, gaussian and mitchellcubic), so float32 results match the oracle bit
for bit.  :data:`ROWS_FIRST` says which axis TF resamples first, :func:`area_scale` the 'area'
average's final factor.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch


def repeat_cells(x: torch.Tensor, axes: Sequence[int], factors: Sequence[int]) -> torch.Tensor:
    """Repeat every cell of ``axes`` ``factors`` times (nearest upsampling) with one copy."""
    view, grown, out = [], [], []
    for axis, n in enumerate(x.shape):
        view.append(n)
        grown.append(n)
        out.append(n)
        if axis in axes:
            f = factors[list(axes).index(axis)]
            view.append(1)
            grown.append(f)
            out[-1] = n * f
    return x.reshape(view).expand(grown).reshape(out)


def _half_pixel_taps(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF's half-pixel bilinear taps along one axis: (lower index, upper index, weight of upper).

    Computed in float32 exactly as ``tf.image.resize`` does (``(i + 0.5) * (n / out) - 0.5``,
    indices clamped to the axis), so that the weights are bit-identical to the oracle's.
    """
    scale = np.float32(size) / np.float32(out)
    src = (np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.int64)
    upper = np.minimum(np.ceil(src), size - 1).astype(np.int64)
    return lower, upper, (src - floor).astype(np.float32)


@functools.lru_cache(maxsize=256)
def _lerp_taps(size: int, out: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    lower, upper, weight = _half_pixel_taps(size, out)
    return (torch.as_tensor(lower, device=device), torch.as_tensor(upper, device=device),
            torch.as_tensor(weight, device=device).to(dtype))


def lerp_axis(x: torch.Tensor, axis: int, out: int) -> torch.Tensor:
    """Bilinear resize of one axis to ``out`` cells: ``a + (b - a) * w`` with TF's half-pixel taps."""
    lower, upper, weight = _lerp_taps(x.shape[axis], out, x.dtype, x.device)
    a = x.index_select(axis, lower)
    b = x.index_select(axis, upper)
    shape = [1] * x.dim()
    shape[axis] = -1
    return a + (b - a) * weight.reshape(shape)


# -- the other tf.image.resize methods, as per-axis tap tables -----------------------------------------
# Every method is a separable linear map: along one axis, output cell ``o`` is ``sum_k w[o, k] *
# x[idx[o, k]]`` -- the rows of a banded (out, in) resampling matrix, kept in its sparse form (index
# and weight per tap).  The weights are computed once per (size, factor, method) in float32 with
# the operations TensorFlow's CPU kernels use, so they are bit-identical to the oracle's; the taps
# are then summed in TF's order (which axis first, taps in index order, one rounding per multiply
# and per add), which makes float32 outputs match the oracle bit for bit as well.  (A dense matmul
# is faster but sums in BLAS's order, with fused multiply-adds: up to ~3 ulps off TF, most of the
# suite's float32 tolerance.)  Float64 inputs use the same float32 weights in float64 arithmetic.
_F32 = np.float32
_TINY_SUM = _F32(1000.0) * np.finfo(np.float32).tiny  # TF renormalises a tap set only above this sum

#: Interpolations each flavour's UpSampling2D computes.  Keras 3's resize has no gaussian or
#: mitchellcubic (its constructor takes them; the call raises), tf_keras's has both.
_KERAS3_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos3", "lanczos5")
INTERPOLATIONS: dict[str, tuple[str, ...]] = {
    "keras3": _KERAS3_INTERPOLATIONS,
    "tf_keras": _KERAS3_INTERPOLATIONS + ("gaussian", "mitchellcubic"),
}
#: Which axis TF resamples first, per method: resize_bicubic and scale_and_translate do the rows
#: first; resize_area sums over the columns of each row first, then over the rows (as bilinear).
ROWS_FIRST = {"bicubic": True, "lanczos3": True, "lanczos5": True, "gaussian": True, "mitchellcubic": True,
               "area": False}


@dataclass(frozen=True)
class _Taps:
    """One axis's resampling: ``out[o] = sum_k weight[o, k] * x[index[o, k]]`` (then ``* scale``
    for 'area'); weights are float32, taps outside the axis have weight 0 and a clamped index."""

    index: np.ndarray  # (out, k) int64
    weight: np.ndarray  # (out, k) float32
    cell: np.float32 = _F32(1.0)  # area: the input cells per output cell (TF's scale) on this axis
    #: (out, k) bool: the taps the oracle's sum has; the others (beyond the axis, where TF's loop
    #: stops) contribute nothing even when the clamped cell is inf or NaN.  None: every tap (TF's
    #: ResizeBicubic multiplies its clamped out-of-axis taps by their zero weight).
    present: np.ndarray | None = None

    def matrix(self, size: int) -> np.ndarray:
        """The dense (out, in) resampling matrix (for inspection and tests)."""
        m = np.zeros((self.index.shape[0], size), dtype=np.float64)
        np.add.at(m, (np.arange(self.index.shape[0])[:, None], self.index), self.weight.astype(np.float64))
        return m


def _keys_cubic_table() -> tuple[np.ndarray, np.ndarray]:
    """TF's bicubic coefficient table: Keys' cubic (a = -0.5) at d = i/1024, i = 0..1024.

    ``near[i]`` is the weight at distance d (|t| <= 1 branch), ``far[i]`` at 1 + d (1 < |t| < 2
    branch), each evaluated in double precision from a float32 d and rounded to float32.
    """
    d = (np.arange(1025, dtype=np.float64) / 1024).astype(_F32).astype(np.float64)
    near = (((1.5 * d - 2.5) * d) * d + 1.0).astype(_F32)
    e = (d + 1.0).astype(_F32).astype(np.float64)
    far = (((-0.5 * e + 2.5) * e - 4.0) * e + 2.0).astype(_F32)
    return near, far


def _normalise(weight: np.ndarray, zero_if_tiny: bool) -> np.ndarray:
    """Divide each row by its float32 sum (summed left to right), as TF's kernels do."""
    total = np.zeros(weight.shape[0], dtype=_F32)
    for k in range(weight.shape[1]):
        total = total + weight[:, k]
    ok = np.abs(total) >= _TINY_SUM
    inv = _F32(1.0) / np.where(ok, total, _F32(1.0))
    scaled = weight * inv[:, None]
    return np.where(ok[:, None], scaled, _F32(0.0) if zero_if_tiny else weight).astype(_F32)


def _bicubic_taps(size: int, out: int) -> _Taps:
    """``resize_bicubic`` with half-pixel centers: Keys' cubic (a = -0.5) on 4 taps around the sample.

    Sample position ``(o + 0.5) * (in / out) - 0.5`` (float32); its fraction is rounded to the
    nearest 1/1024 and the weights read from TF's table; taps outside the axis get weight 0 and the
    rest are renormalised to sum to 1 (no edge replication).
    """
    near, far = _keys_cubic_table()
    scale = _F32(size) / _F32(out)
    loc = (np.arange(out).astype(_F32) + _F32(0.5)) * scale - _F32(0.5)
    base = np.floor(loc).astype(np.int64)
    delta = loc - base.astype(_F32)
    offset = np.rint(delta * _F32(1024)).astype(np.int64)
    index = base[:, None] + np.arange(-1, 3)[None, :]
    weight = np.stack([far[offset], near[offset], near[1024 - offset], far[1024 - offset]], axis=1)
    weight = np.where((index >= 0) & (index < size), weight, _F32(0.0)).astype(_F32)
    return _Taps(np.clip(index, 0, size - 1), _normalise(weight, zero_if_tiny=False))


@functools.lru_cache(maxsize=1)
def _c_sinf() -> Callable[[float], float] | None:
    """C's ``sinf`` from the process's math library (the one TF's kernels call), if loadable."""
    try:
        sinf = ctypes.CDLL(None).sinf
    except (OSError, AttributeError, TypeError):
        return None
    sinf.restype, sinf.argtypes = ctypes.c_float, [ctypes.c_float]
    return sinf


def _sinf(x: np.ndarray) -> np.ndarray:
    """float32 sine as TF computes it (``std::sin`` of a float): libm's sinf, which is not always
    correctly rounded; the correctly rounded value where no C library can be loaded."""
    sinf = _c_sinf()
    if sinf is None:
        return np.sin(x.astype(np.float64)).astype(_F32)
    # Once per distinct argument (a table is built once per axis size and factor, then cached).
    values, inverse = np.unique(x.astype(_F32), return_inverse=True)
    return np.array([sinf(float(v)) for v in values], dtype=_F32)[inverse.reshape(x.shape)]


def _lanczos(radius: float) -> Callable[[np.ndarray], np.ndarray]:
    pi = _F32(3.14159265359)
    r = _F32(radius)

    def kernel(t: np.ndarray) -> np.ndarray:
        # r sin(pi t) sin(pi t / r) / (pi t)^2 in float32, 1 for t <= 1e-3, 0 beyond the radius.
        arg = pi * t
        with np.errstate(divide="ignore", invalid="ignore"):
            value = (r * _sinf(arg) * _sinf(arg / r)) / (pi * pi * t * t)
        return np.where(t > r, _F32(0.0), np.where(t.astype(np.float64) <= 1e-3, _F32(1.0), value)).astype(_F32)

    return kernel


def _gaussian(t: np.ndarray) -> np.ndarray:
    # exp(-t^2 / (2 sigma^2)) with sigma = 1.5 / 3 = 0.5, cut at |t| >= 1.5; exp in double, as TF.
    value = np.exp((-t * t).astype(np.float64) / 0.5).astype(_F32)
    return np.where(t >= _F32(1.5), _F32(0.0), value).astype(_F32)


def _mitchell_cubic(t: np.ndarray) -> np.ndarray:
    # Mitchell-Netravali (B = C = 1/3) cubic, float32, radius 2.
    inner = ((_F32(7.0) / _F32(6.0) * t - _F32(2.0)) * t) * t + _F32(8.0) / _F32(9.0)
    outer = ((_F32(-7.0) / _F32(18.0) * t + _F32(2.0)) * t - _F32(10.0) / _F32(3.0)) * t + _F32(16.0) / _F32(9.0)
    return np.where(t >= _F32(2.0), _F32(0.0), np.where(t >= _F32(1.0), outer, inner)).astype(_F32)


#: scale_and_translate kernels (no antialias): (kernel, radius).
_SCALE_AND_TRANSLATE: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "lanczos3": (_lanczos(3.0), 3.0),
    "lanczos5": (_lanczos(5.0), 5.0),
    "gaussian": (_gaussian, 1.5),
    "mitchellcubic": (_mitchell_cubic, 2.0),
}


def _scale_and_translate_taps(size: int, out: int, method: str) -> _Taps:
    """``scale_and_translate`` (lanczos3/5, gaussian, mitchellcubic) without antialiasing.

    Sample position ``(o + 0.5) * in / out`` in continuous coordinates (cell i covers [i, i + 1));
    taps are the cells whose centers lie within the kernel's radius of it (clipped to the axis),
    weighted by the kernel at (center - sample) and renormalised to sum to 1.
    """
    kernel, radius = _SCALE_AND_TRANSLATE[method]
    inv_scale = _F32(1.0 / np.float64(_F32(out) / _F32(size)))
    sample = (np.arange(out).astype(_F32) + _F32(0.5)) * inv_scale
    r = _F32(radius)
    start = np.clip(np.ceil(sample - r - _F32(0.5)).astype(np.int64), 0, size - 1)
    end = np.clip(np.floor(sample + r - _F32(0.5)).astype(np.int64), 0, size - 1) + 1
    span = min(2 * int(np.ceil(radius)) + 1, size)
    index = start[:, None] + np.arange(span)[None, :]
    inside = index < end[:, None]
    position = (index.astype(_F32) + _F32(0.5)) - sample[:, None]
    weight = np.where(inside, kernel(np.abs(position)), _F32(0.0)).astype(_F32)
    # TF sums a fixed-length span clipped to the axis: its taps past the kernel's support (weight 0)
    # are in the sum (inf * 0 gives NaN), those past the end of the axis are not.
    return _Taps(np.minimum(index, size - 1), _normalise(weight, zero_if_tiny=True), present=index < size)


def _area_taps(size: int, out: int) -> _Taps:
    """``resize_area``: each output cell averages the input over its footprint [o, o + 1) * in/out.

    The weight of input cell i is the float32 length of its overlap with the footprint (the
    footprint's float32 ends can poke ~1e-7 into a neighbouring cell, which then gets that sliver);
    indices are clamped to the axis; the average's 1 / (row cell * column cell) is applied after
    both axes.  With an integer factor this is nearest-neighbour up to float32 rounding.
    """
    cell = _F32(size) / _F32(out)
    o = np.arange(out)
    lo = o.astype(_F32) * cell
    hi = (o + 1).astype(_F32) * cell
    first = np.floor(lo).astype(np.int64)
    stop = np.ceil(hi).astype(np.int64)
    index = first[:, None] + np.arange(int((stop - first).max()))[None, :]
    here, there = index.astype(_F32), (index + 1).astype(_F32)
    lo, hi = lo[:, None], hi[:, None]
    overlap = np.where(here < lo, np.where(there > hi, cell, there - lo), np.where(there > hi, hi - here, _F32(1.0)))
    inside = index < stop[:, None]
    weight = np.where(inside, overlap, _F32(0.0)).astype(_F32)
    # Output cells whose footprints span fewer cells (a non-integer scale) have padding taps that
    # TF's loop never reaches: absent from the sum, so an inf or NaN there does not leak in.
    return _Taps(np.clip(index, 0, size - 1), weight, cell, present=inside)


@functools.lru_cache(maxsize=256)
def _resize_taps(size: int, out: int, method: str) -> _Taps:
    """The float32 taps of ``method`` for an axis of ``size`` cells resized to ``out`` cells."""
    if method == "bicubic":
        return _bicubic_taps(size, out)
    if method == "area":
        return _area_taps(size, out)
    return _scale_and_translate_taps(size, out, method)


@functools.lru_cache(maxsize=256)
def _device_taps(size: int, out: int, method: str, dtype: torch.dtype,
                 device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor | None], float]:
    """The taps of one axis as per-tap index and weight tensors on ``device`` in ``dtype``, and per
    tap the mask of outputs whose sum lacks it (None where every output's sum has it)."""
    taps = _resize_taps(size, out, method)
    index = torch.as_tensor(np.ascontiguousarray(taps.index.T), device=device)
    weight = torch.as_tensor(np.ascontiguousarray(taps.weight.T), device=device).to(dtype)
    absent: list[torch.Tensor | None] = [None] * index.shape[0]
    if taps.present is not None:
        absent = [None if column.all() else torch.as_tensor(~column, device=device) for column in taps.present.T]
    return list(index.unbind(0)), list(weight.unbind(0)), absent, float(taps.cell)


def resample_axis(x: torch.Tensor, axis: int, out: int, method: str) -> tuple[torch.Tensor, float]:
    """``x`` resampled along ``axis`` to ``out`` cells: the taps summed in index order, one product and one sum
    each (no fused multiply-add), as TF accumulates.  Returns the axis's area cell too."""
    indices, weights, absent, cell = _device_taps(x.shape[axis], out, method, x.dtype, x.device)
    shape = [1] * x.dim()
    shape[axis] = -1
    out: torch.Tensor | None = None
    for index, weight, missing in zip(indices, weights, absent):
        term = x.index_select(axis, index) * weight.reshape(shape)
        if missing is not None:
            term = term.masked_fill(missing.reshape(shape), 0.0)
        out = term if out is None else out + term
    assert out is not None
    return out, cell


def area_scale(row_cell: float, col_cell: float) -> float:
    """'area': the footprint sum's factor ``1 / (row cell * column cell)``, TF's float32 value."""
    return float(_F32(1.0 / np.float64(_F32(row_cell) * _F32(col_cell))))


@functools.lru_cache(maxsize=256)
def _nearest_index(size: int, out: int, device: torch.device) -> torch.Tensor:
    # TF's ResizeNearestNeighbor with half-pixel centers: floor((o + 0.5) * in / out) in float32,
    # clamped to the axis.
    scale = _F32(size) / _F32(out)
    src = np.floor((np.arange(out, dtype=_F32) + _F32(0.5)) * scale).astype(np.int64)
    return torch.as_tensor(np.clip(src, 0, size - 1), device=device)


def nearest_axis(x: torch.Tensor, axis: int, out: int) -> torch.Tensor:
    """Nearest-neighbour resize of one axis to ``out`` cells (a gather; exact in every dtype)."""
    return x.index_select(axis, _nearest_index(x.shape[axis], out, x.device))


def resize(x: torch.Tensor, rows: int, cols: int, height: int, width: int, method: str) -> torch.Tensor:
    """``tf.image.resize(x, (height, width), method)`` (half-pixel centers, no antialiasing) with
    rows and columns at axes ``rows`` and ``cols``: the one implementation of every resampling
    (Resizing, CenterCrop's smart resize; UpSampling2D passes ``size * factor``).

    Every method but nearest runs a half-precision image in float32 and rounds once at the end, as
    TF's kernels (float32 arithmetic, then Keras's cast back) do; float64 stays float64.
    """
    if method == "nearest":
        return nearest_axis(nearest_axis(x, rows, height), cols, width)
    if x.dtype in (torch.float16, torch.bfloat16):
        return resize(x.float(), rows, cols, height, width, method).to(x.dtype)
    if method == "bilinear":
        if x.shape[rows] == height and x.shape[cols] == width:
            # TF's ResizeBilinear copies an image it is asked for at its own size (an inf cell stays
            # inf, where a + (b - a) * 0 would give NaN).
            return x
        # TensorFlow's order of operations: interpolate along the columns, then between rows.
        return lerp_axis(lerp_axis(x, cols, width), rows, height)
    if ROWS_FIRST[method]:
        tall, _ = resample_axis(x, rows, height, method)
        return resample_axis(tall, cols, width, method)[0]
    wide, col_cell = resample_axis(x, cols, width, method)
    out, row_cell = resample_axis(wide, rows, height, method)
    # area: the sum over the footprint times 1 / (footprint area), TF's float32 factor.
    return out * area_scale(row_cell, col_cell)


__all__ = ["INTERPOLATIONS", "ROWS_FIRST", "area_scale", "lerp_axis", "nearest_axis", "repeat_cells",
           "resample_axis", "resize"]
