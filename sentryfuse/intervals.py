"""The interval type and Wilson's score interval, shared by harness/ and reports/.

They live below both so a cell's stored interval (``accuracy_ci_lo``/``_hi``, the trial
medians' interval) and the one a report, the gate or ``sentryfuse eval`` prints are one
type and, for accuracy, one computation. Wilson's interval, unlike the normal (Wald)
one, stays inside [0, 1] and keeps its coverage near 0 and 1, where pruned-model
accuracies on small test sets often sit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval.

    ``level`` is the interval's confidence level; where an exact method cannot reach the
    nominal level (a median over 5 trials) it is the coverage actually achieved.
    """

    point: float
    lo: float
    hi: float
    level: float = 0.95


def wilson_bounds(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """(lo, hi) of the Wilson score interval for proportion ``p`` observed on ``n`` > 0."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson(p: float, n: int, level: float = 0.95) -> Interval:
    """Wilson score interval for a proportion ``p`` observed on ``n`` > 0 trials."""
    return Interval(p, *wilson_bounds(p, n, level), level)
