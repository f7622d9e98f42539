"""The Offline scenario (MLPerf): throughput with every sample available at once.

SingleStream asks "how long does one query take"; Offline asks "how many samples per
second can the device do", so queries are batches (``batch_sizes`` in the grid), issued
back to back, and every figure is reported **per sample**: samples/s, ms per sample
(window time ÷ samples), per-sample latency percentiles (a batch's time ÷ its size) and
mJ per sample. The timing loop is the harness's own (``harness.measure.measure``: warm-up,
minimum duration and count, energy window) — this module only defines the scenario and
its per-sample figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.measure import Batch, Measurement, latency_stats, measure
from harness.profile_schema import MeasureSettings

SCENARIOS = ("single-stream", "offline")
SINGLE_STREAM, OFFLINE = SCENARIOS


def measure_offline(
    runner: Callable[[Batch], object],
    batches: Sequence[Batch],
    settings: MeasureSettings,
    **measure_kwargs: Any,
) -> Measurement:
    """Time whole batches (``measure``), then express every figure per sample."""
    m = measure(runner, batches, settings, **measure_kwargs)
    batch = len(next(iter(batches[0].values())))
    per_sample = tuple(x / batch for x in m.latencies_ms)
    per_inference = m.energy_mj_per_inference
    return Measurement(
        latencies_ms=per_sample,
        stats=latency_stats(per_sample, settings.percentiles, settings.cv_warn),
        elapsed_s=m.elapsed_s,
        warmup_n=m.warmup_n,
        warmup_s=m.warmup_s,
        energy_total_mj=m.energy_total_mj,
        energy_mj_per_inference=None if per_inference is None else per_inference / batch,
        energy_rails_mj=m.energy_rails_mj,
        energy_source=m.energy_source,
        energy_sensor=m.energy_sensor,
        peak_memory_mb=m.peak_memory_mb,
        cuda_peak_mb=m.cuda_peak_mb,
        warnings=m.warnings,
    )


def throughput(m: Measurement, batch_size: int) -> dict[str, float]:
    """Offline's headline figures, per sample (for the cell's extra JSON)."""
    samples = len(m.latencies_ms) * batch_size
    return {
        "samples": samples,
        "samples_per_s": samples / m.elapsed_s if m.elapsed_s > 0 else float("nan"),
        "ms_per_sample": m.elapsed_s * 1e3 / samples if samples else float("nan"),
    }
