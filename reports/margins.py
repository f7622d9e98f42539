"""SentryGate's accuracy margin over a baseline, paired over training seeds, with its interval.

The one definition the report, the claims table and the benchmark scripts share:

1. the figure is accuracy in points, averaged per (cell, seed) over whatever does not
   change accuracy (targets, runtimes, power modes);
2. a **cell** is a ``keys`` group (dataset × backbone × attention × sparsity × condition by
   default); SentryGate and the baseline are compared only on cells and seeds they both
   have (paired);
3. the **strongest** zero-shot baseline is the one with the highest mean accuracy over its
   pairs with SentryGate;
4. the margin is the mean over seeds of each seed's mean SentryGate − baseline difference;
   its 95% interval is Student's t over seeds (seeds are the replicates: retraining with
   another seed moves a pruned cell by up to 13 points). With one seed there is nothing to
   replicate over, so the interval is the binomial one of the test-set counts (each cell's
   two accuracies as independent proportions, normal approximation), labelled "1 seed".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.intervals import t_interval

BASELINES_ZERO_SHOT = ("random", "magnitude", "taylor", "fisher", "taylor-calib")
SENTRYGATE = "sentrygate"
CELL_KEYS = ("dataset", "backbone", "attention", "sparsity", "condition")
Z975 = 1.959963984540054


@dataclass(frozen=True)
class Margin:
    """Mean subject − baseline accuracy (points) with its 95% interval (None: none)."""

    baseline: str
    points: float
    lo: float | None
    hi: float | None
    n_cells: int
    n_seeds: int
    basis: str

    def interval_text(self) -> str:
        return "no interval" if self.lo is None else f"[{self.lo:+.1f}, {self.hi:+.1f}]"

    def text(self) -> str:
        """e.g. '+3.2 points [+1.1, +5.3] vs fisher (12 cells, 3 seeds, paired t interval)'."""
        return (f"{self.points:+.1f} points {self.interval_text()} vs {self.baseline} "
                f"({self.n_cells} cell{'' if self.n_cells == 1 else 's'}, {self.basis})")  # fmt: skip


def _per_cell_seed(df: pd.DataFrame, value: str, keys: Sequence[str], seed: str | None,
                   n: str | None) -> tuple[pd.DataFrame, pd.Series | None]:  # fmt: skip
    """Wide table (cell keys + seed) × method of mean accuracy, and n per cell if known."""
    frame = df.assign(_seed=df[seed] if seed and seed in df else 0)
    idx = [*keys, "_seed"]
    wide = frame.groupby([*idx, "method"])[value].mean().unstack("method")
    counts = None
    if n and n in frame and frame[n].notna().any():
        counts = frame.groupby(idx)[n].median()
    return wide, counts


def paired_margin(df: pd.DataFrame, baseline: str, *, subject: str = SENTRYGATE,
                  value: str = "accuracy_pct", keys: Sequence[str] = CELL_KEYS,
                  seed: str | None = "seed", n: str | None = "n_eval") -> Margin | None:  # fmt: skip
    """``subject`` − ``baseline`` over the cells and seeds both have; None if none."""
    wide, counts = _per_cell_seed(df, value, keys, seed, n)
    return _margin(wide, counts, subject, baseline)


def _margin(wide: pd.DataFrame, counts: pd.Series | None, subject: str,
            baseline: str) -> Margin | None:  # fmt: skip
    if subject not in wide or baseline not in wide:
        return None
    pairs = wide[[subject, baseline]].dropna()
    if pairs.empty:
        return None
    diff = pairs[subject] - pairs[baseline]
    per_seed = diff.groupby(level="_seed").mean()
    n_cells = len(diff.droplevel("_seed").index.unique())
    point = float(per_seed.mean())
    if len(per_seed) >= 2:
        iv = t_interval(per_seed.to_numpy())
        return Margin(baseline, point, iv.lo, iv.hi, n_cells, len(per_seed),
                      f"{len(per_seed)} seeds, paired t interval")  # fmt: skip
    if counts is None:
        return Margin(baseline, point, None, None, n_cells, 1, "1 seed, no interval")
    n_per = counts.reindex(pairs.index).to_numpy(dtype=float)
    ps, pb = pairs[subject].to_numpy() / 100.0, pairs[baseline].to_numpy() / 100.0
    ok = np.isfinite(n_per) & (n_per > 0)
    if not ok.all():
        return Margin(baseline, point, None, None, n_cells, 1, "1 seed, no interval")
    var = float(np.sum((ps * (1 - ps) + pb * (1 - pb)) / n_per)) / len(ps) ** 2
    half = Z975 * math.sqrt(var) * 100.0
    return Margin(baseline, point, point - half, point + half, n_cells, 1,
                  "1 seed, binomial interval")  # fmt: skip


def margin_vs_strongest(df: pd.DataFrame, *, baselines: Sequence[str] = BASELINES_ZERO_SHOT,
                        subject: str = SENTRYGATE, value: str = "accuracy_pct",
                        keys: Sequence[str] = CELL_KEYS, seed: str | None = "seed",
                        n: str | None = "n_eval") -> Margin | None:  # fmt: skip
    """The margin over the baseline with the highest mean accuracy over its pairs."""
    wide, counts = _per_cell_seed(df, value, keys, seed, n)
    if subject not in wide:
        return None
    best, best_mean = None, -math.inf
    for b in baselines:
        if b in wide:
            pairs = wide[[subject, b]].dropna()
            if not pairs.empty and pairs[b].mean() > best_mean:
                best, best_mean = b, float(pairs[b].mean())
    return None if best is None else _margin(wide, counts, subject, best)


__all__ = ["BASELINES_ZERO_SHOT", "CELL_KEYS", "Margin", "margin_vs_strongest", "paired_margin"]
