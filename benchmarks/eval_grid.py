"""Evaluation grid: datasets × backbones × methods × sparsities × modality conditions.

For every cell the checkpoint is pruned (zero-shot, or pruned then fine-tuned for the
``ft:<method>`` baselines), and the pruned model's test accuracy under the condition,
parameters, GFLOPs per sample and CPU batch-1 latency are written as one CSV row. Rows
already in the CSV are skipped, so an interrupted run resumes. A Markdown summary with
the headline numbers (SentryGate's margin over the strongest zero-shot baseline overall
and under modality dropout, next to the paper's +12.7 / +18 points, and the gap to the
best fine-tuned baseline) is written from the CSV at the end (``--summary-only`` redoes
just that).

Conditions: all present, each single modality missing (the pruned model has no encoder
for it and sees only the rest), and random 30% per-sample dropout (seeded per-sample
mask, the same for every method; zero-shot methods prune once per present pattern and
each sample runs on its pattern's sub-network, ``sentryfuse.prune.routed``; latency and
size columns are the all-present variant's; fine-tuned baselines keep one model).

    python benchmarks/eval_grid.py --datasets hapt --backbones early,late,bottleneck \\
        --ckpt-dir runs/checkpoints --csv runs/grid/grid.csv --summary runs/grid/summary.md
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPARSITIES = (0.2, 0.3, 0.4, 0.5, 0.6)
ZERO_SHOT = ("random", "magnitude", "taylor", "fisher", "taylor-calib", "sentrygate")
FIELDS = [
    "dataset", "backbone", "attention", "method", "sparsity", "budget", "condition",
    "accuracy", "dense_accuracy", "params", "dense_params", "gflops", "dense_gflops",
    "latency_ms", "dense_latency_ms", "achieved_sparsity", "prune_ms", "finetune_s",
    "finetune_energy_mj", "calib_samples", "seed", "finetune_energy_source",
]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="hapt,avdigits,crowdsignals")
    p.add_argument("--backbones", default="early,late,bottleneck")
    p.add_argument("--attention", default="dense")
    p.add_argument("--methods", default=",".join(ZERO_SHOT) + ",ft:taylor,ft:fisher")
    p.add_argument("--sparsities", default=",".join(str(s) for s in SPARSITIES))
    p.add_argument("--conditions", default=None, help="comma list (default: the standard set)")
    p.add_argument("--budget", default="units", choices=("units", "flops"))
    p.add_argument("--ckpt-dir", type=Path, default=Path("runs/checkpoints"))
    p.add_argument("--csv", type=Path, default=Path("runs/grid/grid.csv"))
    p.add_argument("--summary", type=Path, default=Path("runs/grid/summary.md"))
    p.add_argument("--size", default="small")
    p.add_argument("--epochs", type=int, default=20, help="for checkpoints trained here")
    p.add_argument("--max-test", type=int, default=None, help="evaluate on N test samples")
    p.add_argument("--calib-samples", type=int, default=128)
    p.add_argument("--finetune-steps", type=int, default=100)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--latency-runs", type=int, default=30)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--summary-only", action="store_true")
    return p.parse_args(argv)


def checkpoint_for(args, dataset, backbone: str):
    """Reuse ``ckpt_dir/<dataset>-<backbone>-<attention>`` or train it there."""
    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.models import model_config_for
    from sentryfuse.train import TrainConfig, train

    path = args.ckpt_dir / f"{dataset.name}-{backbone}-{args.attention}"
    if not (path / "config.json").exists():
        print(f"[grid] training {path.name} ({args.epochs} epochs)", flush=True)
        cfg = model_config_for(dataset, backbone, args.attention, args.size)
        train(dataset, cfg, TrainConfig(epochs=args.epochs, seed=args.seed), path, progress=False)
    return load_checkpoint(path)


def feed_for(model, condition, split, n: int = 1):
    """Example inputs (first ``n`` test samples) for FLOPs/latency under ``condition``."""
    names = [m.name for m in model.config.modalities]
    have = list(model.config.present or names)
    static = condition.static_present(names)
    feed = [m for m in (static or have) if m in have]
    return {m: torch.from_numpy(np.ascontiguousarray(split.x[m][:n])) for m in feed}


@torch.no_grad()
def latency_ms(model, inputs, runs: int) -> float:
    """Median eager CPU latency at batch 1 (3 warm-up calls excluded)."""
    model.eval()
    for _ in range(3):
        model(inputs)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        model(inputs)
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times))


def calib_split(dataset, n: int, seed: int):
    idx = np.random.default_rng(seed).choice(
        len(dataset.train), min(n, len(dataset.train)), replace=False
    )
    return dataset.train.take(np.sort(idx))


def done_keys(path: Path) -> set[tuple]:
    if not path.exists():
        return set()
    with path.open() as f:
        return {_key(r) for r in csv.DictReader(f)}


def _key(r) -> tuple:
    return (r["dataset"], r["backbone"], r["attention"], r["method"], f"{float(r['sparsity']):g}",
            r["budget"], r["condition"])  # fmt: skip


def run_cell(args, ckpt, dataset, method, sparsity, cond, calib, dense, cache) -> dict:
    from sentryfuse.evaluate import evaluate_accuracy
    from sentryfuse.finetune import finetune
    from sentryfuse.models import count_gflops, count_params
    from sentryfuse.prune import prune

    names = list(dataset.modality_names)
    present = cond.static_present(names)
    present = None if present is None or len(present) == len(names) else list(present)
    base = method.removeprefix("ft:")
    variant = prune(
        ckpt, base, sparsity, present=present, calib=calib, budget=args.budget, seed=args.seed,
        cache=cache,
    )  # fmt: skip
    model, ft_s, ft_mj, ft_src = variant.model, None, None, None
    if method.startswith("ft:"):
        from targets.cpu_energy import cpu_energy_sensor  # the meter the harness uses on CPU

        res = finetune(
            model, dataset.train, cond, steps=args.finetune_steps, lr=args.finetune_lr,
            seed=args.seed, meter=cpu_energy_sensor().window,
        )  # fmt: skip
        model, ft_s, ft_mj, ft_src = (
            res.model,
            round(res.wall_s, 3),
            res.energy_mj,
            res.energy_source,
        )
    test = dataset.test
    x1 = feed_for(model, cond, test)
    if cond.static_present(names) is None and not method.startswith("ft:"):
        # per-sample dropout: every sample on the sub-network pruned for its own pattern
        from sentryfuse.prune.routed import routed_accuracy

        def variant_for(pattern):
            pattern = None if len(pattern) == len(names) else list(pattern)
            return prune(
                ckpt, base, sparsity, present=pattern, calib=calib, budget=args.budget,
                seed=args.seed, cache=cache,
            ).model  # fmt: skip

        acc = routed_accuracy(variant_for, test, cond, names, seed=args.seed)[0]
    else:
        acc = evaluate_accuracy(model, test, cond, seed=args.seed)
    return {
        "accuracy": round(acc, 5),
        "params": count_params(model),
        "gflops": round(count_gflops(model, x1), 6),
        "latency_ms": round(latency_ms(model, x1, args.latency_runs), 4),
        "achieved_sparsity": round(variant.achieved_sparsity, 4),
        "prune_ms": round(variant.prune_ms, 2),
        "finetune_s": ft_s,
        "finetune_energy_mj": None if ft_mj is None else round(ft_mj, 1),
        "finetune_energy_source": ft_src,
        "calib_samples": 0 if calib is None else len(calib),
        **dense,
    }


def dense_stats(args, ckpt, dataset, cond) -> dict:
    from sentryfuse.evaluate import evaluate_accuracy
    from sentryfuse.models import count_gflops, count_params
    from sentryfuse.models.prune import prune_model

    names = list(dataset.modality_names)
    present = cond.static_present(names)
    model = ckpt.model if present is None else prune_model(ckpt.model, {}, present)
    x1 = feed_for(model, cond, dataset.test)
    return {
        "dense_accuracy": round(evaluate_accuracy(model, dataset.test, cond, seed=args.seed), 5),
        "dense_params": count_params(model),
        "dense_gflops": round(count_gflops(model, x1), 6),
        "dense_latency_ms": round(latency_ms(model, x1, args.latency_runs), 4),
    }


def main(argv: list[str] | None = None) -> int:
    from sentryfuse.conditions import parse_condition, standard_conditions
    from sentryfuse.data import load_dataset
    from sentryfuse.prune.api import DATA_METHODS

    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.summary_only:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        done = done_keys(args.csv)
        new_file = not args.csv.exists()
        fields = FIELDS
        if not new_file:  # resume with the file's own columns (older runs may lack some)
            with args.csv.open() as f:
                fields = next(csv.reader(f), FIELDS)
        with args.csv.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            for ds_name in args.datasets.split(","):
                dataset = load_dataset(ds_name, max_test=args.max_test, seed=args.seed)
                names = list(dataset.modality_names)
                conds = (
                    [parse_condition(c, names) for c in args.conditions.split(",")]
                    if args.conditions else standard_conditions(names)
                )  # fmt: skip
                for backbone in args.backbones.split(","):
                    ckpt = checkpoint_for(args, dataset, backbone)
                    for cond in conds:
                        dense, cache = None, {}  # scores/gradients shared across sparsities
                        calib_all = calib_split(dataset, args.calib_samples, args.seed)
                        for method in args.methods.split(","):
                            calib = (
                                calib_all if method.removeprefix("ft:") in DATA_METHODS else None
                            )
                            for s in (float(v) for v in args.sparsities.split(",")):
                                row = {"dataset": ds_name, "backbone": backbone,
                                       "attention": args.attention, "method": method,
                                       "sparsity": s, "budget": args.budget,
                                       "condition": cond.label, "seed": args.seed}  # fmt: skip
                                if _key({k: str(v) for k, v in row.items()}) in done:
                                    continue
                                dense = dense or dense_stats(args, ckpt, dataset, cond)
                                t = time.perf_counter()
                                row.update(
                                    run_cell(
                                        args, ckpt, dataset, method, s, cond, calib, dense, cache
                                    )
                                )
                                writer.writerow(row)
                                f.flush()
                                print(f"[grid] {ds_name} {backbone} {cond.label} {method} {s:g}: "
                                      f"acc {row['accuracy']:.4f} (dense {row['dense_accuracy']:.4f}) "
                                      f"{time.perf_counter() - t:.1f}s", flush=True)  # fmt: skip
    write_summary(args.csv, args.summary)
    print(f"[grid] summary: {args.summary}")
    return 0


# --- summary -------------------------------------------------------------------------

BASELINES = ("random", "magnitude", "taylor", "fisher")  # zero-shot pruning baselines
CELL = ["dataset", "backbone", "attention", "budget", "sparsity", "condition"]
PAPER = {"overall": 12.7, "dropout": 18.0}


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:+.1f}"


def headline(df) -> dict:
    """SentryGate's margins (accuracy points as fractions) over the baselines, by scope.

    The margin over the strongest baseline is ``reports.margins.margin_vs_strongest`` (the
    one definition the report and the claims table use), with its interval over seeds."""
    from reports.margins import margin_vs_strongest

    wide = df.pivot_table(index=CELL, columns="method", values="accuracy", aggfunc="mean")
    if "sentrygate" not in wide:
        return {}
    base = [m for m in BASELINES if m in wide]
    if not base:
        return {}
    ft = [m for m in wide.columns if str(m).startswith("ft:")]
    cond = wide.index.get_level_values("condition")
    points = df.assign(accuracy_pct=df["accuracy"] * 100)
    out = {}
    for scope, sel, rows in (("overall", cond == cond, points),
                             ("all present", cond == "all", points[points.condition == "all"]),
                             ("dropout", cond != "all", points[points.condition != "all"])):  # fmt: skip
        w = wide[sel].dropna(subset=["sentrygate", *base])
        m = margin_vs_strongest(rows, baselines=base, keys=CELL, seed="seed", n=None)
        if w.empty or m is None:
            continue
        sg = w["sentrygate"]
        r = {
            "cells": len(w),
            "sentrygate": sg.mean(),
            "strongest_baseline": m.baseline,
            "margin_vs_strongest": m.points / 100,
            "margin_interval": m.interval_text() + f" ({m.basis})",
            "margin_vs_cell_best": (sg - w[base].max(axis=1)).mean(),
            "win_rate_vs_cell_best": float((sg >= w[base].max(axis=1)).mean()),
        }
        if "taylor-calib" in w:
            r["margin_vs_taylor_calib"] = (sg - w["taylor-calib"]).mean()
        if ft:
            wf = w.dropna(subset=ft)
            if not wf.empty:
                best_ft = wf[ft].mean().idxmax()
                r["best_finetuned"] = best_ft
                r["gap_to_best_finetuned"] = (wf[best_ft] - wf["sentrygate"]).mean()
        out[scope] = r
    return out


def write_summary(csv_path: Path, md_path: Path) -> None:
    import pandas as pd

    df = pd.read_csv(csv_path)
    if df.empty:
        return
    lines = ["# Evaluation grid summary\n", f"Source: `{csv_path}` ({len(df)} rows; "
             f"datasets {sorted(df.dataset.unique())}, backbones {sorted(df.backbone.unique())}, "
             f"budget {sorted(df.budget.unique())}).\n"]  # fmt: skip
    lines.append("## Headline (accuracy points, SentryGate minus baseline; mean over cells)\n")
    lines.append("| scope | cells | SentryGate acc | strongest baseline | margin | 95% interval | "
                 "paper | margin vs per-cell best | win rate | vs taylor-calib | best fine-tuned | "
                 "fine-tuned minus SentryGate |")  # fmt: skip
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scope, r in headline(df).items():
        paper = PAPER.get(scope)
        lines.append(
            f"| {scope} | {r['cells']} | {100 * r['sentrygate']:.1f} | {r['strongest_baseline']} | "
            f"{_pct(r['margin_vs_strongest'])} | {r['margin_interval']} | "
            f"{'' if paper is None else f'+{paper}'} | "
            f"{_pct(r['margin_vs_cell_best'])} | {100 * r['win_rate_vs_cell_best']:.0f}% | "
            f"{_pct(r.get('margin_vs_taylor_calib', float('nan')))} | {r.get('best_finetuned', '')} | "
            f"{_pct(r.get('gap_to_best_finetuned', float('nan')))} |"
        )
    lines.append("\n## Mean accuracy (%) by method and sparsity (all conditions)\n")
    lines += _table(df.pivot_table(index="method", columns="sparsity", values="accuracy") * 100)
    df["group"] = df.condition.map(
        lambda c: c if c in ("all",) or c.startswith("random") else "drop one"
    )
    lines.append("\n## Mean accuracy (%) by method and condition\n")
    lines += _table(df.pivot_table(index="method", columns="group", values="accuracy") * 100)
    lines.append("\n## Mean accuracy (%) by dataset/backbone and method\n")
    lines += _table(
        df.pivot_table(index=["dataset", "backbone"], columns="method", values="accuracy") * 100
    )
    df["params_ratio"] = df.params / df.dense_params
    df["gflops_ratio"] = df.gflops / df.dense_gflops
    df["speedup"] = df.dense_latency_ms / df.latency_ms
    lines.append("\n## Size and speed relative to the dense model (mean; CPU eager batch 1)\n")
    eff = df.groupby("sparsity")[["params_ratio", "gflops_ratio", "speedup"]].mean()
    lines += _table(eff, fmt="{:.3f}")
    lines.append("\n## Absolute means by dataset/backbone/sparsity (params, GFLOPs, latency)\n")
    absn = df.groupby(["dataset", "backbone", "sparsity"])[
        ["params", "gflops", "latency_ms"]
    ].mean()
    lines += _table(absn, fmt="{:.4g}")
    lines.append("\n## Pruning time by method (median ms per variant; cached scores reused)\n")
    lines += _table(df.groupby("method")[["prune_ms"]].median(), fmt="{:.1f}")
    ft = df[df.method.str.startswith("ft:")]
    if not ft.empty:
        lines.append("\n## Fine-tuning cost (mean per variant: wall s, energy mJ)\n")
        cost = ft.groupby("method")[["finetune_s", "finetune_energy_mj"]].mean()
        lines += _table(cost, fmt="{:.2f}")
        lines.append("\nEnergy: CPU meter of the harness (RAPL where readable, else a CPU-time "
                     "estimate labelled estimated); blank where a run had no meter.")  # fmt: skip
    wide = df.pivot_table(index=CELL, columns="method", values="accuracy")
    base = [m for m in BASELINES if m in wide]
    if "sentrygate" in wide and base:
        loss = (wide["sentrygate"] - wide[base].max(axis=1)).sort_values().head(8)
        lines.append("\n## Where SentryGate loses most (vs per-cell best zero-shot baseline)\n")
        lines.append("| cell | SentryGate minus best (points) |\n|---|---|")
        for idx, v in loss.items():
            lines.append(f"| {' / '.join(str(x) for x in idx)} | {100 * v:+.1f} |")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines) + "\n")


def _table(frame, fmt: str = "{:.1f}") -> list[str]:
    frame = frame.reset_index()
    cols = [str(c) for c in frame.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        cells = [fmt.format(v) if isinstance(v, float) else str(v) for v in row.tolist()]
        out.append("| " + " | ".join(cells) + " |")
    return out


if __name__ == "__main__":
    sys.exit(main())
