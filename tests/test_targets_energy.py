"""Energy integration on a recorded rail trace with known power steps."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest

from targets.ina3221 import integrate, reading_from_samples
from targets.tegrastats import TegrastatsSensor

TRACES = Path(__file__).parent / "traces"


def load_trace(name: str) -> list[tuple[float, dict[str, float]]]:
    with (TRACES / name).open() as f:
        rows = list(csv.DictReader(f))
    return [
        (float(r["t_s"]), {k.removesuffix("_mW"): float(v) for k, v in r.items() if k != "t_s"})
        for r in rows
    ]


def test_recorded_step_trace_integrates_to_expected_mj_within_1pct():
    samples = load_trace("ina3221_orin_nano_steps.csv")
    reading = reading_from_samples(samples, "ina3221-sysfs", 10.0)
    # VDD_IN: 5 W for 1 s, 9 W for 1 s, 6 W for 1 s = 20 000 mJ; it is the total rail
    assert reading.total_mj == pytest.approx(20_000, rel=0.01)
    assert reading.rails_mj["VDD_CPU_GPU_CV"] == pytest.approx(800 + 4200 + 2000, rel=0.01)
    assert reading.elapsed_s == pytest.approx(3.0) and reading.samples == 301
    assert reading.warnings == ()


def test_total_is_sum_of_rails_without_a_board_input_rail():
    samples = [
        (0.0, {"VDD_GPU_SOC": 5000.0, "VDD_CPU_CV": 3000.0}),
        (2.0, {"VDD_GPU_SOC": 5000.0, "VDD_CPU_CV": 3000.0}),
    ]
    reading = reading_from_samples(samples, "ina3221-sysfs", None)
    assert reading.total_mj == pytest.approx(16_000)
    assert any("sum of module rails" in w for w in reading.warnings)


def test_window_shorter_than_update_interval_warns():
    reading = reading_from_samples(
        [(0.0, {"VDD_IN": 1.0}), (0.004, {"VDD_IN": 1.0})], "ina3221-sysfs", 10.0
    )
    assert any("shorter than the sensor update interval" in w for w in reading.warnings)


def test_trapezoid_on_a_ramp_is_exact():
    assert integrate([(0.0, {"r": 0.0}), (1.0, {"r": 1000.0}), (2.0, {"r": 2000.0})])[
        "r"
    ] == pytest.approx(2000.0)


def test_tegrastats_fallback_integrates_recorded_lines():
    """Recorded JetPack 6 lines replayed as the tegrastats stream, one per 100 ms of clock."""
    lines = [
        ln
        for ln in (TRACES / "tegrastats_jp56.txt").read_text().splitlines()
        if ln.startswith("09-21-2025")
    ]
    ticks = iter(i * 0.1 for i in range(100))

    class Stream:
        def __init__(self, interval_ms: int) -> None:
            self.interval_ms = interval_ms

        def __iter__(self):
            return iter(lines * 11)

        def close(self) -> None:
            pass

    sensor = TegrastatsSensor(interval_ms=100, clock=lambda: next(ticks), spawn=Stream)
    with sensor.window() as w:
        import time

        time.sleep(0.05)
    r = w.reading
    assert r.sensor == "tegrastats" and r.samples == 11
    assert r.total_mj == pytest.approx(2957 * 1.0)  # VDD_IN 2957 mW for 1.0 s


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_estimated_energy_follows_latency_not_cpu_time():
    """Two runs of one runner: the estimate moves no more than the p50 latency it comes
    from. Likewise between a runner that sleeps and one that spins (process CPU time, the
    previous estimate, charged the spinner alone, whatever their latencies)."""
    from harness.profile_schema import MeasureSettings
    from harness.trials import Subject, measure_trials
    from targets.cpu_energy import ActiveCoresEstimateSensor

    s = MeasureSettings(warmup_s=0.0, warmup_n=2, min_duration_s=0.03, min_count=10, trials=3)
    batches = [{"x": np.zeros((1, 1, 1), np.float32)}]
    sensor = ActiveCoresEstimateSensor(threads=lambda: 1)
    runs = [
        measure_trials(Subject(lambda b: time.sleep(0.002), batches, energy_sensor=sensor), s)
        for _ in range(2)
    ]
    spin = measure_trials(Subject(lambda b: _spin(0.002), batches, energy_sensor=sensor), s)
    for a, b in [(runs[0], runs[1]), (runs[0], spin)]:
        de = abs(b.energy_mj_per_inference / a.energy_mj_per_inference - 1)
        assert de <= abs(b.latency_ms_p50 / a.latency_ms_p50 - 1) + 0.01
    assert spin.window.energy_model == "cpu-active-cores-v1: 8 W/core × 1 threads"


def test_modelled_estimate_charges_the_median_query_not_the_stalls():
    """Fake clock: 9 queries of 1 ms and one 50 ms stall (another tenant had the cores).
    A measured sensor charges window energy / queries; the model charges its power × the
    median query (8 W × 1 ms = 8 mJ), whatever the stall."""
    from harness.measure import measure
    from harness.profile_schema import MeasureSettings
    from targets.cpu_energy import ActiveCoresEstimateSensor

    now = [0]
    costs = iter([1_000_000] * 5 + [50_000_000] + [1_000_000] * 100)

    def runner(batch):
        now[0] += next(costs)

    s = MeasureSettings(warmup_s=0.0, warmup_n=0, min_duration_s=0.0, min_count=10)
    sensor = ActiveCoresEstimateSensor(clock=lambda: now[0] / 1e9, threads=lambda: 1)
    m = measure(runner, [{"x": np.zeros(1)}], s, energy_sensor=sensor, clock=lambda: now[0])
    assert m.energy_total_mj == pytest.approx(0.059 * 8.0 * 1000)  # 59 ms at 8 W
    assert m.energy_mj_per_inference == pytest.approx(8.0)
    assert m.energy_source == "estimated" and m.energy_model.startswith("cpu-active-cores-v1")


def test_a_modelled_reading_is_charged_at_the_median_unit_a_measured_one_whole():
    from targets.base import EnergyReading

    # 10 J over a 2 s window that held 100 queries, typically 5 ms each (the rest: stalls)
    measured = EnergyReading(10_000.0, {"pkg": 10_000.0}, "measured", "rapl", 2, 2.0)
    modelled = EnergyReading(
        10_000.0, {"cpu": 10_000.0}, "estimated", "cpu-model", 2, 2.0, model="cpu-v1"
    )
    assert measured.charged_mj(0.005, 100) == 10_000.0  # the sensor saw what ran
    assert modelled.charged_mj(0.005, 100) == pytest.approx(2_500.0)  # 5 W × 0.5 s
    assert modelled.charged_mj(0.005, 0) == 10_000.0  # nothing to charge per unit
