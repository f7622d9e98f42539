"""Mann–Whitney U test on raw latency samples, in numpy (no scipy dependency).

Latency distributions are skewed with heavy tails, so a rank test is the right tool to
ask "is the candidate stochastically slower?" without assuming normality. With the
sample counts a benchmark window collects (tens to thousands) the normal approximation
with tie correction is accurate; it matches ``scipy.stats.mannwhitneyu(...,
method="asymptotic")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MannWhitney:
    """U of the first sample, the two-sided p-value and the effect direction."""

    u: float
    p_value: float
    n_a: int
    n_b: int
    # P(a > b) + 0.5 P(a == b): 0.5 means no shift, > 0.5 means a tends to be larger.
    prob_a_greater: float


def _rank_average(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties averaged, and the tie-group sizes."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # mean of ranks first+1 .. first+count
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.repeat(avg, counts)
    return ranks, counts


def mann_whitney_u(a: np.ndarray, b: np.ndarray) -> MannWhitney:
    """Two-sided Mann–Whitney U test with tie and continuity correction."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    n_a, n_b = len(a), len(b)
    if n_a == 0 or n_b == 0:
        raise ValueError("Mann–Whitney U needs at least one sample on each side")
    ranks, ties = _rank_average(np.concatenate([a, b]))
    u_a = float(ranks[:n_a].sum() - n_a * (n_a + 1) / 2.0)
    n = n_a + n_b
    mean_u = n_a * n_b / 2.0
    tie_term = float((ties**3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    var_u = n_a * n_b / 12.0 * ((n + 1) - tie_term)
    if var_u <= 0:  # every value identical: no evidence of any shift
        return MannWhitney(u_a, 1.0, n_a, n_b, 0.5)
    u_big = max(u_a, n_a * n_b - u_a)
    z = (u_big - mean_u - 0.5) / math.sqrt(var_u)
    p = min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0)))
    return MannWhitney(u_a, p, n_a, n_b, u_a / (n_a * n_b))


@dataclass(frozen=True)
class PercentileShift:
    """Bootstrap test of a shift in one percentile (e.g. p99) between two samples."""

    q: float
    diff: float  # percentile(a) - percentile(b)
    p_value: float  # two-sided
    n_boot: int


def bootstrap_percentile_test(a: np.ndarray, b: np.ndarray, q: float, *, n_boot: int = 1000,
                              seed: int = 0) -> PercentileShift:  # fmt: skip
    """Is percentile ``q`` of ``a`` different from that of ``b``?

    A rank test answers for the bulk of the distribution; a tail percentile can move
    alone, and its estimate from a few hundred samples rests on a handful of them. The
    bootstrap's spread says how much of an observed p99 change that noise explains.
    Seeded, so the gate gives the same answer on the same stores.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("a percentile test needs at least one sample on each side")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(len(a), len(b)))  # bound memory for long windows
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        ra = a[rng.integers(0, len(a), (k, len(a)))]
        rb = b[rng.integers(0, len(b), (k, len(b)))]
        diffs[start : start + k] = np.percentile(ra, q, axis=1) - np.percentile(rb, q, axis=1)
    p_greater = (np.count_nonzero(diffs <= 0) + 1) / (n_boot + 1)
    p_less = (np.count_nonzero(diffs >= 0) + 1) / (n_boot + 1)
    diff = float(np.percentile(a, q) - np.percentile(b, q))
    return PercentileShift(q, diff, min(1.0, 2 * min(p_greater, p_less)), n_boot)
