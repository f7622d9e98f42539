"""The measurement loop, the MLPerf LoadGen / trtexec way.

The runner owns timing; the target only runs and synchronises. Warm-up is excluded by
both time and count; the timed window runs until a minimum duration AND a minimum count
are both met; the device is synchronised at the window edges and after every query
(SingleStream: a query's latency ends when its result exists); input batches are built
before the window so sample loading is never timed. The energy window wraps exactly the
timed loop, so mJ per inference = window energy / queries (MLPerf Power); a modelled
estimate is charged at the window's median query instead (see ``_energy_fields``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.profile_schema import MeasureSettings

Clock = Callable[[], int]  # nanoseconds, monotonic
Batch = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class LatencyStats:
    n: int
    mean_ms: float
    percentiles_ms: Mapping[float, float]  # {50.0: p50, 90.0: p90, ...}
    cv: float  # std/mean (sample std)
    stable: bool  # cv <= the profile's cv_warn

    def p(self, q: float) -> float | None:
        return self.percentiles_ms.get(float(q))


@dataclass(frozen=True)
class Measurement:
    """One timed window: raw per-query latencies and what was read around them."""

    latencies_ms: tuple[float, ...]
    stats: LatencyStats
    elapsed_s: float  # wall time of the timed window (edge to edge)
    warmup_n: int
    warmup_s: float
    energy_total_mj: float | None = None
    energy_mj_per_inference: float | None = None
    energy_rails_mj: Mapping[str, float] = field(default_factory=dict)
    energy_source: str | None = None
    energy_sensor: str | None = None
    energy_model: str | None = None  # the power model behind an estimate (None: measured)
    peak_memory_mb: float | None = None
    cuda_peak_mb: float | None = None
    warnings: tuple[str, ...] = ()
    cpu_s: float | None = None  # this process's CPU time over the timed loop, all threads

    @property
    def cpu_share(self) -> float | None:
        """Cores' worth of CPU the process got over the window (CPU s ÷ wall s)."""
        if self.cpu_s is None or self.elapsed_s <= 0:
            return None
        return self.cpu_s / self.elapsed_s


