"""The report's first section: per dataset × backbone, what a reader came to decide.

Each row is one comparison with its 95% interval, what the interval rests on and an
unstable badge where a cell's trials disagreed more than its profile allows:
SentryGate against the strongest zero-shot baseline (all sensors and under dropout), the
fine-tuned baselines, and at each deployment and sparsity its speedup, memory and energy
against the unpruned model of the same attention (energy with its source and model).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reports.intervals import shift_interval
from reports.margins import SENTRYGATE, margin_vs_strongest, paired_margin
from reports.store import StoreData
from reports.tables import is_finetuned, ok_static

UNSTABLE = "⚠ unstable"
DEPLOY = ["target", "runtime", "power_mode"]
COLUMNS = ["comparison", "value [95% interval]", "basis", "stability"]


def unstable_badge(*rows: pd.Series) -> str:
    """'' for stable cells, else the badge with each unstable cell's reason."""
    reasons = []
    for r in rows:
        stable = r.get("stable")
        if stable is not None and not pd.isna(stable) and not int(stable):
            why = r.get("unstable_reason")
            reasons.append(why if isinstance(why, str) and why else "trials disagree")
    unique = list(dict.fromkeys(reasons))
    return f"{UNSTABLE}: {'; '.join(unique)}" if unique else ""


def ratio_interval(store: StoreData, num_key: str, den_key: str,
                   column: str) -> tuple[float, float, float] | None:  # fmt: skip
    """median(num trials)/median(den trials) with the exact 95% interval over trials."""
    a = store.trials_for(den_key)[column].to_numpy(dtype=float)
    b = store.trials_for(num_key)[column].to_numpy(dtype=float)
    a, b = a[np.isfinite(a) & (a > 0)], b[np.isfinite(b) & (b > 0)]
    if len(a) == 0 or len(b) == 0:
        return None
    point = float(np.median(b) / np.median(a))
    iv = shift_interval(np.log(a), np.log(b))
    if iv is None:
        return point, math.nan, math.nan
    return point, math.exp(iv.lo), math.exp(iv.hi)


def _ratio_text(r: tuple[float, float, float] | None, unit: str = "×") -> tuple[str, str]:
    if r is None:
        return "n/a", "no trials"
    point, lo, hi = r
    if math.isnan(lo):
        return f"{point:.2f}{unit}", "too few trials for an interval (schema-1 stores: 1 per cell)"
    return f"{point:.2f}{unit} [{lo:.2f}, {hi:.2f}]", "trials, exact interval"


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def _accuracy_rows(g: pd.DataFrame) -> list[dict]:
    pruned = g[g["sparsity"] > 0]
    rows = []
    for label, sel in (("all sensors", pruned["condition"] == "all"),
                       ("under modality dropout", pruned["condition"] != "all")):  # fmt: skip
        m = margin_vs_strongest(pruned[sel])
        rows.append({"comparison": f"SentryGate − strongest zero-shot baseline, {label}",
                     "value [95% interval]": "n/a" if m is None else
                     f"{m.points:+.1f} points {m.interval_text()} vs {m.baseline}",
                     "basis": "" if m is None else f"{_cells(m.n_cells)}, {m.basis}",
                     "stability": ""})  # fmt: skip
    for ft in sorted(pruned.loc[is_finetuned(pruned["method"]), "method"].unique()):
        m = paired_margin(pruned, ft)
        if m is not None:
            rows.append({"comparison": f"SentryGate − fine-tuned {ft}",
                         "value [95% interval]": f"{m.points:+.1f} points {m.interval_text()}",
                         "basis": f"{_cells(m.n_cells)}, {m.basis}", "stability": ""})  # fmt: skip
    return rows


def _deployment_rows(store: StoreData, g: pd.DataFrame) -> list[dict]:
    rows = []
    allc = g[g["condition"] == "all"]
    sg = allc[allc["method"] == SENTRYGATE]
    dense = allc[allc["method"] == "dense"]
    for _, s in sg.sort_values([*DEPLOY, "attention", "sparsity", "seed"]).iterrows():
        d = dense
        for col in [*DEPLOY, "attention", "seed"]:
            d = d[d[col] == s[col]]
        if d.empty:
            continue
        d = d.iloc[0]
        where = (f"{s['attention']} attention, s={s['sparsity']:.2f}, {s['target']}/{s['runtime']}/"
                 f"{s['power_mode']}, seed {s['seed']}")  # fmt: skip
        badge = unstable_badge(s, d)
        value, basis = _ratio_text(ratio_interval(store, d["cell_key"], s["cell_key"],
                                                  "latency_ms_p50"))  # fmt: skip
        rows.append({"comparison": f"speedup vs dense (p50), {where}",
                     "value [95% interval]": value, "basis": basis, "stability": badge})  # fmt: skip
        if pd.notna(s.get("weights_mb")) and pd.notna(d.get("weights_mb")) and d["weights_mb"]:
            change = (s["weights_mb"] / d["weights_mb"] - 1) * 100
            rss = ""
            if pd.notna(s.get("peak_memory_mb")) and pd.notna(d.get("peak_memory_mb")):
                rss = f"; process peak RSS {(s['peak_memory_mb'] / d['peak_memory_mb'] - 1) * 100:+.1f}%"
            rows.append({"comparison": f"memory vs dense, {where}",
                         "value [95% interval]": f"{change:+.1f}% model weights{rss}",
                         "basis": "exact (weights); RSS one value per cell",
                         "stability": ""})  # fmt: skip
        if pd.notna(s.get("energy_mj_per_inference")) and pd.notna(
            d.get("energy_mj_per_inference")
        ):
            value, basis = _ratio_text(ratio_interval(store, s["cell_key"], d["cell_key"],
                                                      "energy_mj_per_inference"))  # fmt: skip
            source = f"{s.get('energy_source')} ({s.get('energy_sensor')})"
            model = s.get("energy_model")
            if isinstance(model, str) and model:
                source += f", power model: {model}"
            rows.append({"comparison": f"energy per inference vs dense, {where}",
                         "value [95% interval]": value, "basis": f"{basis}; energy {source}",
                         "stability": badge})  # fmt: skip
    return rows


def verdict_tables(store: StoreData) -> list[tuple[str, pd.DataFrame]]:
    """One table per dataset × backbone, in a stable order."""
    cells = ok_static(store.cells)
    out = []
    for (dataset, backbone), g in cells.groupby(["dataset", "backbone"], sort=True):
        rows = _accuracy_rows(g) + _deployment_rows(store, g)
        out.append((f"{dataset} × {backbone}", pd.DataFrame(rows, columns=COLUMNS)))
    return out


__all__ = ["UNSTABLE", "ratio_interval", "unstable_badge", "verdict_tables"]
