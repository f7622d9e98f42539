"""Run one static cell: derive the variant, evaluate, export, measure under a power mode.

Accuracy is measured on the torch model (with per-sample presence masks where the
condition needs them); latency, memory and energy on the exported runner, fed only the
sensors that are present (a device whose sensor is gone does not read it).
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts import Artifacts
from harness.cells import Cell
from harness.dropout import parse_condition
from harness.measure import Measurement, measure
from harness.power import static_mode


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


def deployed_model(cell: Cell, art: Artifacts, target: Any) -> tuple[Any, dict[str, Any]]:
    """The model this cell deploys and the columns its derivation produced."""
    ds = art.dataset(cell.dataset, cell.seed)
    cond = parse_condition(cell.condition)
    cond.check_modalities(ds.modality_names)
    ckpt_key, ckpt = art.checkpoint(cell.dataset, cell.backbone, cell.attention, cell.seed)
    cols: dict[str, Any] = {}
    if cell.method == "dense":
        return ckpt.model, cols
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
    return model, cols


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


def fed_modalities(model: Any, condition_present: tuple[str, ...] | None) -> list[str]:
    have = list(getattr(model.config, "present", None) or [m.name for m in model.config.modalities])
    if condition_present is None:
        return have
    return [m for m in have if m in condition_present]


def run_static_cell(cell: Cell, art: Artifacts, target: Any, workdir: Path) -> tuple[dict, tuple]:
    """Returns (columns for the cells row, raw latencies in ms)."""
    from sentryfuse.evaluate import evaluate_accuracy
    from sentryfuse.models import count_gflops, count_params

    profile = art.profile
    ds = art.dataset(cell.dataset, cell.seed)
    model, cols = deployed_model(cell, art, target)
    cond = parse_condition(cell.condition)
    model.eval()
    routed = routed_cell_accuracy(cell, art, cond)
    if routed is None:
        cols["accuracy"] = evaluate_accuracy(
            model, ds.test, cond, seed=cell.seed, batch_size=profile.eval.batch_size
        )
    else:
        cols["accuracy"], n_patterns = routed
    cols["n_eval"] = len(ds.test)
    names = fed_modalities(model, cond.static_present(ds.modality_names))
    batches = prebuilt_batches(ds.test, names, profile.measure.batch_size)
    cols["params"] = int(count_params(model))
    cols["gflops"] = float(count_gflops(model, _torch_inputs(batches[0], 1)))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runner = target.export(model, batches[0], cell.runtime, workdir)
    export_s = time.perf_counter() - t0
    try:
        with static_mode(target.power_modes(), cell.power_mode):
            m = measure(
                runner,
                batches,
                profile.measure,
                synchronize=runner.synchronize,
                energy_sensor=target.energy_sensor(),
                memory=target.memory,
                memory_reset=target.reset_memory_peak,
            )
    finally:
        runner.close()
    cols.update(measurement_columns(m))
    cols["weights_mb"] = runner.weights_bytes / 1e6 if runner.weights_bytes else None
    cols["extra_json"] = json.dumps(
        {
            "warnings": list(m.warnings),
            "export_s": export_s,
            "window_s": m.elapsed_s,
            "warmup_n": m.warmup_n,
            "fed_modalities": names,
            **(
                {}
                if routed is None
                else {"accuracy_routing": "per-pattern", "patterns": n_patterns}
            ),
        }
    )
    return cols, m.latencies_ms


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
