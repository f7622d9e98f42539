"""Trials and interleaving on a fake clock (exact arithmetic), and their intervals."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from harness.intervals import median_interval, relative_mad, wilson_interval
from harness.profile_schema import MeasureSettings
from harness.trials import Subject, measure_interleaved, measure_trials, round_orders


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class FakeRunner:
    """Each call costs ``call_ns`` (plus ``drift_ns`` per call made so far on the shared
    clock, a machine slowing down); ``prepare`` costs ``prepare_ns`` and tags the batch."""

    def __init__(self, name, clock, call_ns, prepare_ns=0, drift_ns=0, log=None, fail_at=None):
        self.name, self.clock, self.call_ns = name, clock, call_ns
        self.prepare_ns, self.drift_ns, self.log = prepare_ns, drift_ns, log
        self.fail_at, self.calls, self.unprepared_calls = fail_at, 0, 0

    def prepare(self, batch):
        self.clock.now += self.prepare_ns
        return {**batch, "prepared": True}

    def __call__(self, batch):
        if "prepared" not in batch:
            self.unprepared_calls += 1
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise RuntimeError(f"{self.name} broke")
        self.clock.now += self.call_ns + self.drift_ns * self.clock.now // 1_000_000_000
        if self.log is not None:
            self.log.append(self.name)


def _batches(n=3):
    return [{"x": np.zeros((1, 2, 3), np.float32)} for _ in range(n)]


def _settings(**kw):
    base = dict(warmup_s=0.0, warmup_n=2, min_duration_s=0.01, min_count=5, trials=5)
    base.update(kw)
    return MeasureSettings(percentiles=(50.0, 99.0), **base)


def test_prepare_runs_outside_every_window_and_only_calls_are_timed():
    clock = FakeClock()
    r = FakeRunner("a", clock, call_ns=2_000_000, prepare_ns=500_000_000)  # prepare: 0.5 s
    m = measure_trials(Subject(r, _batches()), _settings(), clock=clock)
    assert r.unprepared_calls == 0  # every timed (and warm-up) call got a prepared batch
    assert len(m.trials) == 5
    for t in m.trials:  # 10 ms min duration at 2 ms a call -> 5 calls, none includes prepare
        assert t.n == 5 and t.latency_ms_p50 == pytest.approx(2.0)
        assert t.elapsed_s == pytest.approx(0.010)
    assert m.latency_ms_p50 == pytest.approx(2.0) and m.latency_trial_spread == 0.0
    assert m.stable and m.unstable_reason is None
    assert m.warmup_n == 2 and m.trials[1].window.warmup_n == 0  # warm-up once per cell
    assert m.sample_trials == tuple(t for t in range(5) for _ in range(5))
    assert len(m.latencies_ms) == 25


def test_rounds_interleave_every_runner_once_per_round_with_rotated_order():
    clock, log = FakeClock(), []
    names = "abcd"
    runners = [FakeRunner(n, clock, call_ns=1_000_000, log=log) for n in names]
    s = _settings(warmup_n=0, min_count=1, min_duration_s=0.0, trials=8)
    out = measure_interleaved([Subject(r, _batches()) for r in runners], s, seed=3, clock=clock)
    assert len(log) == 4 * 8 and all(len(m.trials) == 8 for m in out)
    rounds = [log[i * 4 : (i + 1) * 4] for i in range(8)]
    assert all(sorted(r) == list(names) for r in rounds)  # one trial of each per round
    assert len({tuple(r) for r in rounds}) > 1  # the order changes between rounds
    for m in out:  # each runner sat in every position equally often (8 rounds / 4 places)
        positions = sorted(t.position for t in m.trials)
        assert positions == [0, 0, 1, 1, 2, 2, 3, 3]
        assert [t.round for t in m.trials] == list(range(8))


def test_round_orders_balance_positions_when_trials_are_fewer_than_runners():
    orders = round_orders(12, 5, seed=1)
    assert all(sorted(o) == list(range(12)) for o in orders)
    mean_pos = [np.mean([o.index(i) for o in orders]) for i in range(12)]
    assert max(mean_pos) - min(mean_pos) <= 12 / 5 + 1e-9  # no runner is always first
    assert round_orders(12, 5, seed=1) == orders  # seeded: reproducible
    assert round_orders(12, 5, seed=2) != orders


def test_drift_hits_interleaved_runners_alike():
    """A machine slowing down over time: run one after the other, the second runner looks
    slower; interleaved, two identical runners get the same figure."""
    clock = FakeClock()
    kw = dict(call_ns=1_000_000, drift_ns=200_000)  # +0.2 ms per call per second elapsed
    s = _settings(warmup_n=0, min_duration_s=0.2, min_count=10, trials=6)
    seq = [
        measure_trials(Subject(FakeRunner(n, clock, **kw), _batches()), s, clock=clock)
        for n in "ab"
    ]
    seq_gap = seq[1].latency_ms_p50 / seq[0].latency_ms_p50 - 1
    clock2 = FakeClock()
    pair = [Subject(FakeRunner(n, clock2, **kw), _batches()) for n in "ab"]
    inter = measure_interleaved(pair, s, seed=0, clock=clock2)
    inter_gap = inter[1].latency_ms_p50 / inter[0].latency_ms_p50 - 1
    assert seq_gap > 0.15
    assert abs(inter_gap) < seq_gap / 4


def test_spread_over_limit_marks_unstable_with_a_reason():
    clock = FakeClock()
    s = _settings(warmup_n=0, min_duration_s=0.5, min_count=10, trials=5, max_trial_spread=0.05)
    m = measure_trials(
        Subject(FakeRunner("a", clock, call_ns=1_000_000, drift_ns=300_000), _batches()),
        s,
        clock=clock,
    )
    p50s = [t.latency_ms_p50 for t in m.trials]
    assert m.latency_trial_spread == pytest.approx(relative_mad(p50s))
    assert m.latency_trial_spread > 0.05 and not m.stable
    assert "trial spread" in m.unstable_reason and "5 trial medians" in m.unstable_reason
    ci = m.latency_ms_p50_ci
    assert (ci.lo, ci.hi) == (min(p50s), max(p50s)) and ci.level == pytest.approx(1 - 2 / 32)
    assert m.latency_ms_p50 == pytest.approx(float(np.median(p50s)))


def test_a_runner_that_breaks_fails_alone():
    clock = FakeClock()
    good = FakeRunner("g", clock, call_ns=1_000_000)
    bad = FakeRunner("b", clock, call_ns=1_000_000, fail_at=12)
    s = _settings(warmup_n=0, min_count=5, min_duration_s=0.0, trials=4)
    out = measure_interleaved([Subject(good, _batches()), Subject(bad, _batches())], s, clock=clock)
    assert isinstance(out[1], RuntimeError) and "b broke" in str(out[1])
    assert len(out[0].trials) == 4 and bad.calls == 12  # not called after it broke


def test_relative_mad_ignores_one_outlier_trial():
    assert relative_mad([1.0, 1.0, 1.01, 0.99, 3.0]) == pytest.approx(0.01)
    assert relative_mad([2.0]) == 0.0


def test_median_interval_order_statistics_and_coverage():
    assert median_interval([5.0]) is None
    ten = median_interval(list(range(10, 0, -1)))  # n=10: k=2 reaches 97.9%, k=3 only 89%
    assert (ten.lo, ten.hi) == (2.0, 9.0)
    assert ten.level == pytest.approx(1 - 2 * 11 / 1024)
    nine = median_interval(list(range(1, 10)))
    assert (nine.lo, nine.hi) == (2.0, 8.0) and nine.level >= 0.95
    seven = median_interval(list(range(1, 8)))
    assert (seven.lo, seven.hi) == (1.0, 7.0) and seven.level == pytest.approx(1 - 2 / 128)


def test_median_interval_covers_the_median_about_as_often_as_it_says():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        iv = median_interval(rng.lognormal(0.0, 0.5, size=9))
        hits += iv.lo <= 1.0 <= iv.hi  # the lognormal's median is exp(0) = 1
    assert abs(hits / 2000 - median_interval(range(9)).level) < 0.02


def test_wilson_interval_known_values():
    iv = wilson_interval(81, 100)  # textbook: 0.7222 .. 0.8749
    assert iv.lo == pytest.approx(0.7222, abs=1e-4) and iv.hi == pytest.approx(0.8749, abs=1e-4)
    edge = wilson_interval(0, 50)
    assert edge.lo == 0.0 and 0.0 < edge.hi < 0.08
    assert wilson_interval(0, 0) is None
    assert math.isclose(wilson_interval(50, 100).lo + wilson_interval(50, 100).hi, 1.0)


class SleepingRunner:
    """A runner that waits instead of computing: its process gets no CPU for it, as a
    runner does whose core another process holds."""

    def __call__(self, batch):
        time.sleep(0.002)


class SpinningRunner:
    """A runner that computes on one thread only (busy for each call's 2 ms)."""

    def __call__(self, batch):
        end = time.perf_counter() + 0.002
        while time.perf_counter() < end:
            pass


def test_a_cpu_runner_that_did_not_get_the_cpu_is_unstable_whatever_its_spread():
    s = _settings(warmup_n=0, min_duration_s=0.03, min_count=5, trials=3, max_trial_spread=10.0)
    one = lambda: 1  # noqa: E731
    starved = measure_trials(Subject(SleepingRunner(), _batches(), cpu_threads=one), s)
    assert starved.cpu_share is not None and starved.cpu_share < 0.5
    assert starved.cpu_threads == 1 and all(t.cpu_threads == 1 for t in starved.trials)
    assert not starved.stable and "CPU share" in starved.unstable_reason
    assert "trial spread" not in starved.unstable_reason  # the trials agree; the CPU did not
    # an accelerator's host thread waits on the device by design: no CPU check there
    waiting = measure_trials(Subject(SleepingRunner(), _batches()), s)
    assert waiting.stable and waiting.cpu_share is not None and waiting.cpu_threads is None


def test_the_cpu_share_is_per_compute_thread():
    # one busy thread is at most one core: for a runner given 2 threads, half of them idle
    s = _settings(warmup_n=0, min_duration_s=0.03, min_count=5, trials=3, max_trial_spread=10.0)
    m = measure_trials(Subject(SpinningRunner(), _batches(), cpu_threads=lambda: 2), s)
    assert m.cpu_share is not None and m.cpu_share <= 1.05
    assert not m.stable and "per thread" in m.unstable_reason and "2 thread(s)" in m.unstable_reason
