"""trtexec's H2D / GPU compute / D2H split, carried from the runner into the store.

The measurement loop (``harness.measure``/``harness.trials``) prepares every batch with
``runner.prepare`` before any window, so no query's latency includes a host→device copy.
GPU runners also time the copies and the compute themselves with device events
(``targets/device_timing.py``); this module marks the runner at each window start (with
the window's memory reset) so warm-up queries are not counted, and summarises what the
runner recorded for the cell's ``extra_json`` (``device_timings_ms``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from targets.device_timing import summarize


def window_start(target: Any, runner: Any) -> Callable[[], None]:
    """The ``memory_reset`` hook of a window: the target's memory peak and the runner's
    device timings both start at the window edge."""
    reset = getattr(target, "reset_memory_peak", None)
    mark = getattr(runner, "mark_window", None)

    def start() -> None:
        if reset is not None:
            reset()
        if mark is not None:
            mark()

    return start


def device_extra(runner: Any) -> dict[str, Any]:
    """``{"device_timings_ms": {kind: {n, mean, min, p50, p90, p99, max}}}`` or ``{}``."""
    timings = getattr(runner, "device_timings_ms", dict)()
    out: dict[str, Any] = {"device_timings_ms": summarize(timings)} if timings else {}
    engine = getattr(runner, "engine_cache", None)
    if engine:  # a TensorRT engine: its cache key, and whether this device had built it
        out["engine"] = engine
    return out
