"""Transfers stay outside the compute window (trtexec's H2D / compute / D2H split).

A fake GPU runner on a fake nanosecond clock: ``prepare`` (the H2D copy) takes 5 ms,
each query's compute 1 ms and its D2H copy 0.25 ms, recorded the way the TensorRT
runner records them. Through the harness's real measurement path the per-query
latencies must be exactly compute + D2H, never the copy in; the device timings must
count only the timed window's queries, and the window's elapsed time must exclude
every prepare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from harness.devicetiming import device_extra, window_start
from harness.profile_schema import MeasureSettings
from harness.trials import Subject, measure_trials
from targets.base import MemoryReading, Runner
from targets.device_timing import DeviceTimings

H2D_NS, COMPUTE_NS, D2H_NS = 5_000_000, 1_000_000, 250_000


class FakeClock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class OnDevice(dict):
    """A batch the fake runner has "copied" to its device."""


class FakeGpuRunner(Runner):
    runtime = "fake-gpu"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.timings = DeviceTimings()
        self.raw_calls = 0
        self.modalities = ("x",)

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        if isinstance(inputs, OnDevice):
            return inputs
        self.clock.ns += H2D_NS
        self.timings.add("h2d_ms", H2D_NS / 1e6)
        return OnDevice(inputs)

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        if not isinstance(inputs, OnDevice):
            self.raw_calls += 1
            inputs = self.prepare(inputs)  # an unprepared batch would pay the copy here
        self.clock.ns += COMPUTE_NS
        self.timings.add("compute_ms", COMPUTE_NS / 1e6)
        self.clock.ns += D2H_NS
        self.timings.add("d2h_ms", D2H_NS / 1e6)
        return np.zeros((1, 2), np.float32)

    def mark_window(self) -> None:
        self.timings.mark_window()

    def device_timings_ms(self) -> Mapping[str, list[float]]:
        return self.timings.window()


class NoSensorTarget:
    """A target with no energy sensor (the fake runner's device has none)."""

    def __init__(self) -> None:
        self.resets = 0

    def energy_sensor(self) -> None:
        return None

    def reset_memory_peak(self) -> None:
        self.resets += 1

    def memory(self) -> MemoryReading:
        return MemoryReading(1.0)


def test_transfers_are_outside_the_compute_window():
    clock = FakeClock()
    runner = FakeGpuRunner(clock)
    target = NoSensorTarget()
    batches = [{"x": np.zeros((1, 4), np.float32)} for _ in range(3)]
    settings = MeasureSettings(warmup_s=0.0, warmup_n=4, min_duration_s=0.0, min_count=25, trials=3)
    subject = Subject(runner, batches, memory_reset=window_start(target, runner))
    m = measure_trials(subject, settings, clock=clock)
    assert runner.raw_calls == 0  # every timed query got a device-resident batch
    assert m.latencies_ms == pytest.approx([(COMPUTE_NS + D2H_NS) / 1e6] * 75)
    assert all(t.elapsed_s == pytest.approx(25 * (COMPUTE_NS + D2H_NS) / 1e9) for t in m.trials)
    t = device_extra(runner)["device_timings_ms"]
    assert t["h2d_ms"]["n"] == 3 and t["h2d_ms"]["mean"] == pytest.approx(5.0)
    assert t["compute_ms"]["n"] == 75 and t["compute_ms"]["p50"] == pytest.approx(1.0)  # no warm-up
    assert t["d2h_ms"]["n"] == 75 and t["d2h_ms"]["max"] == pytest.approx(0.25)
    assert target.resets == 3  # one memory-peak reset per trial window


def test_without_prepare_the_copy_would_land_in_every_query():
    """The control: the same runner called on raw batches pays H2D inside each query."""
    from harness.measure import timed_window

    clock = FakeClock()
    runner = FakeGpuRunner(clock)
    settings = MeasureSettings(warmup_s=0.0, warmup_n=0, min_duration_s=0.0, min_count=5)
    raw = [{"x": np.zeros((1, 4), np.float32)}]
    m = timed_window(runner, raw, settings, sync=lambda: None, clock=clock, warmup=(0, 0.0))
    assert m.latencies_ms == pytest.approx([(H2D_NS + COMPUTE_NS + D2H_NS) / 1e6] * 5)
