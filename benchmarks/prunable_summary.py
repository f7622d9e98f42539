"""Summary tables of ``prunable_training.py``: per-seed JSON → Markdown with intervals.

Every interval is a 95% Student-t interval over seeds of a per-seed quantity; where two
things are compared (new vs old recipe, SentryGate vs a baseline) the difference is taken
within each seed first (paired), then summarised. Accuracies are in points (0–100).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

BASELINES = ("random", "magnitude", "taylor", "fisher")  # zero-shot, no per-condition data
SG = "sentrygate"
PAPER = {"overall": 12.7, "dropout": 18.0}


def t_interval(values) -> tuple[float, float, int]:
    """(mean, 95% half-width, n); half-width NaN for n < 2."""
    from scipy import stats

    x = np.asarray([v for v in values if v == v], dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n < 2:
        return float(x.mean()), float("nan"), 1
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
    return float(x.mean()), float(half), n


def fmt(values, signed: bool = False, unit: str = "") -> str:
    m, h, n = t_interval(values)
    if n == 0:
        return "n/a"
    core = f"{m:+.1f}" if signed else f"{m:.1f}"
    if n < 2:
        return f"{core}{unit} (n=1)"
    return f"{core} ± {h:.1f}{unit} (n={n})"


def excludes_zero(values) -> str:
    m, h, n = t_interval(values)
    if n < 2 or h != h:
        return "—"
    return "yes" if abs(m) > h else "no"


def load(runs: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells: one row per pruned cell, full: one row per full-model condition)."""
    cells, full = [], []
    for f in sorted(runs.glob("*.json")):
        r = json.loads(f.read_text())
        key = {k: r[k] for k in ("dataset", "seed", "recipe")}
        cells += [{**key, **c, "accuracy": 100 * c["accuracy"]} for c in r["cells"]]
        full += [{**key, "condition": c, "accuracy": 100 * a} for c, a in r["full"].items()]
    return pd.DataFrame(cells), pd.DataFrame(full)


def _per_seed(df: pd.DataFrame, method: str) -> pd.Series:
    return df[df.method == method].groupby("seed")["accuracy"].mean()


def strongest(df: pd.DataFrame) -> str | None:
    means = df[df.method.isin(BASELINES)].groupby("method")["accuracy"].mean()
    return None if means.empty else str(means.idxmax())


def _paired(a: pd.Series, b: pd.Series) -> pd.Series:
    return (a - b).dropna()


