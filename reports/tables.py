"""Derived tables: what the plots draw and what users open in a spreadsheet.

Every function takes the ``cells`` DataFrame of a store and returns a new DataFrame;
nothing here reads files or draws. Accuracy in the store is a fraction; tables show
``accuracy_pct`` (points) because every claim we compare against is in points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.intervals import t_interval, wilson
from reports.margins import BASELINES_ZERO_SHOT, SENTRYGATE  # noqa: F401 - re-exported


def ok_static(cells: pd.DataFrame) -> pd.DataFrame:
    """Finished static cells (failed and replay cells are reported separately)."""
    out = cells[(cells["status"] == "ok") & (cells["kind"] == "static")].copy()
    out["accuracy_pct"] = out["accuracy"] * 100.0
    return out


def is_finetuned(method: pd.Series) -> pd.Series:
    """Fine-tuning baselines are stored as '<method>+ft'."""
    return method.astype(str).str.endswith("+ft")


def energy_provenance(frame: pd.DataFrame, source: str = "energy_source",
                      sensor: str = "energy_sensor") -> str:  # fmt: skip
    """One label such as 'measured (ina3221-sysfs); estimated (cpu-time-estimate)'."""
    if frame.empty or source not in frame:
        return "no energy data"
    pairs = frame[[source, sensor]] if sensor in frame else frame[[source]].assign(_s=None)
    labels = sorted(
        {
            f"{src} ({sen})" if isinstance(sen, str) and sen else str(src)
            for src, sen in pairs.dropna(subset=[source]).itertuples(index=False)
        }
    )
    return "; ".join(labels) if labels else "no energy data"


def _join_unique(values: pd.Series) -> str:
    vals = sorted({str(v) for v in values.dropna()})
    return "+".join(vals) if vals else ""


def accuracy_over_seeds(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean accuracy (points) per ``keys`` group with its 95% interval over training seeds.

    Seeds are the replicates (a cell's accuracy moves by several points from one training
    seed to the next): Student's t over seeds; with one seed, Wilson's binomial interval on
    the test-set count, labelled '1 seed' so it is never read as a replicated figure.
    """
    cols = [*keys, "accuracy_pct", "accuracy_lo", "accuracy_hi", "interval", "n_seeds",
            "n_cells"]  # fmt: skip
    if df.empty:
        return pd.DataFrame(columns=cols)
    per_seed = df.groupby([*keys, "seed"], as_index=False).agg(
        acc=("accuracy_pct", "mean"), n_eval=("n_eval", "median"), n_cells=("cell_key", "count")
    )
    rows = []
    for key, g in per_seed.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        values = g["acc"].to_numpy(dtype=float)
        row = dict(zip(keys, key, strict=True))
        if len(values) >= 2:
            iv = t_interval(values)
            lo, hi, label = iv.lo, iv.hi, f"t over {len(values)} seeds"
        elif pd.notna(g["n_eval"].iloc[0]) and g["n_eval"].iloc[0] > 0:
            w = wilson(values[0] / 100.0, int(g["n_eval"].iloc[0]))
            lo, hi, label = w.lo * 100, w.hi * 100, "Wilson, 1 seed"
        else:
            lo, hi, label = np.nan, np.nan, "1 seed, no interval"
        row.update(accuracy_pct=float(values.mean()), accuracy_lo=lo, accuracy_hi=hi,
                   interval=label, n_seeds=len(values), n_cells=int(g["n_cells"].sum()))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=cols).reset_index(drop=True)


def accuracy_vs_sparsity(cells: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (all sensors present) per dataset × backbone × attention × method × sparsity,
    over training seeds. Accuracy does not depend on target or power mode: averaged over."""
    df = ok_static(cells)
    df = df[(df["condition"] == "all") & df["accuracy_pct"].notna()]
    return accuracy_over_seeds(df, ["dataset", "backbone", "attention", "method", "sparsity"])


def accuracy_by_condition(cells: pd.DataFrame) -> pd.DataFrame:
    """Accuracy under each modality condition per method and sparsity, over seeds."""
    df = ok_static(cells)
    df = df[df["accuracy_pct"].notna()]
    keys = ["dataset", "backbone", "attention", "method", "sparsity", "condition"]
    return accuracy_over_seeds(df, keys)


def power_mode_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Latency and energy per inference per target/runtime/power mode (all sensors present)."""
    df = ok_static(cells)
    df = df[df["condition"] == "all"]
    keys = ["target", "runtime", "power_mode", "attention", "method", "sparsity"]
    return (
        df.groupby(keys, as_index=False)
        .agg(
            latency_ms_p50=("latency_ms_p50", "median"),
            latency_ms_p99=("latency_ms_p99", "median"),
            energy_mj_per_inference=("energy_mj_per_inference", "median"),
            energy_source=("energy_source", _join_unique),
            energy_sensor=("energy_sensor", _join_unique),
            n_cells=("cell_key", "count"),
        )
        .sort_values(keys)
        .reset_index(drop=True)
    )


def pareto_mask(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """True where no other point has lower-or-equal cost and higher-or-equal accuracy
    (strictly better in one). NaNs are never on the front."""
    cost = np.asarray(cost, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    valid = ~(np.isnan(cost) | np.isnan(accuracy))
    mask = np.zeros(len(cost), dtype=bool)
    for i in np.flatnonzero(valid):
        others = valid.copy()
        others[i] = False
        dominated = (
            (cost[others] <= cost[i])
            & (accuracy[others] >= accuracy[i])
            & ((cost[others] < cost[i]) | (accuracy[others] > accuracy[i]))
        )
        mask[i] = not dominated.any()
    return mask


def pareto_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Every static cell (all sensors present) with its place on the accuracy–latency
    and accuracy–energy fronts, computed per dataset × backbone (comparable accuracy)."""
    df = ok_static(cells)
    df = df[(df["condition"] == "all") & df["accuracy_pct"].notna()]
    cols = ["dataset", "backbone", "attention", "method", "sparsity", "target", "runtime",
            "power_mode", "accuracy_pct", "latency_ms_p50", "energy_mj_per_inference",
            "energy_source", "energy_sensor", "cell_key"]  # fmt: skip
    df = df[cols].reset_index(drop=True)
    df["on_latency_front"] = False
    df["on_energy_front"] = False
    for _, idx in df.groupby(["dataset", "backbone"]).groups.items():
        sub = df.loc[idx]
        df.loc[idx, "on_latency_front"] = pareto_mask(
            sub["latency_ms_p50"].to_numpy(), sub["accuracy_pct"].to_numpy()
        )
        df.loc[idx, "on_energy_front"] = pareto_mask(
            sub["energy_mj_per_inference"].to_numpy(), sub["accuracy_pct"].to_numpy()
        )
    return df


def failed_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells that failed, with their one-line error, so a report never hides them."""
    cols = ["dataset", "backbone", "attention", "method", "sparsity", "condition", "target",
            "runtime", "power_mode", "error"]  # fmt: skip
    return cells.loc[cells["status"] != "ok", cols].reset_index(drop=True)
