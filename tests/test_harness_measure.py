"""The measurement loop on a fake clock (exact arithmetic) and on a real trivial runner."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.measure import latency_stats, measure
from harness.profile_schema import MeasureSettings
from targets.base import EnergyReading, EnergyWindow


class FakeClock:
    """Nanosecond clock advanced only by the fake runner: each query costs a set time."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


class StepRunner:
    """Advances the fake clock by the next cost in a cycle; records what it was given."""

    def __init__(self, clock: FakeClock, costs_ns: list[int]) -> None:
        self.clock, self.costs, self.i, self.seen, self.syncs = clock, costs_ns, 0, [], 0

    def __call__(self, batch):
        self.seen.append(batch["x"][0, 0, 0])
        self.clock.now += self.costs[self.i % len(self.costs)]
        self.i += 1

    def synchronize(self):
        self.syncs += 1


class CountingSensor:
    """An EnergySensor that reports 1 mJ per elapsed fake millisecond of its window."""

    name = "fake"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def available(self):
        from targets.base import Availability

        return Availability(True)

    def window(self):
        import contextlib

        @contextlib.contextmanager
        def cm():
            w = EnergyWindow()
            t0 = self.clock()
            yield w
            mj = (self.clock() - t0) / 1e6
            w.reading = EnergyReading(mj, {"VDD_IN": mj}, "measured", "fake", 10, mj / 1e3, 1.0)

        return cm()


def _batches(n=4):
    return [{"x": np.full((1, 2, 3), i, np.float32)} for i in range(n)]


def test_fake_clock_window_count_duration_and_stats():
    clock = FakeClock()
    runner = StepRunner(clock, [1_000_000, 3_000_000])  # 1 ms, 3 ms alternating
    s = MeasureSettings(
        warmup_s=0.0,
        warmup_n=3,
        min_duration_s=0.02,
        min_count=4,
        percentiles=(50.0, 99.0),
        cv_warn=0.1,
    )
    m = measure(runner, _batches(), s, energy_sensor=CountingSensor(clock), clock=clock)
    assert m.warmup_n == 3  # warm-up: count only (0 s), excluded from samples
    # 3 warm-up + timed queries until >= 20 ms AND >= 4 queries: 1,3,1,3,1,3,1,3,1,3 -> 20 ms
    assert len(m.latencies_ms) == 10 and m.elapsed_s == pytest.approx(0.020)
    assert m.latencies_ms[:2] == (3.0, 1.0)  # the warm-up ended after query #3 (1 ms)
    assert m.stats.mean_ms == pytest.approx(2.0)
    assert m.stats.p(50) == pytest.approx(2.0)
    assert m.stats.cv == pytest.approx(np.std([1, 3] * 5, ddof=1) / 2.0)
    assert not m.stats.stable and any("unstable" in w for w in m.warnings)
    # energy window wraps exactly the timed loop: 20 mJ over 10 queries
    assert m.energy_total_mj == pytest.approx(20.0)
    assert m.energy_mj_per_inference == pytest.approx(2.0)
    assert m.energy_source == "measured" and m.energy_rails_mj == {"VDD_IN": pytest.approx(20.0)}
    assert runner.syncs >= len(m.latencies_ms) + 2  # per query and at both window edges
    assert runner.seen[3:8] == [0.0, 1.0, 2.0, 3.0, 0.0]  # the window cycles batches in order


def test_min_count_dominates_short_duration():
    clock = FakeClock()
    runner = StepRunner(clock, [5_000_000])
    s = MeasureSettings(warmup_s=0.0, warmup_n=0, min_duration_s=0.001, min_count=50)
    m = measure(runner, _batches(1), s, clock=clock)
    assert m.stats.n == 50 and m.stats.cv == 0.0 and m.stats.stable


def test_warmup_time_excluded():
    clock = FakeClock()
    runner = StepRunner(clock, [1_000_000])
    s = MeasureSettings(warmup_s=0.010, warmup_n=1, min_duration_s=0.0, min_count=5)
    m = measure(runner, _batches(), s, clock=clock)
    assert m.warmup_n == 10 and m.stats.n == 5 and m.warmup_s == pytest.approx(0.010)


def test_real_runner_sleep_latency_is_measured():
    def runner(batch):
        time.sleep(0.002)

    s = MeasureSettings(warmup_s=0.0, warmup_n=2, min_duration_s=0.05, min_count=10)
    m = measure(runner, _batches(), s)
    assert m.stats.n >= 10 and m.elapsed_s >= 0.05
    assert 2.0 <= m.stats.p(50) < 10.0


def test_loop_overhead_under_one_percent_of_a_millisecond():
    """A null runner (LoadGen's backend_null) measures the harness's own per-query cost."""
    s = MeasureSettings(warmup_s=0.0, warmup_n=100, min_duration_s=0.05, min_count=2000)
    m = measure(lambda b: None, _batches(), s)
    assert m.stats.p(50) < 0.010, f"loop overhead {m.stats.p(50) * 1e3:.2f} µs per query"


def test_latency_stats_percentiles():
    st = latency_stats(list(range(1, 101)), (50, 90, 99), cv_warn=1.0)
    assert st.p(50) == pytest.approx(50.5) and st.p(90) == pytest.approx(90.1)
    assert st.n == 100 and st.stable
