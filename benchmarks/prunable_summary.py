"""Summary tables of ``prunable_training.py``: per-seed JSON → Markdown with intervals.

Margins (SentryGate − the strongest zero-shot baseline) come from ``reports.margins``,
the definition the report and the claims table share: per seed the mean over paired
cells, then the mean over seeds with a 95% Student-t interval (one seed: a binomial
interval from the test-set counts, labelled). Other differences (new − old recipe, the
relative margin) are paired by seed the same way and use ``reports.intervals.t_interval``.
Accuracies are in points (0–100); ``[lo, hi]`` is the 95% interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from reports.intervals import t_interval
from reports.margins import BASELINES_ZERO_SHOT, Margin, margin_vs_strongest

SG = "sentrygate"
PAPER = {"overall": 12.7, "dropout": 18.0}
KEYS = ("dataset", "sparsity", "condition")  # one backbone/attention per benchmark run


def fmt(values, signed: bool = False, unit: str = "") -> str:
    """'84.1 [82.0, 86.2] (3 seeds)' from per-seed values."""
    v = np.asarray([x for x in values if x == x], dtype=float)
    if len(v) == 0:
        return "n/a"
    core = f"{v.mean():+.1f}" if signed else f"{v.mean():.1f}"
    iv = t_interval(v)
    if iv is None:
        return f"{core}{unit} (1 seed)"
    lo, hi = (f"{iv.lo:+.1f}", f"{iv.hi:+.1f}") if signed else (f"{iv.lo:.1f}", f"{iv.hi:.1f}")
    return f"{core}{unit} [{lo}, {hi}] ({len(v)} seeds)"


def fmt_margin(m: Margin | None) -> str:
    return "n/a" if m is None else f"{m.points:+.1f} {m.interval_text()} ({m.basis})"


def excludes_zero(m: Margin | None) -> str:
    if m is None or m.lo is None:
        return "—"
    return "yes" if m.lo > 0 or m.hi < 0 else "no"


def load(runs: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells: one row per pruned cell, full: one row per full-model condition)."""
    cells, full = [], []
    for f in sorted(runs.glob("*.json")):
        r = json.loads(f.read_text())
        key = {k: r[k] for k in ("dataset", "seed", "recipe")}
        n = {"n_eval": r["test_samples"]}
        cells += [{**key, **n, **c, "accuracy": 100 * c["accuracy"]} for c in r["cells"]]
        full += [{**key, "condition": c, "accuracy": 100 * a} for c, a in r["full"].items()]
    return pd.DataFrame(cells), pd.DataFrame(full)


def margin(df: pd.DataFrame, baselines=BASELINES_ZERO_SHOT) -> Margin | None:
    return margin_vs_strongest(
        df, baselines=baselines, value="accuracy", keys=KEYS, seed="seed", n="n_eval"
    )


def _per_seed(df: pd.DataFrame, method: str) -> pd.Series:
    return df[df.method == method].groupby("seed")["accuracy"].mean()


def _paired_per_seed(df: pd.DataFrame, a: str, b: str) -> tuple[pd.Series, pd.Series]:
    """Per-seed means of methods a and b over the (cell, seed) pairs both have."""
    wide = df.pivot_table(index=[*KEYS, "seed"], columns="method", values="accuracy")
    pairs = wide[[a, b]].dropna()
    g = pairs.groupby(level="seed").mean()
    return g[a], g[b]


def full_table(full: pd.DataFrame, primary: str = "new") -> list[str]:
    lines = [f"| dataset | condition | old recipe | {primary} | {primary} − old (paired) |",
             "|---|---|---|---|---|"]  # fmt: skip
    sel = full[full.recipe.isin(["old", primary])]
    for (ds, cond), g in sel.groupby(["dataset", "condition"]):
        old = g[g.recipe == "old"].set_index("seed")["accuracy"]
        new = g[g.recipe == primary].set_index("seed")["accuracy"]
        lines.append(
            f"| {ds} | {cond} | {fmt(old)} | {fmt(new)} | {fmt((new - old).dropna(), True)} |"
        )
    return lines


