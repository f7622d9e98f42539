"""Prepare one static cell (derive the variant, evaluate, export) and turn its trials
into store columns; harness.cellgroup measures prepared cells together.

Accuracy is measured on the torch model (with per-sample presence masks where the
condition needs them); latency, memory and energy on the exported runner, fed only the
sensors that are present (a device whose sensor is gone does not read it).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts import Artifacts
from harness.cells import Cell
from harness.devicetiming import device_extra, window_start
from harness.dropout import parse_condition
from harness.intervals import wilson_interval
from harness.measure import Measurement
from harness.offline import OFFLINE, per_sample
from harness.store import TrialRow
from harness.trials import CellMeasurement, Subject


def prebuilt_batches(
    split: Any, names: list[str], batch_size: int, max_batches: int = 64
) -> list[dict[str, np.ndarray]]:
    """Contiguous input batches built before any timed region (sample loading untimed)."""
    count = max(1, min(max_batches, len(split) // batch_size))
    out = []
    for b in range(count):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        out.append({m: np.ascontiguousarray(split.x[m][sl]) for m in names})
    return out


def meter_for(target: Any) -> Any | None:
    """The energy-window factory a fine-tuning baseline is charged with."""
    sensor = target.energy_sensor()
    return sensor.window if sensor.available().ok else None


def deployed_model(
    cell: Cell, art: Artifacts, target: Any
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The model this cell deploys, the columns its derivation produced and its
    ``extra_json`` entries."""
    ds = art.dataset(cell.dataset, cell.seed)
    cond = parse_condition(cell.condition)
    cond.check_modalities(ds.modality_names)
    ckpt_key, ckpt = art.checkpoint(cell.dataset, cell.backbone, cell.attention, cell.seed)
    cols: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if cell.method == "dense":
        return ckpt.model, cols, extra
    present = cond.static_present(ds.modality_names)
    variant = art.variant(ckpt_key, ckpt, ds, cell.base_method, cell.sparsity, present, cell.seed)
    cols["prune_ms"] = variant.prune_ms
    model = variant.model
    if cell.finetuned:
        from sentryfuse.finetune import finetune

        ft = art.profile.finetune
        res = finetune(
            copy.deepcopy(model),
            ds.train,
            cond,
            steps=ft.steps,
            lr=ft.lr,
            seed=cell.seed,
            meter=meter_for(target),
        )
        model = res.model
        cols.update(
            finetune_wall_s=res.wall_s,
            finetune_energy_mj=res.energy_mj,
            finetune_energy_source=res.energy_source,
        )
        extra["finetune_step_ms_p50"] = res.step_ms_p50  # an estimate is charged at it
    return model, cols, extra


def routed_cell_accuracy(cell: Cell, art: Artifacts, cond: Any) -> tuple[float, int] | None:
    """Per-sample dropout, zero-shot method: every sample on its pattern's sub-network.

    The device sees which sensors each sample has, so it prunes per present pattern (cached
    variants) instead of running the all-present pruning with masked tokens; every
    zero-shot method is routed alike. Dense and fine-tuned cells keep the masked path
    (one model fine-tuned under dropout). None where routing does not apply.
    """
    ds = art.dataset(cell.dataset, cell.seed)
    if cell.method == "dense" or cell.finetuned or cond.static_present(ds.modality_names):
        return None
    from sentryfuse.prune.routed import routed_accuracy

    ckpt_key, ckpt = art.checkpoint(cell.dataset, cell.backbone, cell.attention, cell.seed)

    def variant_for(present: tuple[str, ...]) -> Any:
        v = art.variant(ckpt_key, ckpt, ds, cell.base_method, cell.sparsity, present, cell.seed)
        return v.model

    return routed_accuracy(
        variant_for, ds.test, cond, ds.modality_names, seed=cell.seed,
        batch_size=art.profile.eval.batch_size,
    )  # fmt: skip


