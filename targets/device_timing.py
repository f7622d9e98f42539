"""Per-query device timings the way trtexec reports them: H2D, GPU compute, D2H apart.

A GPU runner records host→device copies in ``prepare()`` (outside the timed window) and
the compute and device→host copy of each query with device events. The harness marks the
window start (``mark_window``) so warm-up queries are not counted, and stores a summary
beside the wall-clock latency figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

KINDS = ("h2d_ms", "compute_ms", "d2h_ms")


class DeviceTimings:
    """Lists of per-query times (ms). ``h2d_ms`` counts every prepared batch; compute and
    D2H samples taken before the first ``mark_window`` (export checks, warm-up) are
    dropped, and every query from then on counts (the harness runs a runner only inside
    its timed windows after warm-up, trial after trial)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {k: [] for k in KINDS}
        self._marked = False

    def add(self, kind: str, ms: float) -> None:
        self.samples[kind].append(float(ms))

    def mark_window(self) -> None:
        if not self._marked:
            self.samples["compute_ms"].clear()
            self.samples["d2h_ms"].clear()
            self._marked = True

    def window(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self.samples.items() if v}


def summarize(timings: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """``{kind: {n, mean, min, p50, p90, p99, max}}`` for the store's ``extra_json``."""
    out: dict[str, dict[str, float]] = {}
    for kind, values in timings.items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.size == 0:
            continue
        p50, p90, p99 = np.percentile(arr, [50, 90, 99])
        out[kind] = {
            "n": int(arr.size),
            "mean": float(arr.mean()),
            "min": float(arr.min()),
            "p50": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "max": float(arr.max()),
        }
    return out
