"""The unit of work shipped to a device: a list of cells in, a list of CellResults out.

Today a unit is one cell, measured by the suite's own per-cell runner, so a fleet cell
is measured by exactly the code a single-machine run uses. The unit is a list because
comparable cells measured as one group (interleaved trial rounds on one device) must
travel together: adopting a group runner changes ``plan_units`` and ``run_unit`` only.
Results cross the wire as JSON text (plain data, never a pickle of our objects).
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
from harness.store import CellResult, SegmentRow


def plan_units(cells: Sequence[Cell]) -> list[tuple[Cell, ...]]:
    """Units in the suite's order; each runs on one device in one go."""
    return [(c,) for c in cells]


def run_unit(cells: Sequence[Cell], art: Artifacts, target: Any, out_dir: Path) -> list[CellResult]:
    """Measure ``cells`` on ``target``, as the single-machine suite does."""
    from harness.suite import _run_cell  # the one per-cell runner; no second copy here

    return [_run_cell(cell, art, target, out_dir) for cell in cells]


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
    )


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_plain, allow_nan=True)
