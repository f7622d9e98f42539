"""Measure a runner on device-resident inputs, with trtexec's H2D / compute / D2H split.

``runner.prepare`` moves every pre-built batch to where the runtime wants it (the GPU
for CUDA and TensorRT) *before* the timed window, so no query's time includes a
host→device copy; the runner's device timings are counted from the window start
(``runner.mark_window``, called with the window's memory reset), so warm-up queries
are excluded from them as from the latencies. The summary goes into the cell's
``extra_json`` under ``device_timings_ms``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.measure import Clock, Measurement, measure
from harness.profile_schema import MeasureSettings
from targets.device_timing import summarize


def prepare_batches(runner: Any, batches: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Each batch through ``runner.prepare`` (idempotent: a prepared batch is returned as is)."""
    prepare = getattr(runner, "prepare", None)
    return [prepare(b) if prepare is not None else b for b in batches]


def measure_prepared(
    runner: Any,
    batches: Sequence[Mapping[str, Any]],
    settings: MeasureSettings,
    target: Any,
    *,
    clock: Clock = time.perf_counter_ns,
) -> tuple[Measurement, dict[str, Any]]:
    """``measure`` on prepared batches; returns it and the ``extra_json`` additions."""
    prepared = prepare_batches(runner, batches)
    mark = getattr(runner, "mark_window", None)
    reset: Callable[[], None] | None = getattr(target, "reset_memory_peak", None)

    def window_start() -> None:
        if reset is not None:
            reset()
        if mark is not None:
            mark()

    m = measure(
        runner,
        prepared,
        settings,
        synchronize=getattr(runner, "synchronize", None),
        energy_sensor=target.energy_sensor(),
        memory=target.memory,
        memory_reset=window_start,
        clock=clock,
    )
    timings = getattr(runner, "device_timings_ms", dict)()
    extra: dict[str, Any] = {"inputs_prepared": True}
    if timings:
        extra["device_timings_ms"] = summarize(timings)
    return m, extra
