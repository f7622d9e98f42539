"""The Offline scenario (MLPerf): throughput with every sample available at once.

SingleStream asks "how long does one query take"; Offline asks "how many samples per
second can the device do", so a query is a whole batch (``batch_sizes`` in the grid),
issued back to back by the harness's own timing loop (trials, warm-up, minimum duration
and count, energy window: ``harness.trials``), and the cell's figures are reported
**per sample**: samples/s, ms per sample (window time ÷ samples), per-sample latency
percentiles (a batch's time ÷ its size) and mJ per sample. Raw samples and trial rows
stay per query (per batch), as measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCENARIOS = ("single-stream", "offline")
SINGLE_STREAM, OFFLINE = SCENARIOS

# cells-row columns that are per query and become per sample (÷ batch size)
PER_QUERY_COLUMNS = (
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
    "latency_ms_mean", "latency_ms_p50_ci_lo", "latency_ms_p50_ci_hi",
    "energy_mj_per_inference", "energy_mj_ci_lo", "energy_mj_ci_hi",
)  # fmt: skip


def per_sample(
    cols: Mapping[str, Any], batch_size: int, queries: int, elapsed_s: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """(columns with per-query figures divided by ``batch_size``, throughput figures)."""
    out = dict(cols)
    for k in PER_QUERY_COLUMNS:
        if out.get(k) is not None:
            out[k] = out[k] / batch_size
    samples = queries * batch_size
    figures = {
        "samples": samples,
        "samples_per_s": samples / elapsed_s if elapsed_s > 0 else float("nan"),
        "ms_per_sample": elapsed_s * 1e3 / samples if samples else float("nan"),
    }
    return out, figures
