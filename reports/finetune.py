"""SentryGate (zero-shot) against fine-tuning baselines: accuracy gap and energy break-even.

The question a deployer asks is not only "who is more accurate" but "what does the
fine-tuning cost buy": fine-tuning energy is spent once per (pruning level × sensor set),
while SentryGate re-prunes in milliseconds. The break-even is the number of inferences
whose energy equals the fine-tuning energy — below that count, fine-tuning has spent more
energy than the whole deployment.
"""

from __future__ import annotations

import pandas as pd

from reports.tables import SENTRYGATE, is_finetuned, ok_static

MATCH = ["dataset", "backbone", "attention", "sparsity", "condition"]
DEPLOY_MATCH = MATCH + ["target", "runtime", "power_mode"]


def accuracy_gap(cells: pd.DataFrame) -> pd.DataFrame:
    """Per pruning level × condition × fine-tuned method: mean SentryGate accuracy minus
    the fine-tuned baseline's, in points (positive: zero-shot SentryGate is better)."""
    df = ok_static(cells)
    df = df[df["accuracy_pct"].notna()]
    sg = df[df["method"] == SENTRYGATE].groupby(MATCH, as_index=False)["accuracy_pct"].mean()
    ft = (
        df[is_finetuned(df["method"])]
        .groupby(MATCH + ["method"], as_index=False)["accuracy_pct"]
        .mean()
    )
    merged = ft.merge(sg, on=MATCH, suffixes=("_ft", "_sentrygate"))
    if merged.empty:
        return pd.DataFrame(
            columns=[
                "sparsity",
                "condition",
                "ft_method",
                "sentrygate_accuracy_pct",
                "ft_accuracy_pct",
                "gap_points",
                "n_pairs",
            ]  # fmt: skip
        )
    merged["gap_points"] = merged["accuracy_pct_sentrygate"] - merged["accuracy_pct_ft"]
    return (
        merged.groupby(["sparsity", "condition", "method"], as_index=False)
        .agg(
            sentrygate_accuracy_pct=("accuracy_pct_sentrygate", "mean"),
            ft_accuracy_pct=("accuracy_pct_ft", "mean"),
            gap_points=("gap_points", "mean"),
            n_pairs=("gap_points", "count"),
        )
        .rename(columns={"method": "ft_method"})
        .sort_values(["sparsity", "condition", "ft_method"])
        .reset_index(drop=True)
    )


def energy_break_even(cells: pd.DataFrame) -> pd.DataFrame:
    """Fine-tuning energy beside energy per inference and the break-even count.

    Energy per inference is SentryGate's at the same deployment (same dataset, backbone,
    sparsity, condition, target, runtime, power mode) when the run has it, else the
    fine-tuned model's own; the table says which, and each energy's source and sensor.
    """
    df = ok_static(cells)
    ft = df[is_finetuned(df["method"]) & df["finetune_energy_mj"].notna()]
    cols = ["dataset", "backbone", "attention", "sparsity", "condition", "target", "runtime",
            "power_mode", "ft_method", "finetune_wall_s", "finetune_energy_mj",
            "finetune_energy_source", "finetune_energy_sensor", "energy_per_inference_of", "energy_mj_per_inference",
            "energy_source", "energy_sensor", "break_even_inferences"]  # fmt: skip
    if ft.empty:
        return pd.DataFrame(columns=cols)
    sg = (
        df[df["method"] == SENTRYGATE]
        .dropna(subset=["energy_mj_per_inference"])
        .groupby(DEPLOY_MATCH, as_index=False)
        .agg(
            sg_energy=("energy_mj_per_inference", "median"),
            sg_source=("energy_source", "first"),
            sg_sensor=("energy_sensor", "first"),
        )
    )
    out = ft.merge(sg, on=DEPLOY_MATCH, how="left").rename(columns={"method": "ft_method"})
    # The schema has no fine-tuning sensor column; the harness meters fine-tuning with the
    # same sensor as the cell's inference, so that sensor is the fine-tuning's too.
    out["finetune_energy_sensor"] = out["energy_sensor"]
    use_sg = out["sg_energy"].notna()
    out["energy_per_inference_of"] = use_sg.map({True: SENTRYGATE, False: "fine-tuned model"})
    out.loc[use_sg, "energy_mj_per_inference"] = out.loc[use_sg, "sg_energy"]
    out.loc[use_sg, "energy_source"] = out.loc[use_sg, "sg_source"]
    out.loc[use_sg, "energy_sensor"] = out.loc[use_sg, "sg_sensor"]
    per_inf = out["energy_mj_per_inference"].where(out["energy_mj_per_inference"] > 0)
    out["break_even_inferences"] = (out["finetune_energy_mj"] / per_inf).round()
    return out[cols].sort_values(cols[:9]).reset_index(drop=True)
