"""Sensor-dropout simulation: fixed subsets, random drop, seeded Markov bursts."""

from __future__ import annotations

import numpy as np
import pytest

from harness.dropout import markov_trace, parse_condition
from sentryfuse.errors import SentryFuseError

MODS = ("acc", "gyro", "mag")


def _runs(col: np.ndarray, value: bool) -> list[int]:
    """Lengths of consecutive runs equal to ``value`` in a 1-D bool array."""
    out, n = [], 0
    for v in col:
        if v == value:
            n += 1
        elif n:
            out.append(n)
            n = 0
    if n:
        out.append(n)
    return out


def test_markov_burst_statistics_match_parameters():
    rng = np.random.default_rng(7)
    p_off, mean_len = 0.3, 20.0
    mask = markov_trace(200_000, 3, p_off, mean_len, rng)
    off_frac = 1.0 - mask.mean(axis=0)
    assert np.allclose(off_frac, p_off, atol=0.02)
    for j in range(3):
        bursts = _runs(mask[:, j], False)
        assert abs(np.mean(bursts) - mean_len) / mean_len < 0.06
    # bursty, not independent: P(off | off before) ~ 1 - 1/mean_len, far above p_off
    prev_off, off = ~mask[:-1, 0], ~mask[1:, 0]
    assert (off & prev_off).sum() / prev_off.sum() == pytest.approx(1 - 1 / mean_len, abs=0.01)


def test_burst_condition_seeded_and_never_empty():
    cond = parse_condition("burst:0.6:10")
    a = cond.present_mask(5000, MODS, np.random.default_rng(1))
    b = cond.present_mask(5000, MODS, np.random.default_rng(1))
    c = cond.present_mask(5000, MODS, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.any(axis=1).all()  # at least one sensor on in every sample
    assert cond.static_present(MODS) is None


def test_random_drop_rate_and_fixed_subsets():
    mask = parse_condition("random:0.25").present_mask(40_000, MODS, np.random.default_rng(0))
    assert mask.any(axis=1).all()
    assert 1 - mask.mean() == pytest.approx(0.25 - 0.25**3 / 3, abs=0.01)
    drop = parse_condition("drop:gyro+mag")
    assert drop.static_present(MODS) == ("acc",)
    m = drop.present_mask(4, MODS, np.random.default_rng(0))
    assert m.tolist() == [[True, False, False]] * 4
    assert parse_condition("all").static_present(MODS) == MODS


@pytest.mark.parametrize("text", ["drop:", "random:1.5", "burst:0.3", "burst:0.3:0.5", "foo"])
def test_malformed_conditions(text):
    with pytest.raises(SentryFuseError):
        parse_condition(text)


def test_condition_checks_dataset_sensors():
    with pytest.raises(SentryFuseError, match="did you mean 'gyro'"):
        parse_condition("drop:gyr").check_modalities(MODS)
    with pytest.raises(SentryFuseError, match="drops every sensor"):
        parse_condition("drop:acc+gyro+mag").check_modalities(MODS)