def full_table(full: pd.DataFrame) -> list[str]:
    lines = ["| dataset | condition | old recipe | new recipe | new − old (paired) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for (ds, cond), g in full[full.recipe.isin(["old", "new"])].groupby(["dataset", "condition"]):
        old = g[g.recipe == "old"].set_index("seed")["accuracy"]
        new = g[g.recipe == "new"].set_index("seed")["accuracy"]
        lines.append(
            f"| {ds} | {cond} | {fmt(old)} | {fmt(new)} | {fmt(_paired(new, old), True)} |"
        )
    return lines


def same_checkpoint_table(cells: pd.DataFrame, min_sparsity: float = 0.5) -> list[str]:
    lines = ["| dataset | checkpoint | strongest baseline | SentryGate | baseline | "
             "SentryGate − baseline (points) | interval excludes 0 | vs taylor-calib |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    sel = cells[cells.sparsity >= min_sparsity - 1e-9]
    for ds, g in sel.groupby("dataset"):
        for recipe in ("new", "old", "random", "nodistill"):
            r = g[g.recipe == recipe]
            best = strongest(r)
            if best is None or r[r.method == SG].empty:
                continue
            sg, b = _per_seed(r, SG), _per_seed(r, best)
            tc = _per_seed(r, "taylor-calib")
            margin = _paired(sg, b)
            lines.append(
                f"| {ds} | {recipe} | {best} | {fmt(sg)} | {fmt(b)} | {fmt(margin, True)} | "
                f"{excludes_zero(margin)} | {fmt(_paired(sg, tc), True)} |"
            )
    return lines


def paper_protocol_rows(cells: pd.DataFrame, scope: str) -> list[str]:
    """SentryGate on ``new`` vs the strongest baseline on ``old``, per dataset and pooled."""
    sel = cells if scope == "overall" else cells[cells.condition != "all"]
    out = []
    groups = [(ds, g) for ds, g in sel.groupby("dataset")] + [("all datasets", sel)]
    for ds, g in groups:
        old, new = g[g.recipe == "old"], g[g.recipe == "new"]
        best = strongest(old)
        if best is None or new[new.method == SG].empty:
            continue
        # pooled: per seed, the mean over the cells of the datasets that have that seed
        sg, b = _per_seed(new, SG), _per_seed(old, best)
        pts = _paired(sg, b)
        rel = (100 * pts / b).dropna()
        today = _paired(_per_seed(old, SG), b)
        out.append(
            f"| {scope} | {ds} | {best} | {fmt(sg)} | {fmt(b)} | {fmt(pts, True, ' pts')} | "
            f"{fmt(rel, True, ' %')} | +{PAPER[scope]} | {fmt(today, True, ' pts')} |"
        )
    return out


def paper_table(cells: pd.DataFrame) -> list[str]:
    lines = ["| scope | dataset | strongest baseline (old ckpt) | SentryGate (new ckpt) | "
             "baseline (old ckpt) | margin, points | margin, relative (% of baseline) | "
             "paper | today (SentryGate on old ckpt), points |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    return lines + paper_protocol_rows(cells, "overall") + paper_protocol_rows(cells, "dropout")


def ablation_table(cells: pd.DataFrame, full: pd.DataFrame) -> list[str]:
    lines = ["| dataset | recipe | full model, all sensors | SentryGate, all cells | "
             "SentryGate, sparsity ≥ 0.5 | SentryGate − same-recipe old (paired) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for ds, g in cells.groupby("dataset"):
        if g.recipe.nunique() <= 2:
            continue
        old = _per_seed(g[g.recipe == "old"], SG)
        for recipe in ("old", "new", "random", "nodistill"):
            r = g[g.recipe == recipe]
            if r.empty:
                continue
            f = full[(full.dataset == ds) & (full.recipe == recipe) & (full.condition == "all")]
            sg = _per_seed(r, SG)
            hi = _per_seed(r[r.sparsity >= 0.5 - 1e-9], SG)
            lines.append(
                f"| {ds} | {recipe} | {fmt(f.set_index('seed')['accuracy'])} | {fmt(sg)} | "
                f"{fmt(hi)} | {fmt(_paired(sg, old), True)} |"
            )
    return lines


def method_table(cells: pd.DataFrame) -> list[str]:
    t = cells[cells.recipe.isin(["old", "new"])].pivot_table(
        index=["dataset", "recipe", "method"], columns="sparsity", values="accuracy"
    )
    cols = [f"s={c:g}" for c in t.columns]
    lines = ["| dataset | recipe | method | " + " | ".join(cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]  # fmt: skip
    for idx, row in t.iterrows():
        lines.append("| " + " | ".join(map(str, idx)) + " | "
                     + " | ".join(f"{v:.1f}" for v in row.tolist()) + " |")  # fmt: skip
    return lines


def write_summary(runs: Path, out: Path) -> None:
    if not any(runs.glob("*.json")):
        return
    cells, full = load(runs)
    jobs = cells.groupby(["dataset", "recipe"])["seed"].nunique().reset_index()
    done = ", ".join(f"{r.dataset}/{r.recipe}: {r.seed}" for r in jobs.itertuples())
    lines = [
        "# Prunability-aware training: summary\n",
        f"Seeds finished per dataset/recipe: {done}. Mean ± 95% t-interval half-width over "
        "seeds (n = seeds); differences paired by seed. Accuracy in points.\n",
        "## Full-model accuracy, old vs new recipe\n", *full_table(full),
        "\n## Same-checkpoint protocol (every method prunes the same checkpoint), "
        "sparsity ≥ 0.5, all conditions\n", *same_checkpoint_table(cells),
        "\n## Paper protocol (SentryGate on its prunability-trained checkpoint, baselines on "
        "the ordinary one), all sparsities\n", *paper_table(cells),
        "\n## Control (random ranking) and ablation (no distillation)\n",
        *ablation_table(cells, full),
        "\n## Mean accuracy by method and sparsity (over conditions and seeds)\n",
        *method_table(cells),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
