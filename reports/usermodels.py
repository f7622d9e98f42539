"""The user's own ONNX models (cells of kind ``model``): a trtexec-style table.

These cells have no dataset and no accuracy; the table shows what trtexec would print
per model × target × runtime × power mode — latency percentiles, throughput, and the
device's H2D / GPU compute / D2H times where the runtime records them — with energy
and its source.
"""

from __future__ import annotations

import json

import pandas as pd

MODEL_KIND = "model"
TIMINGS = ("h2d_ms", "compute_ms", "d2h_ms")


def model_cells(cells: pd.DataFrame) -> pd.DataFrame:
    return cells[(cells["kind"] == MODEL_KIND) & (cells["status"] == "ok")]


def _json(text: object) -> dict:
    try:
        value = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def model_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per finished model cell, in store order."""
    rows = []
    for c in model_cells(cells).itertuples(index=False):
        extra = _json(getattr(c, "extra_json", None))
        settings = _json(c.definition_json).get("settings", {})
        timings = extra.get("device_timings_ms", {})
        row = {
            "model": c.backbone,
            "target": c.target,
            "runtime": c.runtime,
            "power_mode": c.power_mode,
            "batch": settings.get("model", {}).get("batch"),
            "latency_ms_p50": c.latency_ms_p50,
            "p50_ci_lo": getattr(c, "latency_ms_p50_ci_lo", None),
            "p50_ci_hi": getattr(c, "latency_ms_p50_ci_hi", None),
            "trials": getattr(c, "trials", None),
            "unstable": getattr(c, "unstable_reason", None) or "",
            "latency_ms_p90": c.latency_ms_p90,
            "latency_ms_p99": c.latency_ms_p99,
            "latency_ms_mean": c.latency_ms_mean,
            "latency_cv": c.latency_cv,
            "latency_n": c.latency_n,
            "throughput_per_s": extra.get("throughput_per_s"),
        }
        for kind in TIMINGS:
            row[f"{kind.removesuffix('_ms')}_ms_mean"] = timings.get(kind, {}).get("mean")
        row.update(
            energy_mj_per_inference=c.energy_mj_per_inference,
            energy_source=c.energy_source,
            energy_sensor=c.energy_sensor,
            weights_mb=c.weights_mb,
            peak_memory_mb=c.peak_memory_mb,
        )
        rows.append(row)
    return pd.DataFrame(rows)