def extra_recipes(df: pd.DataFrame, order: Sequence[str] = ()) -> list[str]:
    """The recipes in ``df`` besides old/new: in ``order`` (the benchmark's recipe table),
    then any others by name."""
    present = set(df.recipe) - {"old", "new"}
    return [r for r in order if r in present] + sorted(present - set(order))


def recipe_full_table(full: pd.DataFrame, extra: Sequence[str]) -> list[str]:
    """Full-model accuracy of every recipe minus the old recipe's, paired by seed."""
    recipes = [r for r in ("new", *extra) if r in set(full.recipe)]
    lines = ["| dataset | condition | " + " | ".join(f"{r} − old" for r in recipes) + " |",
             "|---|---|" + "---|" * len(recipes)]  # fmt: skip
    for (ds, cond), g in full.groupby(["dataset", "condition"]):
        old = g[g.recipe == "old"].set_index("seed")["accuracy"]
        cols = []
        for r in recipes:
            diff = (g[g.recipe == r].set_index("seed")["accuracy"] - old).dropna()
            cols.append(fmt(diff, True) if len(diff) else "—")
        lines.append(f"| {ds} | {cond} | " + " | ".join(cols) + " |")
    return lines


def same_checkpoint_table(
    cells: pd.DataFrame, extra: Sequence[str], min_sparsity: float = 0.5
) -> list[str]:
    lines = ["| dataset | checkpoint | strongest zero-shot baseline | SentryGate | baseline | "
             "SentryGate − baseline, points [95%] | interval excludes 0 | cells |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    sel = cells[cells.sparsity >= min_sparsity - 1e-9]
    for ds, g in sel.groupby("dataset"):
        for recipe in ("new", "old", *extra):
            r = g[g.recipe == recipe]
            m = margin(r)
            if m is None:
                continue
            sg, b = _paired_per_seed(r, SG, m.baseline)
            lines.append(
                f"| {ds} | {recipe} | {m.baseline} | {fmt(sg)} | {fmt(b)} | {fmt_margin(m)} | "
                f"{excludes_zero(m)} | {m.n_cells} |"
            )
    return lines


def paper_protocol_rows(cells: pd.DataFrame, scope: str, primary: str = "new") -> list[str]:
    """SentryGate on ``primary`` vs the strongest baseline on ``old``, per dataset and pooled."""
    sel = cells if scope == "overall" else cells[cells.condition != "all"]
    out = []
    groups = [(ds, g) for ds, g in sel.groupby("dataset")] + [("all datasets", sel)]
    for ds, g in groups:
        mixed = pd.concat([g[(g.recipe == primary) & (g.method == SG)],
                           g[(g.recipe == "old") & (g.method != SG)]])  # fmt: skip
        m = margin(mixed)
        if m is None:
            continue
        sg, b = _paired_per_seed(mixed, SG, m.baseline)
        rel = 100 * (sg - b) / b
        old = g[g.recipe == "old"]
        today = margin(old)
        out.append(
            f"| {scope} | {ds} | {m.baseline} | {fmt(sg)} | {fmt(b)} | {fmt_margin(m)} | "
            f"{fmt(rel, True, ' %')} | +{PAPER[scope]} | "
            f"{'n/a' if today is None else fmt_margin(today) + ' vs ' + today.baseline} |"
        )
    return out


def paper_table(cells: pd.DataFrame, primary: str = "new") -> list[str]:
    lines = ["| scope | dataset | strongest baseline (ordinary ckpt) | SentryGate (its ckpt) | "
             "baseline | margin, points [95%] | margin, relative (% of the baseline's "
             "accuracy) | paper (points or %, unclear) | today: same-ckpt margin on the "
             "ordinary ckpt |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = [paper_protocol_rows(cells, scope, primary) for scope in ("overall", "dropout")]
    return lines + rows[0] + rows[1]


def ablation_table(cells: pd.DataFrame, full: pd.DataFrame, extra: Sequence[str]) -> list[str]:
    lines = ["| dataset | recipe | full model, all sensors | SentryGate, all cells | "
             "SentryGate, sparsity ≥ 0.5 | SentryGate − SentryGate on old ckpt (paired) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for ds, g in cells.groupby("dataset"):
        if g.recipe.nunique() <= 2:
            continue
        old = _per_seed(g[g.recipe == "old"], SG)
        for recipe in ("old", "new", *extra):
            r = g[g.recipe == recipe]
            if r.empty:
                continue
            f = full[(full.dataset == ds) & (full.recipe == recipe) & (full.condition == "all")]
            sg = _per_seed(r, SG)
            hi = _per_seed(r[r.sparsity >= 0.5 - 1e-9], SG)
            lines.append(
                f"| {ds} | {recipe} | {fmt(f.set_index('seed')['accuracy'])} | {fmt(sg)} | "
                f"{fmt(hi)} | {fmt((sg - old).dropna(), True)} |"
            )
    return lines


def method_table(cells: pd.DataFrame, primary: str = "new") -> list[str]:
    t = cells[cells.recipe.isin(["old", primary])].pivot_table(
        index=["dataset", "recipe", "method"], columns="sparsity", values="accuracy"
    )
    cols = [f"s={c:g}" for c in t.columns]
    lines = ["| dataset | recipe | method | " + " | ".join(cols) + " |",
             "|---|---|---|" + "---|" * len(cols)]  # fmt: skip
    for idx, row in t.iterrows():
        lines.append("| " + " | ".join(map(str, idx)) + " | "
                     + " | ".join(f"{v:.1f}" for v in row.tolist()) + " |")  # fmt: skip
    return lines


def write_summary(
    runs: Path,
    out: Path,
    primary: str = "new",
    seeds: set[int] | None = None,
    order: Sequence[str] = (),
) -> None:
    """``primary``: the recipe the full-model, paper-protocol and per-method tables put
    beside ``old``; ``seeds``: only these seeds (a confirmation on fresh seeds);
    ``order``: the recipes' table order (``prunable_training.RECIPES``)."""
    if not any(runs.glob("*.json")):
        return
    cells, full = load(runs)
    if seeds is not None:
        cells, full = cells[cells.seed.isin(seeds)], full[full.seed.isin(seeds)]
    extra = extra_recipes(cells, order)
    jobs = cells.groupby(["dataset", "recipe"])["seed"].nunique().reset_index()
    done = ", ".join(f"{r.dataset}/{r.recipe}: {r.seed}" for r in jobs.itertuples())
    lines = [
        "# Prunability-aware training: summary\n",
        f"Seeds finished per dataset/recipe: {done}. Accuracy in points; [lo, hi] = 95% "
        "interval (t over seeds, paired by seed; binomial when only 1 seed). Baselines: "
        f"{', '.join(BASELINES_ZERO_SHOT)} (reports/margins.py).\n",
        f"Recipe beside `old` in the full-model, paper-protocol and per-method tables: "
        f"`{primary}`" + ("" if seeds is None else f"; seeds {sorted(seeds)} only") + ".\n",
        f"## Full-model accuracy, old vs {primary}\n", *full_table(full, primary),
        "\n## Full-model accuracy of every recipe − the old one (paired by seed)\n",
        *recipe_full_table(full, extra),
        "\n## Same-checkpoint protocol (every method prunes the same checkpoint), "
        "sparsity ≥ 0.5, all conditions\n", *same_checkpoint_table(cells, extra),
        "\n## Paper protocol (SentryGate on its prunability-trained checkpoint, baselines on "
        "the ordinary one), all sparsities\n", *paper_table(cells, primary),
        "\n## Control (random ranking) and ablation (no distillation)\n",
        *ablation_table(cells, full, extra),
        "\n## Mean accuracy by method and sparsity (over conditions and seeds)\n",
        *method_table(cells, primary),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out)
