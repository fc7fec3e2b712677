"""Sample statistics for the statistical checks (initial weights), in one place.

Two-sample z statistics on the mean, the variance and the mean absolute value: distribution-free
(asymptotic variances from the samples' own moments), so they hold for uniform, normal and
truncated-normal initializers alike.  The mean-absolute statistic separates distributions of equal
variance (uniform vs normal: E|x| = 0.866 sigma vs 0.798 sigma).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: |z| above this fails: two-sided p ~ 5.7e-7 per statistic, so a correct implementation fails
#: about once in a million statistics; three statistics per weight.
Z_BOUND = 5.0
#: The probability that one statistic of a correct implementation lands beyond Z_BOUND (two-sided):
#: a statistical check's false-alarm rate is at most this times the statistics it tests.
FALSE_ALARM_PER_STATISTIC = math.erfc(Z_BOUND / math.sqrt(2))


@dataclass(frozen=True)
class Moments:
    """What a sample says about its distribution, enough for the two-sample z statistics."""

    n: int
    mean: float
    var: float  # second central moment
    m4: float  # fourth central moment (the variance of the sample variance)
    mean_abs: float
    var_abs: float

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        x = np.asarray(values, dtype=np.float64).ravel()
        centred = x - x.mean()
        absolute = np.abs(x)
        return cls(int(x.size), float(x.mean()), float((centred**2).mean()), float((centred**4).mean()),
                   float(absolute.mean()), float(absolute.var()))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _z(a: float, b: float, var_a: float, var_b: float) -> float:
    se = math.sqrt(max(var_a + var_b, 0.0))
    if se == 0.0:
        return 0.0 if a == b else math.inf
    return (a - b) / se


def compare_moments(ours: Moments, theirs: Moments) -> dict[str, float]:
    """z of ours - theirs for the mean, the variance and the mean absolute value."""
    return {
        "mean": _z(ours.mean, theirs.mean, ours.var / ours.n, theirs.var / theirs.n),
        "variance": _z(ours.var, theirs.var, (ours.m4 - ours.var**2) / ours.n, (theirs.m4 - theirs.var**2) / theirs.n),
        "mean |x|": _z(ours.mean_abs, theirs.mean_abs, ours.var_abs / ours.n, theirs.var_abs / theirs.n),
    }
