"""Confidence intervals the gate and the report print, in numpy and the standard library.

Why these and not a bootstrap everywhere:

- **Trial-level shift** (latency, energy). The replicates are a run's trial medians, and a
  gate sees few of them (5-10). A percentile bootstrap of a median of 5 values can take
  only 5 values and under-covers badly at that size. The distribution-free interval for a
  location shift that inverts the exact Mann–Whitney test (Bauer 1972; the interval around
  the Hodges–Lehmann estimate) has coverage of at least the nominal level for any
  continuous distribution under the shift model, at every sample size, and needs no seed.
  It is applied to log values, so a shift is a ratio. With too few trials no interval at
  the level exists (3 vs 3 trials: the smallest two-sided p is 0.1); ``shift_interval``
  then returns None and callers say so.
- **Accuracy over seeds**: Student's t over training seeds (seeds are the replicates).
- **Accuracy of one seed**: Wilson's score interval on the test-set count (good coverage
  near 0 and 1, where Wald's fails); a difference of two such accuracies uses Newcombe's
  hybrid score interval (method 10), conservative for two models scored on the same split.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from sentryfuse.intervals import Interval, wilson

EXACT_MAX = 30  # exact Mann–Whitney null distribution up to this many per side
# Two-sided 95% Student t quantiles, df 1..30; larger df use the Cornish-Fisher expansion.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
         2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


@lru_cache(maxsize=512)
def _mw_cdf(n: int, m: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0..n*m under H0 (no shift), exact, by the counting recursion
    f(n, m, u) = f(n-1, m, u-m) + f(n, m-1, u)."""
    f = [[None] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 or j == 0:
                f[i][j] = np.ones(1)
                continue
            out = np.zeros(i * j + 1)
            a = f[i - 1][j]  # the largest value is in the first sample: U gains j
            out[j : j + len(a)] += a
            b = f[i][j - 1]
            out[: len(b)] += b
            f[i][j] = out
    counts = f[n][m]
    return tuple(np.cumsum(counts) / counts.sum())


def _critical_count(n: int, m: int, level: float) -> int | None:
    """The largest c with P(U <= c - 1) <= (1 - level) / 2, or None when no c >= 1 works."""
    tail = (1.0 - level) / 2.0
    if n <= EXACT_MAX and m <= EXACT_MAX:
        cdf = _mw_cdf(n, m)
        ok = [u for u, p in enumerate(cdf) if p <= tail + 1e-12]
        return ok[-1] + 1 if ok else None
    z = NormalDist().inv_cdf(1.0 - tail)
    c = math.floor(n * m / 2.0 - z * math.sqrt(n * m * (n + m + 1) / 12.0))
    return c if c >= 1 else None


def min_trials(level: float = 0.95) -> int:
    """The fewest trials per run (equal on both sides) for which a shift interval exists."""
    k = 2
    while _critical_count(k, k, level) is None:
        k += 1
    return k


def shift_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Interval | None:
    """Interval for the shift ``b - a`` (Hodges–Lehmann point, exact Mann–Whitney bounds).

    None when the samples are too small for any interval at ``level``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return None
    c = _critical_count(len(a), len(b), level)
    if c is None:
        return None
    diffs = np.sort((b[None, :] - a[:, None]).ravel())
    return Interval(float(np.median(diffs)), float(diffs[c - 1]), float(diffs[-c]), level)


@lru_cache(maxsize=128)
def _signed_rank_cdf(n: int) -> tuple[float, ...]:
    """P(W+ <= w) for w = 0..n(n+1)/2 under H0 (symmetric about 0), exact: subset sums of
    the ranks 1..n."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):
        counts[r:] = counts[r:] + counts[:-r].copy()
    return tuple(np.cumsum(counts) / counts.sum())


def paired_shift_interval(d: np.ndarray, level: float = 0.95) -> Interval | None:
    """Interval for the centre of paired differences ``d`` (Wilcoxon signed-rank inverted:
    order statistics of the Walsh averages, Hodges–Lehmann point). For trials measured in
    the same rounds, pairing removes the round's drift from the comparison. None when
    there are too few pairs for ``level`` (5 pairs: the smallest two-sided p is 1/16)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0 or n > 200:
        return None
    cdf = _signed_rank_cdf(n)
    tail = (1.0 - level) / 2.0
    ok = [w for w, p in enumerate(cdf) if p <= tail + 1e-12]
    if not ok:
        return None
    c = ok[-1] + 1
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2.0)
    return Interval(float(np.median(walsh)), float(walsh[c - 1]), float(walsh[-c]), level)


def t_quantile_975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError("a t interval needs at least 2 values")
    if df <= len(_T975):
        return _T975[df - 1]
    z = NormalDist().inv_cdf(0.975)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    return z + g1 / df + g2 / df**2


def t_interval(values: np.ndarray) -> Interval | None:
    """Mean and 95% t interval of replicates (e.g. accuracy over seeds); None under 2."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return None
    mean = float(v.mean())
    half = t_quantile_975(len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Interval(mean, mean - half, mean + half)


def newcombe_difference(p_a: float, n_a: int, p_b: float, n_b: int) -> Interval:
    """95% interval for ``p_b - p_a`` from the two Wilson intervals (Newcombe 1998, #10)."""
    wa, wb = wilson(p_a, n_a), wilson(p_b, n_b)
    d = p_b - p_a
    lo = d - math.sqrt((p_b - wb.lo) ** 2 + (wa.hi - p_a) ** 2)
    hi = d + math.sqrt((wb.hi - p_b) ** 2 + (p_a - wa.lo) ** 2)
    return Interval(d, lo, hi)


__all__ = [
    "Interval",
    "min_trials",
    "newcombe_difference",
    "paired_shift_interval",
    "shift_interval",
    "t_interval",
    "t_quantile_975",
    "wilson",
]
