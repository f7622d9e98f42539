"""The gate's statistics: exact intervals, their coverage, and the decision rule's error
rates on simulated trials (seeded)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from reports.gate import INCONCLUSIVE, PASS, REGRESSION, decide_accuracy, decide_relative
from reports.intervals import (
    _mw_cdf,
    min_trials,
    newcombe_difference,
    shift_interval,
    t_interval,
    wilson,
)


def test_exact_mann_whitney_distribution_matches_enumeration() -> None:
    n, m = 3, 4
    counts = np.zeros(n * m + 1)
    for first in itertools.combinations(range(n + m), n):  # ranks of the first sample
        u = sum(r for r in first) - n * (n - 1) / 2
        counts[int(u)] += 1
    assert np.allclose(_mw_cdf(n, m), np.cumsum(counts) / counts.sum())


def test_too_few_trials_have_no_interval() -> None:
    assert min_trials(0.95) == 4  # 3 vs 3: the smallest two-sided p is 2/20 = 0.1
    assert shift_interval(np.ones(3), np.ones(3)) is None
    d = decide_relative(np.array([1.0, 1.1, 0.9]), np.array([1.0, 1.2, 1.1]), 0.05)
    assert d.outcome == INCONCLUSIVE and "too few trials (3 vs 3)" in d.reason


def test_shift_interval_covers_the_true_shift() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(1000):
        a = rng.standard_t(3, 6)
        b = rng.standard_t(3, 7) + 0.5
        iv = shift_interval(a, b)
        hits += iv.lo <= 0.5 <= iv.hi
    assert hits / 1000 >= 0.94  # exact: at least 95% for any continuous distribution


def test_decision_rule_error_rates_on_simulated_trials() -> None:
    """7 trials a side, 3% trial-to-trial noise, a 2% drift between the runs."""
    rng = np.random.default_rng(1)

    def outcomes(factor: float) -> dict[str, int]:
        out = {PASS: 0, REGRESSION: 0, INCONCLUSIVE: 0}
        for _ in range(500):
            a = rng.lognormal(0, 0.03, 7)
            b = rng.lognormal(0, 0.03, 7) * 1.02 * factor
            out[decide_relative(a, b, 0.05).outcome] += 1
        return out

    aa = outcomes(1.0)
    assert aa[REGRESSION] <= 5  # ≤ 1% false alarms
    planted = outcomes(1.10)
    assert planted[REGRESSION] >= 450 and planted[PASS] == 0


def test_mde_is_what_the_rule_could_have_flagged() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.lognormal(0, 0.1, 8), rng.lognormal(0, 0.1, 8)
    d = decide_relative(a, b, 0.05)
    assert d.outcome == INCONCLUSIVE and d.mde is not None and d.mde > 0.05
    shifted = decide_relative(a, b * (1 + d.mde) * 1.001 / (1 + d.change), 0.05)
    assert shifted.outcome == REGRESSION


def test_t_wilson_and_newcombe_reference_values() -> None:
    iv = t_interval(np.array([1.0, 2.0, 3.0]))
    assert iv.point == 2.0 and iv.hi - 2.0 == pytest.approx(4.303 / math.sqrt(3), rel=1e-4)
    w = wilson(0.5, 100)  # Wilson (1927): 0.4038 .. 0.5962
    assert (round(w.lo, 4), round(w.hi, 4)) == (0.4038, 0.5962)
    # Newcombe (1998) table II example (a): 56/70 vs 48/80 -> 0.0524 .. 0.3339
    nd = newcombe_difference(48 / 80, 80, 56 / 70, 70)
    assert (round(nd.lo, 4), round(nd.hi, 4)) == (0.0524, 0.3339)


def test_accuracy_decisions_over_seeds_and_for_one_seed() -> None:
    same = decide_accuracy({0: 0.9, 1: 0.91}, {0: 0.9, 1: 0.91}, 1000, 0.5)
    assert same.outcome == PASS
    drop = decide_accuracy({0: 0.9, 1: 0.91, 2: 0.89}, {0: 0.88, 1: 0.89, 2: 0.871}, 1000, 0.5)
    assert drop.outcome == REGRESSION and "3 seeds" in drop.reason
    one = decide_accuracy({0: 0.9}, {0: 0.895}, 1000, 0.5)
    assert one.outcome == INCONCLUSIVE and "1 seed" in one.reason
    assert decide_accuracy({0: 0.9}, {0: 0.9}, 1000, 0.5).outcome == PASS
