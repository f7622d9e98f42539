"""``write_report``: results store → tables (CSV + Parquet), summary.md and report.html.

Everything is built in a temporary sibling directory and renamed into place at the end,
so an interrupted or failed report leaves either the previous report or nothing — never
a half-written one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
from pathlib import Path

import pandas as pd

from reports import plots
from reports.claims import claims_table
from reports.finetune import accuracy_gap, energy_break_even
from reports.fleet import device_table
from reports.protocol import WITHIN_POINTS, full_model_table
from reports.render import Section, render_html, render_markdown
from reports.store import StoreData, load_store
from reports.tables import (
    accuracy_by_condition,
    accuracy_vs_sparsity,
    energy_provenance,
    failed_cells,
    ok_static,
    pareto_table,
    power_mode_table,
)
from reports.usermodels import model_table
from reports.verdict import UNSTABLE, unstable_badge, verdict_tables
from sentryfuse.errors import StoreError
from sentryfuse.outpath import check_can_create

JSON_COLUMNS = ("definition_json", "extra_json", "energy_rails_json")
# A file in every report folder we write: a folder is replaced only when it holds this
# (or is empty, or is a report from before the marker existed), never a user's folder.
MARKER = ".sentryfuse-report"
_LEGACY_NAMES = {"report.html", "summary.md", "tables"}


def is_our_report(folder: str | Path) -> bool:
    """True when ``folder`` may be replaced by a report: ours, empty, or absent."""
    folder = Path(folder)
    if not folder.exists():
        return True
    if not folder.is_dir() or folder.is_symlink():
        return False
    names = set(os.listdir(folder))
    return MARKER in names or names <= _LEGACY_NAMES


def dataset_display_names(cells: pd.DataFrame) -> pd.DataFrame:
    """A user's ``.npz`` dataset by its file name's stem, not its absolute path (a report is
    shared; the path says where it lay on one machine). Colliding stems keep the paths."""
    if "dataset" not in cells or cells.empty:
        return cells
    paths = [d for d in cells["dataset"].dropna().unique() if str(d).endswith(".npz")]
    stems = {p: Path(p).stem for p in paths}
    if len(set(stems.values())) != len(stems):
        return cells
    return cells.assign(dataset=cells["dataset"].map(lambda d: stems.get(d, d)))


def build_tables(store: StoreData, ordinary: StoreData | None = None) -> dict[str, pd.DataFrame]:
    """Every table the report writes, by file stem; ``ordinary`` (a run of the same grid
    with ``[train] subnet = false``) adds the paper protocol and the full model's cost."""
    cells = store.cells
    extra = (
        {}
        if ordinary is None
        else {"full_model_vs_ordinary": full_model_table(cells, ordinary.cells)}
    )
    return {
        "runs": store.runs,
        "cells": cells.drop(columns=[c for c in JSON_COLUMNS if c in cells]),
        "accuracy_vs_sparsity": accuracy_vs_sparsity(cells),
        "accuracy_by_condition": accuracy_by_condition(cells),
        "power_modes": power_mode_table(cells),
        "pareto": pareto_table(cells),
        "finetune_accuracy_gap": accuracy_gap(cells),
        "finetune_energy_break_even": energy_break_even(cells),
        "claims": claims_table(cells, store, ordinary),
        "replay_segments": store.replay_segments,
        "failed_cells": failed_cells(cells),
        "models": model_table(cells),
        **extra,
    }


def _provenance(store: StoreData) -> Section:
    runs = store.runs
    rows = []
    for r in runs.itertuples(index=False):
        try:
            devices = ", ".join(sorted(json.loads(r.fingerprint_json)))
        except (TypeError, ValueError):
            devices = "unreadable fingerprint"
        rows.append({"run_id": r.run_id, "profile": r.profile_name, "git_commit": r.git_commit,
                     "started_at": r.started_at, "finished_at": r.finished_at,
                     "targets": devices, "fingerprint_hash": r.fingerprint_hash})  # fmt: skip
    cells = store.cells
    counts = (
        f"{len(cells)} cells ({int((cells['status'] == 'ok').sum())} ok, "
        f"{int((cells['status'] != 'ok').sum())} failed; "
        f"{int((cells['kind'] == 'replay').sum())} deployment replays), "
        f"{len(store.latency_samples)} raw latency samples."
    )
    return Section("Run", [f"Store: {store.path.name}. {counts}"], [("runs", pd.DataFrame(rows))])


def _parse_present(segments: pd.DataFrame, store: StoreData) -> pd.DataFrame:
    """Decode ``present_json``; a malformed one is a corrupt store, said in one line."""
    present = []
    for raw in segments["present_json"]:
        try:
            value = json.loads(raw)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, list):
            raise StoreError(
                f"results store '{store.path}' has a replay segment with unreadable "
                f"present_json {raw!r}; re-run the replay cell"
            )
        present.append([str(v) for v in value])
    return segments.assign(present=present)


def _figure(alt: str, fig) -> list[tuple[str, bytes]]:
    return [] if fig is None else [(alt, plots.to_png(fig))]


