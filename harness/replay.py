"""Deployment replay: a stream of test samples over a timeline of sensor/power changes.

On each change a policy maps the power mode to a budget (sparsity), and the method does
what it can:
- ``sentrygate`` re-prunes zero-shot for the new (present sensors, sparsity) with
  ``Repruner.reprune`` — the time it takes is the segment's switch latency;
- any other zero-shot method is a *static mask*: pruned once, all sensors present, at the
  first segment's budget, and kept (switch_ms 0; missing sensors are simply not fed);
- ``<m>+ft`` prunes and fine-tunes a model per (present, sparsity) the first time that
  condition occurs; its fine-tuning wall time is the switch latency and its fine-tuning
  energy is charged to that segment (a later reuse of the same model costs nothing).
Samples are processed back to back at batch 1 (stream time is simulated, not slept); a
sample misses its deadline when its latency exceeds ``deadline_ms``.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.artifacts import Artifacts
from harness.cellrun import fed_modalities, measurement_columns, meter_for
from harness.cells import Cell
from harness.dropout import DropoutCondition
from harness.measure import latency_stats
from harness.policy import Budget
from harness.power import ModeSwitcher, Segment, timeline_segments
from harness.replay_checks import replay_verdict
from harness.store import SegmentRow


class _Policy:
    """Chooses the model for each segment according to the method's abilities."""

    def __init__(self, cell: Cell, art: Artifacts, target: Any) -> None:
        self.cell, self.art, self.target = cell, art, target
        self.ds = art.dataset(cell.dataset, cell.seed)
        self.ckpt_key, self.ckpt = art.checkpoint(
            cell.dataset, cell.backbone, cell.attention, cell.seed
        )
        self._repruner = None
        self._static = None
        self._static_sparsity = 0.0
        self._ft: dict[tuple, Any] = {}

    def variant_at(self, present: tuple[str, ...], sparsity: float) -> Any:
        """The model this method would deploy at ``sparsity`` (a budget's latency model
        measures exactly these shapes)."""
        c = self.cell
        if c.method == "sentrygate":
            from sentryfuse.prune import Repruner

            if self._repruner is None:
                self._repruner = Repruner(self.ckpt)
            return self._repruner.reprune(present, sparsity).model
        where = present if c.finetuned else None  # static masks keep every sensor
        return self.art.variant(
            self.ckpt_key, self.ckpt, self.ds, c.base_method, sparsity, where, c.seed
        ).model

    def model_for(
        self, seg: Segment, sparsity: float
    ) -> tuple[Any, float, float, float | None, str | None]:
        """(model, the sparsity it runs at, switch_ms, charged energy mJ or None, its source)."""
        c = self.cell
        if c.method == "sentrygate":
            from sentryfuse.prune import Repruner

            if self._repruner is None:
                self._repruner = Repruner(self.ckpt)
            t0 = time.perf_counter()
            v = self._repruner.reprune(seg.present, sparsity)
            return v.model, sparsity, (time.perf_counter() - t0) * 1e3, None, None
        if not c.finetuned:
            if self._static is None:
                self._static_sparsity = sparsity
                self._static = self.art.variant(
                    self.ckpt_key, self.ckpt, self.ds, c.method, sparsity, None, c.seed
                ).model
            return self._static, self._static_sparsity, 0.0, None, None
        key = (seg.present, sparsity)
        if key in self._ft:
            return self._ft[key], sparsity, 0.0, None, None
        from sentryfuse.finetune import finetune

        v = self.art.variant(
            self.ckpt_key, self.ckpt, self.ds, c.base_method, sparsity, seg.present, c.seed
        )
        dropped = tuple(m for m in self.ds.modality_names if m not in seg.present)
        cond = DropoutCondition(
            "drop:" + "+".join(dropped) if dropped else "all",
            "drop" if dropped else "all",
            dropped=dropped,
        )
        ft = self.art.profile.finetune
        res = finetune(
            copy.deepcopy(v.model),
            self.ds.train,
            cond,
            steps=ft.steps,
            lr=ft.lr,
            seed=c.seed,
            meter=meter_for(self.target),
        )
        self._ft[key] = res.model
        return res.model, sparsity, v.prune_ms + res.wall_s * 1e3, res.energy_mj, res.energy_source


