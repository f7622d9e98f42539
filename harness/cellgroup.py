"""Cell groups: static cells that share a device configuration, measured interleaved.

Cells that share dataset, backbone, attention, seed (so the same checkpoint and input
shapes), target, runtime and power mode are prepared together (variant, accuracy,
export), then measured in interleaved rounds (harness.trials) under one power-mode
change, so drift hits them alike. A group is bounded (``MAX_GROUP_CELLS``): a SIGKILL
loses at most one group's work, and the caller commits each cell of a finished group in
its own transaction. Replay cells are groups of one and run as before.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import Artifacts
from harness.cells import Cell
from harness.eta import Timing
from harness.power import static_mode
from harness.store import CellResult, utc_now

if TYPE_CHECKING:
    from harness.profile_schema import MeasureSettings
    from harness.trials import CellMeasurement, Subject

MAX_GROUP_CELLS = 12


def group_key(cell: Cell) -> tuple:
    """Cells with equal keys may be interleaved; replay cells never share one."""
    if cell.kind == "model":  # user ONNX files sharing a device configuration
        return ("model", cell.target, cell.runtime, cell.power_mode)
    if cell.kind != "static":
        return ("replay", cell.key)
    return (
        cell.dataset,
        cell.backbone,
        cell.attention,
        cell.seed,
        cell.target,
        cell.runtime,
        cell.power_mode,
    )


def plan_groups(cells: Sequence[Cell], max_cells: int = MAX_GROUP_CELLS) -> list[list[Cell]]:
    """Split ``cells`` into groups (first-appearance order), each at most ``max_cells``,
    balanced (21 cells -> 11 + 10, not 12 + 9) so no group is a tiny leftover."""
    if max_cells < 1:
        raise ValueError("max_cells must be >= 1")
    by_key: dict[tuple, list[Cell]] = {}
    for c in cells:
        by_key.setdefault(group_key(c), []).append(c)
    out: list[list[Cell]] = []
    for members in by_key.values():
        parts = -(-len(members) // max_cells)
        size, extra = divmod(len(members), parts)
        i = 0
        for p in range(parts):
            n = size + (1 if p < extra else 0)
            out.append(members[i : i + n])
            i += n
    return out


def run_cell_group(
    cells: Sequence[Cell],
    art: Artifacts,
    target: Any,
    out_dir: Path,
    *,
    timing: Timing | None = None,
) -> list[CellResult]:
    """Prepare, measure (interleaved) and return one ``CellResult`` per cell, in order.

    ``cells`` must be one group (``plan_groups``; one cell always is). Nothing is written
    to the store here: the caller commits each result in its own transaction. A cell
    that fails (variant, export, measurement, power mode) gets a 'failed' result with a
    one-line error and its traceback under ``OUT/errors/``; the others go on. ``timing``
    is filled in with what each phase took (the run's ETA learns from it).
    """
    if len({group_key(c) for c in cells}) > 1:
        raise ValueError("run_cell_group: cells are not one group; split them with plan_groups")
    timing = timing if timing is not None else Timing()
    t0, trained0 = time.monotonic(), art.trained_s
    try:
        return _run_group(cells, art, target, out_dir, timing)
    finally:
        timing.wall_s = time.monotonic() - t0
        timing.train_s = art.trained_s - trained0
        if cells and cells[0].kind == "replay":
            timing.prepare_s = [timing.wall_s - timing.train_s]
            timing.finetuned = [cells[0].finetuned]


def _run_group(
    cells: Sequence[Cell], art: Artifacts, target: Any, out_dir: Path, timing: Timing
) -> list[CellResult]:
    if cells and cells[0].kind == "replay":
        return [_run_replay(c, art, target, out_dir) for c in cells]
    if cells and cells[0].kind == "model":  # user ONNX files (harness/usermodel.py)
        from harness.usermodel import run_model_group

        return run_model_group(cells, art, target, out_dir, timing)
    from harness.cellrun import prepare_static_cell, subject_for

    started = [utc_now() for _ in cells]
    results: dict[int, CellResult] = {}
    prepared = []
    try:
        for i, cell in enumerate(cells):
            started[i] = utc_now()
            t0, trained0 = time.monotonic(), art.trained_s
            try:
                workdir = out_dir / "work" / cell.key[:16]
                prepared.append((i, prepare_static_cell(cell, art, target, workdir)))
                timing.export_s.append(prepared[-1][1].export_s)
            except Exception as exc:  # a failed cell must not stop its group
                results[i] = failed_result(cell, started[i], exc, out_dir)
            timing.prepare_s.append(time.monotonic() - t0 - (art.trained_s - trained0))
            timing.finetuned.append(cell.finetuned)
        measured = [
            (i, subject_for(p, target), _static_columns(p, len(prepared))) for i, p in prepared
        ]
        results.update(
            measure_group(cells, started, measured, art.profile.measure, target, out_dir, timing)
        )
    finally:
        for _, p in prepared:
            p.runner.close()
    return [results[i] for i in sorted(results)]


def _static_columns(p: Any, group_size: int) -> Callable[[Any], dict[str, Any]]:
    from harness.cellrun import static_cell_columns

    return lambda m: static_cell_columns(p, m, group_size)


def measure_group(
    cells: Sequence[Cell],
    started: Sequence[str],
    subjects: Sequence[tuple[int, Subject, Callable[[CellMeasurement], dict[str, Any]]]],
    settings: MeasureSettings,
    target: Any,
    out_dir: Path,
    timing: Timing,
) -> dict[int, CellResult]:
    """Measure a group's prepared subjects interleaved (harness.trials) under its power
    mode and collect a result per cell: ``subjects`` holds (index into ``cells``, its
    subject, the function turning its measurement into store columns). Built-in cells
    and a user's ONNX files share this, so both are measured and stored alike."""
    from harness.cellrun import trial_rows
    from harness.trials import measure_interleaved

    if not subjects:
        return {}
    t0 = time.monotonic()
    try:
        with static_mode(target.power_modes(), cells[0].power_mode):
            measured: list[Any] = measure_interleaved(
                [s for _, s, _ in subjects], settings, seed=int(cells[0].key[:8], 16)
            )
    except Exception as exc:  # e.g. the power mode could not be set
        measured = [exc] * len(subjects)
    timing.record_measured(time.monotonic() - t0, measured)
    results = {}
    for (i, _, columns), m in zip(subjects, measured, strict=True):
        if isinstance(m, Exception):
            results[i] = failed_result(cells[i], started[i], m, out_dir)
            continue
        results[i] = CellResult(
            "ok",
            started[i],
            utc_now(),
            columns=columns(m),
            latencies_ms=m.latencies_ms,
            trials=trial_rows(m),
            latency_trials=m.sample_trials,
        )
    return results


def _run_replay(cell: Cell, art: Artifacts, target: Any, out_dir: Path) -> CellResult:
    from harness.replay import run_replay_cell

    started = utc_now()
    try:
        cols, lat, segs = run_replay_cell(cell, art, target, out_dir / "work" / cell.key[:16])
    except Exception as exc:  # a failed cell must not stop the suite
        return failed_result(cell, started, exc, out_dir)
    return CellResult("ok", started, utc_now(), columns=cols, latencies_ms=lat, segments=segs)


def failed_result(cell: Cell, started: str, exc: BaseException, out_dir: Path) -> CellResult:
    return CellResult(
        "failed",
        started,
        utc_now(),
        error=_one_line(exc),
        columns={"extra_json": _log_traceback(out_dir, cell, exc)},
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:500]


def _log_traceback(out_dir: Path, cell: Cell, exc: BaseException) -> str:
    path = out_dir / "errors" / f"{cell.key[:16]}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cell.label() + "\n" + "".join(traceback.format_exception(exc)))
    return json.dumps({"traceback_file": str(path)})
