"""The latency significance tests the regression gate relies on."""

from __future__ import annotations

import numpy as np
import pytest

from reports.stats import bootstrap_percentile_test, mann_whitney_u


def test_mann_whitney_matches_scipy_asymptotic() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n_a, n_b, shift in ((30, 40, 0.0), (200, 150, 0.05), (50, 50, 0.2)):
        a = np.round(rng.lognormal(0, 0.1, n_a) * (1 + shift), 2)  # rounding makes ties
        b = np.round(rng.lognormal(0, 0.1, n_b), 2)
        ours = mann_whitney_u(a, b)
        ref = scipy_stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
        assert ours.u == pytest.approx(ref.statistic)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_mann_whitney_direction_and_degenerate_cases() -> None:
    rng = np.random.default_rng(1)
    base = rng.lognormal(0, 0.05, 300)
    slow = base * 1.05
    r = mann_whitney_u(slow, rng.lognormal(0, 0.05, 300))
    assert r.p_value < 1e-6 and r.prob_a_greater > 0.5
    same = mann_whitney_u(np.ones(10), np.ones(12))
    assert same.p_value == 1.0 and same.prob_a_greater == 0.5
    with pytest.raises(ValueError):
        mann_whitney_u(np.array([]), base)


def test_bootstrap_percentile_sees_tail_shift_not_noise() -> None:
    rng = np.random.default_rng(2)
    a = rng.lognormal(0, 0.05, 400)
    b = rng.lognormal(0, 0.05, 400)
    assert bootstrap_percentile_test(a, b, 99).p_value > 0.05
    tail = b.copy()
    tail[rng.random(400) < 0.05] *= 1.8  # only the tail moves
    shift = bootstrap_percentile_test(tail, a, 99)
    assert shift.diff > 0 and shift.p_value < 0.01
    # Deterministic: the gate must give the same answer twice.
    assert bootstrap_percentile_test(tail, a, 99) == shift