def run_replay_cell(
    cell: Cell, art: Artifacts, target: Any, workdir: Path
) -> tuple[dict, tuple, list]:
    """Returns (cells-row columns, all latencies in ms, segment rows)."""
    r = art.profile.replay
    assert r is not None
    policy = _Policy(cell, art, target)
    test = policy.ds.test
    sensor = target.energy_sensor()
    segments = timeline_segments(r.events, r.duration_s, r.rate_hz)
    rows: list[SegmentRow] = []
    all_lat: list[float] = []
    correct_total = 0
    energy_total = 0.0
    energy_known = True
    cursor = 0
    switches = []
    # per segment: (CPU s ÷ (wall s × compute threads), wall s), CPU targets only
    shares: list[tuple[float, float]] = []
    seg_latencies: list[tuple[int, list[float]]] = []  # (seq, stream-order ms) per segment
    energy_models: list[str] = []  # a power model per distinct thread count (estimates)
    planner = _planner(cell, art, target, policy, workdir) if r.budgets else None
    budget_rows: list[dict] = []
    with ModeSwitcher(target.power_modes()) as modes:
        for seg in segments:
            modes.switch(seg.power_mode)  # a budget's latency model is measured under it
            plan, deadline_ms = None, r.deadline_ms
            budget = r.budget_for(seg.power_mode)
            if budget is None:
                wanted = r.sparsity_for(seg.power_mode)
            else:
                plan = planner.plan(  # type: ignore[union-attr]
                    seg.seq, seg.power_mode, Budget(*budget), seg.present,
                    _samples(test, policy.ds.modality_names, seg.present),
                )  # fmt: skip
                wanted = plan.choice.sparsity
                deadline_ms = budget[1] if budget[0] == "deadline_ms" else deadline_ms
            model, sparsity, switch_ms, charged_mj, charged_src = policy.model_for(seg, wanted)
            switches.append(switch_ms)
            model.eval()
            names = fed_modalities(model, seg.present)
            idx = (cursor + np.arange(seg.n_samples)) % len(test)
            cursor += seg.n_samples
            inputs = [{m: np.ascontiguousarray(test.x[m][i : i + 1]) for m in names} for i in idx]
            runner = target.export(
                model,
                inputs[0] if inputs else {m: test.x[m][:1] for m in names},
                cell.runtime,
                workdir / f"seg{seg.seq}",
            )
            threads = target.cpu_threads()  # after the switch: the mode sets the threads
            try:
                lat, preds, reading, (cpu_s, wall_s) = _stream(runner, inputs, sensor)
            finally:
                runner.close()
            if threads and wall_s > 0:
                shares.append((cpu_s / (wall_s * threads), wall_s))
            seg_latencies.append((seg.seq, lat))
            labels = test.y[idx]
            correct = int((np.asarray(preds) == labels).sum()) if len(preds) else 0
            correct_total += correct
            # the stream's own energy: a modelled reading at its median query, as a cell's
            stream_mj = None
            if reading is not None:
                median_s = float(np.median(lat)) / 1e3 if lat else 0.0
                stream_mj = reading.charged_mj(median_s, len(lat))
            seg_energy = stream_mj
            model_desc = getattr(reading, "model", None)
            if model_desc is not None and model_desc not in energy_models:
                energy_models.append(model_desc)
            if charged_mj is not None:
                seg_energy = (seg_energy or 0.0) + charged_mj
            if seg_energy is None:
                energy_known = False
            else:
                energy_total += seg_energy
            all_lat.extend(lat)
            if plan is not None:
                per = None if stream_mj is None or not lat else stream_mj / len(lat)
                budget_rows.append(plan.report(lat, per) | {"deployed_sparsity": sparsity})
            pct = np.percentile(lat, [50, 99]) if lat else [None, None]
            rows.append(
                SegmentRow(
                    seq=seg.seq,
                    t_start_s=seg.t_start_s,
                    t_end_s=seg.t_end_s,
                    power_mode=seg.power_mode,
                    present=seg.present,
                    sparsity=sparsity,
                    n_samples=seg.n_samples,
                    deadline_misses=int(sum(x > deadline_ms for x in lat)),
                    accuracy=correct / seg.n_samples if seg.n_samples else None,
                    latency_ms_p50=_f(pct[0]),
                    latency_ms_p99=_f(pct[1]),
                    switch_ms=switch_ms,
                    energy_mj=seg_energy,
                    energy_source=charged_src or (reading.source if reading is not None else None),
                )
            )
    n = len(all_lat)
    cols: dict[str, Any] = {
        "n_eval": n,
        "accuracy": correct_total / n if n else None,
        "prune_ms": float(np.mean(switches)) if switches else None,
    }
    if n:
        m = art.profile.measure
        stats = latency_stats(all_lat, m.percentiles, m.cv_warn)
        cols.update(
            {
                "latency_ms_p50": stats.p(50),
                "latency_ms_p90": stats.p(90),
                "latency_ms_p95": stats.p(95),
                "latency_ms_p99": stats.p(99),
                "latency_ms_mean": stats.mean_ms,
                "latency_cv": stats.cv,  # pooled over the segments' models: not a verdict
                "latency_n": n,
            }
        )
    if energy_known and n:
        cols["energy_mj_per_inference"] = energy_total / n
    cols["energy_source"] = rows[0].energy_source if rows else None
    cols["energy_model"] = "; ".join(energy_models) or None  # None: measured, not estimated
    checks, why = replay_verdict(seg_latencies, shares, art.profile.measure)
    if n:
        cols["stable"] = int(why is None)
        cols["unstable_reason"] = why
    cols["extra_json"] = json.dumps(
        {
            "deadline_ms": r.deadline_ms,
            "deadline_misses": sum(s.deadline_misses for s in rows),
            "switch_ms": switches,
        }
        | checks
        | ({"budgets": budget_rows} if budget_rows else {})
    )
    return cols, tuple(all_lat), rows