def latency_stats(
    latencies_ms: Sequence[float], percentiles: Sequence[float], cv_warn: float
) -> LatencyStats:
    """Percentiles (linear interpolation, numpy's default), mean and CV of raw samples."""
    arr = np.asarray(latencies_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no latency samples")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    cv = std / mean if mean > 0 else 0.0
    pct = {
        float(q): float(v)
        for q, v in zip(percentiles, np.percentile(arr, percentiles), strict=True)
    }
    return LatencyStats(int(arr.size), mean, pct, cv, cv <= cv_warn)


def measure(
    runner: Callable[[Batch], object],
    batches: Sequence[Batch],
    settings: MeasureSettings,
    *,
    synchronize: Callable[[], None] | None = None,
    energy_sensor: object | None = None,
    memory: Callable[[], object] | None = None,
    memory_reset: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter_ns,
) -> Measurement:
    """Warm up, then time queries until ``min_duration_s`` and ``min_count`` are both met.

    One window, one runner. ``batches`` are pre-built inputs cycled in order (passed
    through ``runner.prepare`` first, outside any timed region). ``energy_sensor`` is a
    ``targets.base.EnergySensor`` (or None); ``memory`` returns a ``MemoryReading``;
    ``memory_reset`` starts its peak at the timed window, so the peak is this window's.
    Replicated, interleaved trials of several runners: ``harness.trials``.
    """
    prepared = prepare_batches(runner, batches)
    sync = synchronize or getattr(runner, "synchronize", None) or (lambda: None)
    warmup_n, warmup_s = warm_up(runner, prepared, settings, sync, clock)
    return timed_window(
        runner,
        prepared,
        settings,
        sync=sync,
        energy_sensor=energy_sensor,
        memory=memory,
        memory_reset=memory_reset,
        clock=clock,
        warmup=(warmup_n, warmup_s),
    )


def prepare_batches(runner: object, batches: Sequence[Batch]) -> list[Batch]:
    """``runner.prepare`` on every pre-built batch (targets/base.py: never inside a window)."""
    if not batches:
        raise ValueError("measure() needs at least one pre-built batch")
    prepare = getattr(runner, "prepare", None)
    return [prepare(b) for b in batches] if prepare is not None else list(batches)


def warm_up(
    runner: Callable[[Batch], object],
    batches: Sequence[Batch],
    settings: MeasureSettings,
    sync: Callable[[], None],
    clock: Clock,
) -> tuple[int, float]:
    """Run until both ``warmup_n`` queries and ``warmup_s`` seconds; nothing recorded.

    Returns (queries run, seconds spent)."""
    nb = len(batches)
    warm_ns = int(settings.warmup_s * 1e9)
    w0 = clock()
    i = 0
    while i < settings.warmup_n or clock() - w0 < warm_ns:
        runner(batches[i % nb])
        i += 1
    sync()
    return i, (clock() - w0) / 1e9


def timed_window(
    runner: Callable[[Batch], object],
    batches: Sequence[Batch],
    settings: MeasureSettings,
    *,
    sync: Callable[[], None],
    energy_sensor: object | None = None,
    memory: Callable[[], object] | None = None,
    memory_reset: Callable[[], None] | None = None,
    clock: Clock = time.perf_counter_ns,
    warmup: tuple[int, float] = (0, 0.0),
    cpu_clock: Callable[[], float] = time.process_time,
) -> Measurement:
    """One timed window over already-prepared ``batches``: min duration AND min count.

    The energy window wraps exactly the timed loop; the memory peak is reset at its start.
    ``warmup`` is what the caller ran before (recorded, never timed here). ``cpu_clock``
    (the process's CPU time) is read at the loop's edges only.
    """
    nb = len(batches)
    if memory_reset is not None:
        memory_reset()
    window_cm = _energy_window(energy_sensor)
    min_ns = int(settings.min_duration_s * 1e9)
    min_count = settings.min_count
    samples: list[int] = []
    append = samples.append
    with window_cm as win:
        sync()
        cpu0 = cpu_clock()
        start = prev = clock()
        n = 0
        while True:
            runner(batches[n % nb])
            sync()
            now = clock()
            append(now - prev)
            prev = now
            n += 1
            if n >= min_count and now - start >= min_ns:
                break
        cpu_s = cpu_clock() - cpu0
    elapsed_s = (prev - start) / 1e9
    # Per-query time includes the loop's own overhead (~1 µs); the benchmark test bounds it.
    latencies_ms = tuple(s / 1e6 for s in samples)
    stats = latency_stats(latencies_ms, settings.percentiles, settings.cv_warn)
    warnings = []
    if not stats.stable:
        warnings.append(f"unstable: latency CV {stats.cv:.3f} > {settings.cv_warn}")
    energy = _energy_fields(
        win, n, elapsed_s, stats.p(50) or float(np.median(latencies_ms)), warnings
    )
    mem = memory() if memory is not None else None
    return Measurement(
        latencies_ms=latencies_ms,
        stats=stats,
        elapsed_s=elapsed_s,
        warmup_n=warmup[0],
        warmup_s=warmup[1],
        **energy,
        peak_memory_mb=getattr(mem, "peak_rss_mb", None),
        cuda_peak_mb=getattr(mem, "cuda_peak_mb", None),
        warnings=tuple(warnings),
        cpu_s=cpu_s,
    )


def _energy_window(sensor: object | None) -> contextlib.AbstractContextManager:
    if sensor is None or not sensor.available().ok:
        return contextlib.nullcontext(None)
    return sensor.window()


def _energy_fields(
    win: object | None, n: int, elapsed_s: float, median_ms: float, warnings: list[str]
) -> dict:
    """Energy of the window and per inference.

    Per inference: ``EnergyReading.charged_mj`` over the ``n`` queries at the window's
    median query time, then ÷ ``n`` (measured: window energy / queries, MLPerf Power; a
    *modelled* estimate: its power × the median query, why there).
    """
    reading = getattr(win, "reading", None)
    if reading is None:
        return {}
    per_inference = reading.charged_mj(median_ms / 1e3, n) / n
    interval_ms = reading.update_interval_ms
    if interval_ms and elapsed_s * 1e3 < 2 * interval_ms:
        warnings.append(
            f"energy window {elapsed_s * 1e3:.0f} ms is under 2x the sensor's "
            f"{interval_ms:.0f} ms update interval; lengthen min_duration_s"
        )
    return {
        "energy_total_mj": reading.total_mj,
        "energy_mj_per_inference": per_inference,
        "energy_rails_mj": dict(reading.rails_mj),
        "energy_source": reading.source,
        "energy_sensor": reading.sensor,
        "energy_model": getattr(reading, "model", None),
    }
