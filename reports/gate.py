"""The gate's decision for one metric of one cell: pass, regression or inconclusive.

The replicates are **trials** (a run's independent timed windows), never the queries of
one window: queries share the machine's state, so a test on them calls every drift
significant (an A/A pair of quickstart runs gave p = 1e-255 for a +72% "change").

Rule for a lower-is-better metric with threshold ``thr`` (e.g. 5% for latency p50), on
the candidate/baseline ratio of trial medians with its 95% interval [lo, hi]:

- **regression** when the ratio exceeds ``1 + thr`` *and* ``lo > 1 + thr/2``: the test
  must be confident the change is at least half the threshold. Requiring only ``lo > 1``
  (asv's "factor and significance") lets a sub-threshold machine drift of 3-4% plus noise
  cross the threshold with an interval that excludes 1 — that is how sequential A/A runs
  on a shared machine raise false alarms. Half the threshold keeps the A/A false-alarm
  rate under the interval's own 2.5% one-sided error even under such drift, and costs
  little power at the threshold's scale (a 10% slowdown with a ±4% interval still passes
  ``lo > 1.025`` for a 5% threshold).
- **pass** when ``hi < 1 + thr``: a change as large as the threshold is ruled out.
- **improvement** mirrors a regression (ratio below ``1/(1 + thr)``, ``hi < 1/(1 + thr/2)``).
- **inconclusive** otherwise, with the **MDE**: the smallest change this pair's noise
  would have let the rule call a regression, ``max(thr, (1 + thr/2) · ratio/lo − 1)``.

Accuracy (absolute points) follows the same rule on the paired over-seed difference (t
interval) or, with one seed, on Newcombe's interval for two binomial proportions; an
identical accuracy from the same seed is a pass (the same model on the same split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reports.intervals import (
    Interval,
    min_trials,
    newcombe_difference,
    paired_shift_interval,
    shift_interval,
    t_interval,
)

PASS, REGRESSION, INCONCLUSIVE, IMPROVEMENT = "pass", "regression", "inconclusive", "improvement"


@dataclass(frozen=True)
class Decision:
    """One metric's verdict; ``change``/``lo``/``hi`` are relative (ratio − 1) or points."""

    outcome: str
    change: float  # point estimate: ratio − 1 (relative metrics) or points (accuracy)
    lo: float
    hi: float
    mde: float | None  # smallest detectable change, same unit as ``change``
    reason: str = ""


def decide_relative(base: np.ndarray, cand: np.ndarray, threshold: float,
                    level: float = 0.95, paired: bool = False) -> Decision:  # fmt: skip
    """Lower is better; ``threshold`` is a fraction (0.05 = 5%); values are trial figures.

    ``paired``: trial i of both sides ran in the same round (``check --interleave``); the
    interval is then the signed-rank one of the per-round log ratios when there are enough
    rounds (≥ 6 for 95%), else the unpaired one."""
    if paired:
        b0, c0 = np.asarray(base, dtype=float), np.asarray(cand, dtype=float)
        keep = np.isfinite(b0) & np.isfinite(c0) & (b0 > 0) & (c0 > 0)
        iv = paired_shift_interval(np.log(c0[keep]) - np.log(b0[keep]), level)
        if iv is not None:  # point: the Hodges–Lehmann ratio, inside its own interval
            return _decide(math.exp(iv.point), math.exp(iv.lo), math.exp(iv.hi), threshold)
    b = _positive(base)
    c = _positive(cand)
    if len(b) == 0 or len(c) == 0:
        return Decision(INCONCLUSIVE, math.nan, math.nan, math.nan, None,
                        f"too few trials ({len(b)} vs {len(c)}): the store has no trial "
                        "values for this cell")  # fmt: skip
    point = float(np.median(c) / np.median(b))
    iv = shift_interval(np.log(b), np.log(c), level)
    if iv is None:
        need = min_trials(level)
        return Decision(INCONCLUSIVE, point - 1, math.nan, math.nan, None,
                        f"too few trials ({len(b)} vs {len(c)}): a {level:.0%} interval "
                        f"needs at least {need} per run")  # fmt: skip
    return _decide(point, math.exp(iv.lo), math.exp(iv.hi), threshold)


def _decide(point: float, lo: float, hi: float, threshold: float) -> Decision:
    """The rule (module docstring) on a ratio and its interval."""
    mde = max(threshold, (1 + threshold / 2) * point / lo - 1) if lo > 0 else math.inf
    if point > 1 + threshold and lo > 1 + threshold / 2:
        outcome = REGRESSION
    elif point < 1 / (1 + threshold) and hi < 1 / (1 + threshold / 2):
        outcome = IMPROVEMENT
    elif hi < 1 + threshold:
        outcome = PASS
    else:
        outcome = INCONCLUSIVE
    return Decision(outcome, point - 1, lo - 1, hi - 1, mde)


def _positive(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    return v[np.isfinite(v) & (v > 0)]


def decide_points(diff: Interval, threshold: float, basis: str) -> Decision:
    """Higher is better, in points: ``diff`` is candidate − baseline with its interval."""
    d, lo, hi = diff.point, diff.lo, diff.hi
    mde = max(threshold, threshold / 2 + (hi - d))
    if d < -threshold and hi < -threshold / 2:
        outcome = REGRESSION
    elif d > threshold and lo > threshold / 2:
        outcome = IMPROVEMENT
    elif lo > -threshold:
        outcome = PASS
    else:
        outcome = INCONCLUSIVE
    return Decision(outcome, d, lo, hi, mde, basis)


def decide_accuracy(base_by_seed: dict[int, float], cand_by_seed: dict[int, float],
                    n_eval: int | None, threshold_points: float) -> Decision:  # fmt: skip
    """Accuracy (fractions in, points out), paired by training seed."""
    seeds = sorted(set(base_by_seed) & set(cand_by_seed))
    if not seeds:
        return Decision(INCONCLUSIVE, math.nan, math.nan, math.nan, None, "no common seed")
    diffs = np.array([cand_by_seed[s] - base_by_seed[s] for s in seeds]) * 100.0
    if len(seeds) >= 2:
        iv = t_interval(diffs)
        assert iv is not None
        return decide_points(iv, threshold_points, f"{len(seeds)} seeds, paired t interval")
    d = float(diffs[0])
    if d == 0.0:
        return Decision(PASS, 0.0, 0.0, 0.0, None, "1 seed, identical accuracy")
    if not n_eval:
        return Decision(INCONCLUSIVE, d, math.nan, math.nan, None, "1 seed, no n_eval")
    s = seeds[0]
    nd = newcombe_difference(base_by_seed[s], int(n_eval), cand_by_seed[s], int(n_eval))
    iv = Interval(d, nd.lo * 100.0, nd.hi * 100.0)
    return decide_points(iv, threshold_points, "1 seed, binomial (Newcombe) interval")


__all__ = ["Decision", "decide_accuracy", "decide_points", "decide_relative"]