def _planner(cell: Cell, art: Artifacts, target: Any, policy: _Policy, workdir: Path) -> Any:
    from harness.budget_plan import BudgetPlanner
    from harness.store import STORE_NAME

    source = {"method": cell.method, "checkpoint": policy.ckpt_key, "seed": cell.seed}
    return BudgetPlanner(
        target, cell.runtime, art.out_dir / STORE_NAME, workdir, policy.variant_at, source
    )


def _samples(test: Any, order: list[str], present: tuple[str, ...], n: int = 16) -> list[dict]:
    """Batch-1 test samples of the present sensors, for measuring a latency model."""
    names = [m for m in order if m in present]
    return [{m: np.ascontiguousarray(test.x[m][i : i + 1]) for m in names} for i in range(n)]


def _stream(
    runner: Any, inputs: list[dict], sensor: Any
) -> tuple[list[float], list[int], Any, tuple[float, float]]:
    """Run each sample once, timed per query, inside one energy window; also returns the
    process's CPU seconds and the wall seconds of the loop (the CPU share check)."""
    lat: list[float] = []
    preds: list[int] = []
    clock = time.perf_counter_ns
    sync = runner.synchronize
    import contextlib

    cm = sensor.window() if sensor.available().ok else contextlib.nullcontext(None)
    with cm as win:
        sync()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for x in inputs:
            t0 = clock()
            out = runner(x)
            sync()
            lat.append((clock() - t0) / 1e6)
            preds.append(int(np.asarray(out)[0].argmax()))
        cpu_wall = (time.process_time() - cpu0, time.perf_counter() - wall0)
    return lat, preds, getattr(win, "reading", None), cpu_wall


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


__all__ = ["run_replay_cell", "measurement_columns"]
