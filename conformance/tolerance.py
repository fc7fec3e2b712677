"""The one tolerance policy: atol/rtol from dtype, device and the kind of computation.

Every numeric comparison in the suite asks :func:`tolerance` and reports the worst absolute and
relative error it measured together with the tolerance it used.  Nothing else in the suite holds
a tolerance literal.

The model: two correct implementations of the same math differ by rounding.  Per elementary op
the error is a few units of ``eps`` (machine epsilon of the compared dtype); a reduction of
length ``n`` summed in a different order accumulates about ``sqrt(n)`` of them (random-walk
rounding, pessimised by a constant factor); a recurrence over ``t`` steps compounds linearly.
A different device (cuda vs the CPU oracle) uses different kernels and fused multiply-adds, so
it gets a fixed extra factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keraspec.spec import compute_dtype

#: Machine epsilon of each dtype the suite compares in.
EPS: dict[str, float] = {
    "float16": float(np.finfo(np.float16).eps),
    "bfloat16": 2.0**-7,
    "float32": float(np.finfo(np.float32).eps),
    "float64": float(np.finfo(np.float64).eps),
}

#: Units of eps allowed per op class before length scaling.
OP_CLASS_ULPS: dict[str, float] = {
    "exact": 0.0,  # data movement: bitwise equal
    "elementwise": 4.0,  # +, *, compare: correctly rounded ops, a few in sequence
    "transcendental": 64.0,  # exp/log/tanh/erf: libm implementations differ by several ulps
    "reduction": 8.0,  # dot products, sums; scaled by sqrt(length)
    "recurrence": 16.0,  # RNN steps; scaled by length
}

#: Extra factor for a device whose kernels differ from the CPU oracle's.
DEVICE_FACTOR: dict[str, float] = {"cpu": 1.0, "cuda": 8.0}

#: TensorFlow's CPU kernels flush subnormal results to zero (they run with denormals-are-zero), where
#: torch keeps them: a difference below the smallest normal number of the precision the kernels
#: compute in (float32 for every narrower dtype) is that flush, never an error of the layer.
FLUSH_TO_ZERO_FLOOR: dict[str, float] = {
    "float16": float(np.finfo(np.float32).smallest_normal),
    "bfloat16": float(np.finfo(np.float32).smallest_normal),
    "float32": float(np.finfo(np.float32).smallest_normal),
    "float64": float(np.finfo(np.float64).smallest_normal),
}

#: Gradients go through the forward and its transpose: one more reduction of the same length.
GRADIENT_FACTOR = 4.0


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float
    why: str
    def __str__(self) -> str:
        return f"atol={self.atol:.3g}, rtol={self.rtol:.3g} ({self.why})"


def tolerance(dtype: str, device: str = "cpu", op_class: str = "elementwise", length: int = 1,
              gradient: bool = False, scale: float = 1.0) -> Tolerance:
    """The tolerance for comparing results of ``op_class`` computed in ``dtype`` on ``device`` (a
    mixed-precision policy computes in its compute dtype).

    ``scale`` is the size of the terms the compared values are made of (a power of two, from the
    input magnitude; see :func:`magnitude_scale`): rounding errors are relative to the terms, so where
    a result cancels to about zero its absolute error is eps times the terms' size, not eps.  It
    scales ``atol`` only; ``rtol`` is unchanged."""
    dtype = compute_dtype(dtype)
    if dtype not in EPS:
        raise ValueError(f"no tolerance policy for dtype {dtype!r}")
    if op_class not in OP_CLASS_ULPS:
        raise ValueError(f"unknown op class {op_class!r}; expected one of {sorted(OP_CLASS_ULPS)}")
    ulps = OP_CLASS_ULPS[op_class]
    n = max(int(length or 1), 1)
    if op_class == "reduction":
        ulps *= math.sqrt(n)
    elif op_class == "recurrence":
        ulps *= n
    if gradient and ulps:
        ulps *= GRADIENT_FACTOR
    ulps *= DEVICE_FACTOR.get(device, DEVICE_FACTOR["cuda"])
    tol = ulps * EPS[dtype]
    why = f"{op_class}" + (f" n={n}" if op_class in ("reduction", "recurrence") else "") + f", {dtype}, {device}"
    if gradient:
        why += ", gradient"
    if scale != 1.0:
        why += f", terms x{scale:.3g}"
    return Tolerance(atol=max(tol * scale, FLUSH_TO_ZERO_FLOOR[dtype]), rtol=tol, why=why)


#: How each compared quantity's terms scale with inputs multiplied by 2**magnitude: outputs and
#: masked outputs with the inputs (a bias or a saturating activation gives values of unit size,
#: which rtol covers); input gradients not at all (weights times a unit cotangent); weight
#: gradients, losses and the weights after a step with the inputs but never below unit size (a
#: bias gradient is a sum of unit cotangents, a weight penalty of unit weights); probe inputs are
#: drawn at unit scale whatever the case's magnitude.
MAGNITUDE_SCALING = {"output": "inputs", "input_gradient": "unit", "weight_gradient": "at_least_unit",
                     "loss": "at_least_unit", "weights": "at_least_unit", "probe_output": "unit"}


def magnitude_scale(quantity: str, magnitude: int, degrees: tuple[int, ...] | None = None) -> float:
    """The size of the terms of ``quantity`` when the inputs are scaled by 2**magnitude.

    ``degrees`` (the spec's ``numerics.magnitude_degree`` for the quantity) overrides the default
    rule for a layer that is not linear in its inputs: terms of degree d are 2**(d * magnitude) in
    size (a product of two inputs has degree 2), and the largest of the degrees' sizes counts."""
    rule = MAGNITUDE_SCALING[quantity]
    if degrees:
        scale = max(2.0 ** (d * magnitude) for d in degrees)
        return max(scale, 1.0) if rule == "at_least_unit" else scale
    if rule == "unit":
        return 1.0
    scale = 2.0**magnitude
    return scale if rule == "inputs" else max(scale, 1.0)


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_err: float
    max_rel_err: float
    tolerance: Tolerance
    worst_index: tuple[int, ...] | None
    detail: str

    def __str__(self) -> str:
        return self.detail


def compare(actual: np.ndarray, expected: np.ndarray, tol: Tolerance, what: str = "values") -> Comparison:
    """Elementwise |a - e| <= atol + rtol * |e|, in float64, with the worst errors reported.

    NaN matches NaN and infinities must match exactly (same sign).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Comparison(False, math.inf, math.inf, tol, None, f"{what}: shape {a.shape} != expected {e.shape}")
    both_nan = np.isnan(a) & np.isnan(e)
    same_inf = np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e))
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, counted as a mismatch below unless both match
        diff = np.where(both_nan | same_inf, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    with np.errstate(over="ignore", invalid="ignore"):  # inf error over a tiny or infinite expected value
        rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    bad = diff > tol.atol + tol.rtol * np.where(np.isfinite(e), np.abs(e), 0.0)
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float(np.where(diff == 0, 0.0, rel).max()) if diff.size else 0.0
    if not bad.any():
        return Comparison(True, max_abs, max_rel, tol, None, f"{what}: max abs err {max_abs:.3g}, max rel err {max_rel:.3g} within {tol}")
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(bad, diff, -1))), diff.shape))
    detail = (
        f"{what}: {int(bad.sum())} of {bad.size} elements out of tolerance {tol}; "
        f"max abs err {max_abs:.3g}, max rel err {max_rel:.3g}; "
        f"worst at {index}: got {a[index]!r}, expected {e[index]!r}"
    )
    return Comparison(False, max_abs, max_rel, tol, index, detail)
