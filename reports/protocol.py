"""The paper's protocol, from two stores of one grid: SentryGate pruning its own
prunability-trained checkpoints against the baselines pruning ordinary ones.

A run prunes one checkpoint per dataset × backbone × attention × seed, so on its own it
gives the same-checkpoint comparison (every method prunes the same weights). Pruning
papers usually compare a method trained for pruning with baselines that prune an
ordinary model; a second store of the same grid trained with ``[train] subnet = false``
(``benchmarks/paper_grid_ordinary.toml`` is the paper grid's) gives that comparison, and
the price of the recipe: the unpruned model of the two checkpoints, side by side.

The two stores pair only if they measured the same thing: the same model size, training
length, batch and learning rate, and the same evaluation and calibration slices. Anything else is
refused in one line (``StoreError``), since a margin between differently trained or
evaluated models would say nothing about pruning.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reports.margins import CELL_KEYS, SENTRYGATE, paired_margin
from reports.tables import ok_static
from sentryfuse.errors import StoreError

# Settings that must agree between the two stores; only ``[train] subnet`` (and the
# knobs of the passes it switches off) may differ.
# (calib_samples: the calibration set the Taylor/Fisher baselines score on.)
MATCHED = (("train", "size"), ("train", "epochs"), ("train", "batch_size"), ("train", "lr"),
           ("eval", "max_train"), ("eval", "max_test"), ("eval", "calib_samples"))  # fmt: skip
FULL_MODEL_KEYS = ("dataset", "backbone", "attention", "condition")
WITHIN_POINTS = 0.5  # issue 10's bar for the full model's cost


def _settings(cells: pd.DataFrame) -> pd.DataFrame:
    """Per cell: ``subnet`` and the ``MATCHED`` settings, read from ``definition_json``."""

    def one(text: object) -> dict:
        try:
            s = json.loads(str(text)).get("settings", {})
        except ValueError:
            s = {}
        row = {f"{a}.{b}": json.dumps(s.get(a, {}).get(b)) for a, b in MATCHED}
        row["subnet"] = bool(s.get("train", {}).get("subnet", True))
        return row

    if cells.empty:
        return pd.DataFrame(columns=["subnet", *(f"{a}.{b}" for a, b in MATCHED)])
    return pd.DataFrame([one(t) for t in cells["definition_json"]], index=cells.index)


def paper_protocol_cells(
    cells: pd.DataFrame, ordinary: pd.DataFrame, where: str | Path
) -> pd.DataFrame:
    """SentryGate's finished static cells from ``cells`` with every other method's from
    ``ordinary`` (the store at ``where``), checked pairable; ``accuracy_pct`` added."""
    ours, theirs = ok_static(cells), ok_static(ordinary)
    if theirs.empty:
        raise StoreError(f"--ordinary {where} has no finished cells; run the grid into it first")
    s_theirs = _settings(theirs)
    if s_theirs["subnet"].any():
        raise StoreError(
            f"--ordinary {where} holds prunability-trained checkpoints ([train] subnet = true); "
            "run the same grid with [train] subnet = false into it"
        )
    sg = ours[ours["method"] == SENTRYGATE]
    if sg.empty:
        raise StoreError("this run has no finished SentryGate cells to compare (--ordinary)")
    s_ours = _settings(sg)
    if not s_ours["subnet"].any():
        raise StoreError(
            "this run's checkpoints are ordinary ([train] subnet = false), so there is no "
            "paper protocol to show; pass the prunability-trained run first and this one as "
            "--ordinary"
        )
    for a, b in MATCHED:
        here, there = set(s_ours[f"{a}.{b}"]), set(s_theirs[f"{a}.{b}"])
        if here != there:
            raise StoreError(
                f"--ordinary {where} was not run with the same [{a}] {b} "
                f"({', '.join(sorted(here))} here, {', '.join(sorted(there))} there); "
                "run the same grid with only [train] subnet changed"
            )
    baselines = theirs[theirs["method"] != SENTRYGATE]
    keys = [*CELL_KEYS, "seed"]
    if sg[keys].merge(baselines[keys].drop_duplicates()).empty:
        raise StoreError(
            f"--ordinary {where} has no cell and seed in common with this run's SentryGate "
            "cells; run the same grid into it"
        )
    return pd.concat([sg, baselines], ignore_index=True)


def full_model_table(cells: pd.DataFrame, ordinary: pd.DataFrame) -> pd.DataFrame:
    """The unpruned model of the prunability-trained checkpoints minus the ordinary
    ones', per dataset and condition, paired by backbone, attention and seed (t over
    seeds): what the sub-network passes cost the full model."""
    both = pd.concat(
        [
            ok_static(cells).query("method == 'dense'").assign(method="prunable"),
            ok_static(ordinary).query("method == 'dense'").assign(method="ordinary"),
        ],
        ignore_index=True,
    )
    rows = []
    if both.empty:
        return pd.DataFrame(rows)
    for (dataset, condition), sub in both.groupby(["dataset", "condition"]):
        m = paired_margin(sub, "ordinary", subject="prunable", keys=FULL_MODEL_KEYS)
        if m is None:
            continue
        means = sub.groupby("method")["accuracy_pct"].mean()
        rows.append(
            {
                "dataset": dataset,
                "condition": condition,
                "prunable_trained_pct": round(float(means["prunable"]), 2),
                "ordinary_pct": round(float(means["ordinary"]), 2),
                "difference_points": round(m.points, 2),
                "ci_lo_points": None if m.lo is None else round(m.lo, 2),
                "ci_hi_points": None if m.hi is None else round(m.hi, 2),
                "basis": m.basis,
                f"within_{WITHIN_POINTS:g}": bool(m.points >= -WITHIN_POINTS),
            }
        )
    return pd.DataFrame(rows)


__all__ = ["full_model_table", "paper_protocol_cells", "WITHIN_POINTS"]
