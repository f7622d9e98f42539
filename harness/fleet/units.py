"""The unit of work shipped to a device: a list of cells in, a list of CellResults out.

A unit is one of the suite's cell groups (``harness.cellgroup.plan_groups``: cells
sharing checkpoint, target, runtime and power mode, at most 12), measured by the same
``run_cell_group`` a single-machine run uses: its trials are interleaved in rounds on
one device, so a group must never be split across devices — the fleet's parallelism is
the number of groups. Results cross the wire as JSON text (plain data, never a pickle
of our objects).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.artifacts import Artifacts
from harness.cells import Cell
from harness.store import CellResult, SegmentRow, TrialRow


def plan_units(cells: Sequence[Cell]) -> list[tuple[Cell, ...]]:
    """Units in the suite's order; each runs on one device in one go."""
    from harness.cellgroup import plan_groups

    return [tuple(g) for g in plan_groups(cells)]


def run_unit(cells: Sequence[Cell], art: Artifacts, target: Any, out_dir: Path) -> list[CellResult]:
    """Measure ``cells`` on ``target``, as the single-machine suite does."""
    from harness.cellgroup import run_cell_group

    return run_cell_group(cells, art, target, out_dir)


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else v
    return v


def result_to_wire(result: CellResult, traceback_text: str | None = None) -> dict[str, Any]:
    return {
        "status": result.status,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "error": result.error,
        "columns": {k: _plain(v) for k, v in dict(result.columns).items()},
        "latencies_ms": [float(x) for x in result.latencies_ms],
        "segments": [asdict(s) for s in result.segments],
        "trials": [asdict(t) for t in result.trials],
        "latency_trials": [int(t) for t in result.latency_trials],
        "traceback": traceback_text,
    }


def result_from_wire(d: dict[str, Any]) -> CellResult:
    segments = [SegmentRow(**{**s, "present": tuple(s["present"])}) for s in d["segments"]]
    return CellResult(
        d["status"],
        d["started_at"],
        d["finished_at"],
        error=d["error"],
        columns=d["columns"],
        latencies_ms=d["latencies_ms"],
        segments=segments,
        trials=[TrialRow(**t) for t in d["trials"]],
        latency_trials=d["latency_trials"],
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_plain, allow_nan=True)
