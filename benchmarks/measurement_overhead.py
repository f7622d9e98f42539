"""How much does the measurement loop itself cost? (MLPerf LoadGen's ``backend_null`` idea.)

A null runner returns a pre-built answer without computing anything, so the latency the
loop records for it *is* the loop's own per-query overhead (clock reads, synchronise
hook, sample bookkeeping, runner dispatch). We report it relative to a 1 ms inference
(a runner that busy-waits exactly 1 ms on CPU), the target being < 1 %.

Run: ``python benchmarks/measurement_overhead.py [--seconds 2]``. Uses
``harness.measure.measure`` when it exists, else a minimal loop of the same shape.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from targets.base import Runner  # noqa: E402


class NullRunner(Runner):
    """Returns a fixed (B, classes) array: zero work, full runner interface."""

    runtime = "null"

    def __init__(self, batch: int = 1, classes: int = 6) -> None:
        self.out = np.zeros((batch, classes), dtype=np.float32)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.out


class SpinRunner(NullRunner):
    """A stand-in for a 1 ms inference: busy-waits ``work_ms`` on the CPU."""

    runtime = "spin"

    def __init__(self, work_ms: float = 1.0) -> None:
        super().__init__()
        self.work_ns = int(work_ms * 1e6)

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        end = time.perf_counter_ns() + self.work_ns
        while time.perf_counter_ns() < end:
            pass
        return self.out


def minimal_loop(runner: Callable, batches: list, seconds: float, min_count: int) -> list[float]:
    """Same shape as the harness loop: run, synchronise, read the clock, append."""
    sync = getattr(runner, "synchronize", lambda: None)
    clock = time.perf_counter_ns
    samples: list[int] = []
    start = prev = clock()
    n = 0
    while True:
        runner(batches[n % len(batches)])
        sync()
        now = clock()
        samples.append(now - prev)
        prev = now
        n += 1
        if n >= min_count and now - start >= seconds * 1e9:
            return [s / 1e6 for s in samples]


def time_runner(runner: Runner, seconds: float, min_count: int) -> tuple[list[float], str]:
    batches = [{"acc": np.zeros((1, 128, 3), dtype=np.float32)}]
    try:
        from harness.measure import measure
        from harness.profile_schema import MeasureSettings
    except ImportError:
        return minimal_loop(runner, batches, seconds, min_count), "minimal loop"
    settings = MeasureSettings(
        warmup_s=0.2, warmup_n=10, min_duration_s=seconds, min_count=min_count
    )
    m = measure(runner, batches, settings, synchronize=runner.synchronize)
    return list(m.latencies_ms), "harness.measure.measure"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="timed window per runner")
    args = parser.parse_args()
    null_ms, loop = time_runner(NullRunner(), args.seconds, 10_000)
    spin_ms, _ = time_runner(SpinRunner(1.0), args.seconds, 200)
    overhead_us = float(np.median(null_ms)) * 1e3
    overhead_mean_us = float(np.mean(null_ms)) * 1e3
    spin_excess_us = (float(np.median(spin_ms)) - 1.0) * 1e3
    print(f"loop: {loop}; null-runner queries: {len(null_ms)}; 1 ms-runner queries: {len(spin_ms)}")
    print(
        f"per-query overhead (null runner): median {overhead_us:.2f} µs, mean {overhead_mean_us:.2f} µs"
    )
    print(
        f"1 ms runner measured: median {np.median(spin_ms):.4f} ms (excess {spin_excess_us:.2f} µs)"
    )
    pct = overhead_us / 1000.0 * 100.0
    print(f"overhead relative to a 1 ms inference: {pct:.3f} % (target < 1 %)")
    return 0 if pct < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