def cell_accuracy(cell: Cell, art: Artifacts, model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The accuracy columns of a static cell deploying ``model`` and their ``extra_json``
    entries: on the torch model, routed per present pattern where the condition drops
    sensors per sample (``routed_cell_accuracy``). Accuracy does not depend on the target,
    runtime or power mode, so ``benchmarks/grid_accuracy.py`` measures a grid's accuracy
    with this alone."""
    from sentryfuse.evaluate import evaluate_accuracy

    ds = art.dataset(cell.dataset, cell.seed)
    cond = parse_condition(cell.condition)
    model.eval()
    extra: dict[str, Any] = {}
    routed = routed_cell_accuracy(cell, art, cond)
    if routed is None:
        acc = evaluate_accuracy(
            model, ds.test, cond, seed=cell.seed, batch_size=art.profile.eval.batch_size
        )
    else:
        acc, n_patterns = routed
        extra.update(accuracy_routing="per-pattern", patterns=n_patterns)
    ci = wilson_interval(round(acc * len(ds.test)), len(ds.test))
    cols = {
        "accuracy": acc,
        "n_eval": len(ds.test),
        "accuracy_ci_lo": ci.lo if ci else None,
        "accuracy_ci_hi": ci.hi if ci else None,
    }
    return cols, extra


def fed_modalities(model: Any, condition_present: tuple[str, ...] | None) -> list[str]:
    have = list(getattr(model.config, "present", None) or [m.name for m in model.config.modalities])
    if condition_present is None:
        return have
    return [m for m in have if m in condition_present]


@dataclass
class PreparedCell:
    """A static cell ready to be measured: columns so far and its exported runner."""

    cell: Cell
    cols: dict[str, Any]
    runner: Any
    batches: list[dict[str, np.ndarray]]
    fed: list[str]
    export_s: float
    # extra_json entries from deriving it: per-pattern routing, the fine-tune's median step
    extra: dict[str, Any] = field(default_factory=dict)


def prepare_static_cell(cell: Cell, art: Artifacts, target: Any, workdir: Path) -> PreparedCell:
    """Derive the variant, evaluate its accuracy, build batches and export the runner.

    The caller measures ``runner`` (harness.trials) and must ``runner.close()`` it."""
    from sentryfuse.models import count_gflops, count_params

    ds = art.dataset(cell.dataset, cell.seed)
    model, cols, extra = deployed_model(cell, art, target)
    cond = parse_condition(cell.condition)
    acc_cols, acc_extra = cell_accuracy(cell, art, model)
    cols.update(acc_cols)
    extra.update(acc_extra)
    names = fed_modalities(model, cond.static_present(ds.modality_names))
    batches = prebuilt_batches(ds.test, names, cell.batch_size)
    cols["params"] = int(count_params(model))
    cols["gflops"] = float(count_gflops(model, _torch_inputs(batches[0], 1)))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runner = target.export(model, batches[0], cell.runtime, workdir)
    return PreparedCell(cell, cols, runner, batches, names, time.perf_counter() - t0, extra)


def subject_for(p: PreparedCell, target: Any) -> Subject:
    return Subject(
        p.runner,
        p.batches,
        synchronize=p.runner.synchronize,
        energy_sensor=target.energy_sensor(),
        memory=target.memory,
        memory_reset=window_start(target, p.runner),  # also marks the runner's device timings
        cpu_threads=getattr(target, "cpu_threads", None),
    )


def static_cell_columns(p: PreparedCell, m: CellMeasurement, group_size: int) -> dict[str, Any]:
    """The cells-row columns of a measured static cell (schema v2)."""
    cols = dict(p.cols)
    cols.update(cell_measurement_columns(m))
    cols["weights_mb"] = p.runner.weights_bytes / 1e6 if p.runner.weights_bytes else None
    ci = m.latency_ms_p50_ci
    figures: dict[str, float] = {}
    window_s = sum(t.elapsed_s for t in m.trials)
    if p.cell.scenario == OFFLINE:  # per-sample figures (harness/offline.py)
        cols, figures = per_sample(cols, p.cell.batch_size, m.pooled.n, window_s)
    cols["extra_json"] = json.dumps(
        {
            "warnings": _warnings(m),
            "export_s": p.export_s,
            "window_s": window_s,
            "warmup_n": m.warmup_n,
            "fed_modalities": p.fed,
            "ci_coverage": ci.level if ci else None,
            "interleave_group_size": group_size,
            "trial_positions": [t.position for t in m.trials],
            **cpu_share_fields(m),
            **device_extra(p.runner),
            "batch_size": p.cell.batch_size,
            "scenario": p.cell.scenario,
            **p.extra,
        }
        | figures
    )
    return cols


def cpu_share_fields(m: CellMeasurement) -> dict[str, Any]:
    """The ``extra_json`` entries of the CPU share check (``harness.trials``), for every
    cell kind that is measured in trials."""

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    return {
        "cpu_share": rounded(m.cpu_share),
        "cpu_threads": m.cpu_threads,
        "cpu_starved": m.cpu_starved,
        "cpu_share_trials": [rounded(t.window.cpu_share) for t in m.trials],
    }


def trial_rows(m: CellMeasurement) -> tuple[TrialRow, ...]:
    return tuple(
        TrialRow(
            t.trial,
            t.round,
            t.latency_ms_p50,
            t.latency_ms_p99,
            t.latency_ms_mean,
            t.n,
            t.elapsed_s,
            t.energy_mj_per_inference,
        )
        for t in m.trials
    )


def _warnings(m: CellMeasurement) -> list[str]:
    out = [] if m.unstable_reason is None else [f"unstable: {m.unstable_reason}"]
    for t in m.trials:  # sensor warnings (e.g. a window too short); CV is not a verdict now
        out += [w for w in t.window.warnings if not w.startswith("unstable:") and w not in out]
    return out


def cell_measurement_columns(m: CellMeasurement) -> dict[str, Any]:
    w = m.window
    ci, eci = m.latency_ms_p50_ci, m.energy_mj_ci
    return {
        "latency_ms_p50": m.latency_ms_p50,
        "latency_ms_p90": m.percentiles_ms.get(90.0),
        "latency_ms_p95": m.percentiles_ms.get(95.0),
        "latency_ms_p99": m.latency_ms_p99,
        "latency_ms_mean": m.pooled.mean_ms,
        "latency_cv": m.pooled.cv,
        "latency_n": m.pooled.n,
        "stable": int(m.stable),
        "unstable_reason": m.unstable_reason,
        "trials": len(m.trials),
        "latency_ms_p50_ci_lo": ci.lo if ci else None,
        "latency_ms_p50_ci_hi": ci.hi if ci else None,
        "latency_trial_spread": m.latency_trial_spread,
        "energy_mj_per_inference": m.energy_mj_per_inference,
        "energy_mj_ci_lo": eci.lo if eci else None,
        "energy_mj_ci_hi": eci.hi if eci else None,
        "energy_source": w.energy_source,
        "energy_sensor": w.energy_sensor,
        "energy_model": w.energy_model,
        "energy_rails_json": json.dumps(dict(w.energy_rails_mj)) if w.energy_rails_mj else None,
        "peak_memory_mb": m.peak_memory_mb,
        "cuda_peak_mb": m.cuda_peak_mb,
    }


def measurement_columns(m: Measurement) -> dict[str, Any]:
    s = m.stats
    return {
        "latency_ms_p50": s.p(50),
        "latency_ms_p90": s.p(90),
        "latency_ms_p95": s.p(95),
        "latency_ms_p99": s.p(99),
        "latency_ms_mean": s.mean_ms,
        "latency_cv": s.cv,
        "latency_n": s.n,
        "stable": int(s.stable),
        "energy_mj_per_inference": m.energy_mj_per_inference,
        "energy_source": m.energy_source,
        "energy_sensor": m.energy_sensor,
        "energy_rails_json": json.dumps(dict(m.energy_rails_mj)) if m.energy_rails_mj else None,
        "peak_memory_mb": m.peak_memory_mb,
        "cuda_peak_mb": m.cuda_peak_mb,
    }


def _torch_inputs(batch: dict[str, np.ndarray], n: int) -> dict[str, Any]:
    import torch

    return {k: torch.from_numpy(v[:n].copy()) for k, v in batch.items()}