def _span(values: pd.Series) -> str:
    """'7' or '5–7' (1 when a schema-1 store has no trials column values)."""
    if values.empty:
        return "1"
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"


def _verdict(store: StoreData) -> Section:
    cells = store.cells
    counts = (
        f"Store: {store.path.name} (schema v{store.user_version}). {len(cells)} cells "
        f"({int((cells['status'] == 'ok').sum())} ok, {int((cells['status'] != 'ok').sum())} "
        f"failed; {int((cells['kind'] == 'replay').sum())} deployment replays), "
        f"{len(store.latency_samples)} raw latency samples."
    )
    trials = cells["trials"].dropna()
    seeds = sorted({int(s) for s in cells["seed"].dropna()})
    basis = (
        f"Intervals are 95%: latency and energy over each cell's trials "
        f"({_span(trials)} per cell), "
        f"accuracy over training seeds ({len(seeds)} seed(s): {', '.join(map(str, seeds))}; "
        "a binomial interval where there is one). "
        f"{UNSTABLE}: the cell's trials disagree by more than the profile allows."
    )
    tables = verdict_tables(store)
    if not tables:
        return Section("Verdict", [counts, "No finished static cells to compare."])
    return Section("Verdict", [counts, basis], tables)


def build_sections(store: StoreData, tables: dict[str, pd.DataFrame]) -> list[Section]:
    """The report: the verdict first, then the claims, the plots, and raw tables last."""
    ok = ok_static(store.cells)
    energy_note = f"Energy figures in this run: {energy_provenance(ok)}."
    ft_note = (
        "Gap = SentryGate (zero-shot, no fine-tuning) accuracy minus the fine-tuned "
        "baseline's, in points, averaged over datasets, backbones and attention kinds. "
        "Break-even = fine-tuning energy ÷ energy per inference: the number of inferences "
        "the fine-tuning energy would have paid for."
    )
    be = tables["finetune_energy_break_even"]
    models = _models_section(tables["models"])
    if models is not None and ok.empty:  # a `sentryfuse bench` run: only the user's models
        failed = tables["failed_cells"]
        failed_sec = Section(
            "Failed cells", [f"{len(failed)} cell(s) failed."], [("failed", failed)]
        )
        return [models, failed_sec, _provenance(store)]
    ft_energy = (
        f"Fine-tuning energy: {energy_provenance(be, 'finetune_energy_source', 'finetune_energy_sensor')}"
        f"; inference energy: {energy_provenance(be)}."
    )
    sections = [
        _verdict(store),
        Section("Paper claims vs this run", [energy_note], [("claims", tables["claims"])]),
        *_full_model_section(tables),
        Section(
            "Accuracy vs sparsity",
            ["Bands: 95% intervals over training seeds (Wilson binomial for one seed)."],
            images=_figure(
                "accuracy vs sparsity per method, one panel per dataset × backbone",
                plots.plot_accuracy_vs_sparsity(tables["accuracy_vs_sparsity"]),
            ),  # fmt: skip
        ),
        Section(
            "Accuracy under modality conditions",
            images=_figure(
                "accuracy under each modality condition",
                plots.plot_accuracy_by_condition(tables["accuracy_by_condition"]),
            ),  # fmt: skip
        ),
        Section(
            "Latency and energy vs power mode",
            [energy_note],
            images=_figure(
                "latency and energy per inference vs power mode",
                plots.plot_power_modes(tables["power_modes"]),
            ),  # fmt: skip
        ),
        Section(
            "Pareto fronts",
            [energy_note],
            images=_figure(
                "accuracy–latency and accuracy–energy Pareto fronts",
                plots.plot_pareto(tables["pareto"]),
            ),  # fmt: skip
        ),
        Section(
            "Comparison with fine-tuning baselines",
            [ft_note, ft_energy],
            images=_figure(
                "break-even inferences per fine-tuned method", plots.plot_break_even(be)
            ),
        ),
    ]
    if models is not None:
        sections.insert(1, models)
    replay = Section("Deployment replay")
    replay_tables: list[tuple[str, pd.DataFrame]] = []
    segs = store.replay_segments
    for c in store.cells[store.cells["kind"] == "replay"].itertuples(index=False):
        title = (f"{c.dataset} · {c.backbone} · {c.attention} · {c.method} · {c.condition} · "
                 f"{c.target}/{c.runtime} · {c.power_mode}")  # fmt: skip
        sub = _parse_present(segs[segs["cell_key"] == c.cell_key], store)
        sub = sub.assign(energy_sensor=c.energy_sensor)
        replay.images += _figure(f"replay timeline: {title}", plots.plot_replay(title, sub))
        if not sub.empty:
            cols = ["seq", "t_start_s", "t_end_s", "power_mode", "present_json", "sparsity",
                    "accuracy", "latency_ms_p50", "latency_ms_p99", "deadline_misses",
                    "switch_ms", "energy_mj", "energy_source", "energy_sensor"]  # fmt: skip
            replay_tables.append((f"replay segments: {title}", sub[cols].sort_values("seq")))
    if not replay.images:
        replay.paragraphs.append("This run has no deployment replay cells.")
    sections.append(replay)
    failed = tables["failed_cells"]
    raw = [
        ("accuracy vs sparsity (95% intervals over seeds)", tables["accuracy_vs_sparsity"]),
        ("per power mode", tables["power_modes"]),
        ("fine-tuning: accuracy gap per sparsity and condition", tables["finetune_accuracy_gap"]),
        ("fine-tuning energy and break-even", be),
        *replay_tables,
        ("cells (every figure; stability per cell)", _cells_table(store)),
        ("failed", failed),
    ]
    sections.append(Section("Devices", ["Cells grouped by the fingerprint of the device that "
                            "measured them (a fleet run spans several)."],
                            [("devices", device_table(store))]))  # fmt: skip
    sections.append(_provenance(store))
    sections.append(Section("Raw tables", [f"{len(failed)} cell(s) failed. {energy_note}"], raw))
    return sections


