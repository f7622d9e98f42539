"""Wilson's score interval for a proportion: the one formula for accuracy intervals.

It lives below harness/ and reports/ so the interval the harness stores with a cell
(``accuracy_ci_lo``/``_hi``) and the one a report or ``sentryfuse eval`` prints are the
same computation. Unlike the normal (Wald) interval it stays inside [0, 1] and keeps its
coverage near 0 and 1, where pruned-model accuracies on small test sets often sit.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_bounds(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """(lo, hi) of the Wilson score interval for proportion ``p`` observed on ``n`` > 0."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