def _full_model_section(tables: dict[str, pd.DataFrame]) -> list[Section]:
    """With ``--ordinary``: what prunability-aware training costs the unpruned model."""
    if "full_model_vs_ordinary" not in tables:
        return []
    table = tables["full_model_vs_ordinary"]
    text = (
        "The unpruned model of this run's prunability-trained checkpoints minus the "
        "ordinary (subnet = false) checkpoints' of --ordinary, per dataset and condition, "
        "paired by backbone, attention and seed: "
    )
    if table.empty:
        text += "no unpruned (dense) cell is in both runs (set dense_baseline = true in both)."
    else:
        n_ok = int(table[f"within_{WITHIN_POINTS:g}"].sum())
        text += f"{n_ok} of {len(table)} means within {WITHIN_POINTS:g} points."
    return [Section("The full model: prunability-trained vs ordinary checkpoints", [text],
                    [("full_model_vs_ordinary", table)])]  # fmt: skip


def _models_section(table: pd.DataFrame) -> Section | None:
    if table.empty:
        return None
    note = (
        "Your ONNX models (cells of kind 'model'): latency per query over the timed window, "
        "inputs already on the device; h2d/compute/d2h are the device's own event timings "
        f"(blank where the runtime has none). Energy: {energy_provenance(table)}."
    )
    return Section("Your models", [note], [("models", table)])


def _cells_table(store: StoreData) -> pd.DataFrame:
    """The static cells with their figures and an unstable badge beside them."""
    cells = ok_static(store.cells)
    cols = ["dataset", "backbone", "attention", "method", "sparsity", "condition", "target",
            "runtime", "power_mode", "seed", "accuracy_pct", "latency_ms_p50",
            "latency_ms_p50_ci_lo", "latency_ms_p50_ci_hi", "latency_ms_p99", "trials",
            "energy_mj_per_inference", "energy_source", "energy_sensor"]  # fmt: skip
    out = cells[[c for c in cols if c in cells]].copy()
    out["stability"] = [unstable_badge(r) for _, r in cells.iterrows()]
    return out.reset_index(drop=True)


def _write_tables(tables: dict[str, pd.DataFrame], out: Path) -> None:
    tdir = out / "tables"
    tdir.mkdir()
    for name, df in tables.items():
        df.to_csv(tdir / f"{name}.csv", index=False)
        # Parquet wants one type per column: object columns mixing None/str become str.
        pq = df.copy()
        for col in [c for c in pq.columns if pd.api.types.is_object_dtype(pq[c])]:
            pq[col] = pq[col].map(lambda v: None if v is None else str(v))
        pq.to_parquet(tdir / f"{name}.parquet", engine="pyarrow", index=False)


def write_report(
    store_path: str | Path, out_dir: str | Path, ordinary_path: str | Path | None = None
) -> Path:
    """Write the whole report for one store into ``out_dir`` (replaced atomically);
    ``ordinary_path``: a store of the same grid with ordinary checkpoints (paper protocol)."""
    out = Path(out_dir)
    if not is_our_report(out):
        raise StoreError(
            f"{out} exists and was not written by sentryfuse (it would be replaced); "
            "pass another --out or move it away"
        )
    check_can_create(out, "--out")
    store = load_store(store_path)
    store = dataclasses.replace(store, cells=dataset_display_names(store.cells))
    ordinary = None
    if ordinary_path is not None:
        ordinary = load_store(ordinary_path)
        ordinary = dataclasses.replace(ordinary, cells=dataset_display_names(ordinary.cells))
    # Tables first: a store pair they refuse (``StoreError``) leaves nothing written.
    tables = build_tables(store, ordinary)
    out.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not mkdtemp: the report gets the user's normal permissions (umask), not 0700.
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        (tmp / MARKER).write_text(
            "written by sentryfuse report; this folder is replaced on rewrite\n"
        )
        _write_tables(tables, tmp)
        sections = build_sections(store, tables)
        title = (
            f"SentryFuse Bench report — {', '.join(map(str, store.runs['profile_name'].unique()))}"
        )
        (tmp / "summary.md").write_text(render_markdown(title, sections), encoding="utf-8")
        (tmp / "report.html").write_text(render_html(title, sections), encoding="utf-8")
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
