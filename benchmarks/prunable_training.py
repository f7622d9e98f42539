"""Prunability-aware training vs the old recipe, under both comparison protocols.

For every (dataset, seed, recipe) a checkpoint is trained and every zero-shot method
prunes it at each sparsity under each modality condition (per-sample dropout routed per
present pattern, ``sentryfuse.prune.routed``). Recipes:

- ``old``: the pre-prunability recipe (``subnet=False``);
- ``new``: the first prunability-aware default (scorer-ranked sub-network passes,
  sandwich, distillation), the scorer learning to the end (``subnet_freeze_epochs=0``);
- ``freeze4`` (at 5 epochs; ``default`` at any): the third to seventh builds' default,
  the ranking frozen where the passes start (epoch 1 of 5), so every pass trains a
  sub-network SentryGate deploys, the passes' gradient summed into the full pass's;
- ``sep05`` (``f4sep05`` at 5 epochs): today's default, the same with the passes'
  gradient as its own AdamW update at half the schedule's rate (``subnet_grad =
  "separate"``); ``f4sep`` at the full rate; ``f4pc``, ``f4pct``: PCGrad projections;
- ``f4w05``, ``f4w025``: freeze4 with the passes' losses weighted 0.5 / 0.25 (the
  ``subnet_weight`` trade-off: more of the full model's accuracy, less pruned gain);
- ``f4s2``: freeze4 with two sampled budgets per step (more passes at mild sparsity;
  it did not help: BENCHMARKS.md, fourth session);
- ``f4wu0``, ``f4wu05``, ``f3wu1``: freeze4 / freeze4 / freeze3 with the dropout
  curriculum's warm-up at 0 / 0.5 / 1 epoch (a test of why SentryGate loses with a sensor
  missing at mild sparsity);
- ``f4pl1``, ``f4pl2``: freeze4 with the warm-up kept and the missing-sensor rankings
  frozen 1 / 2 epochs after the curriculum starts dropping sensors (only the all-present
  ranking freezes at epoch 1; ``subnet_pattern_lag_epochs``);
- ``f4wd025``, ``f4wd0``: freeze4 with the pass weight falling linearly from 1 where the
  passes start to 0.25 / 0 at the end (``subnet_weight_end``);
- ``random``: the same passes with a random unit ranking (structured-dropout control);
- ``nodistill``: the scorer-ranked passes with cross-entropy only (ablation).

One JSON per job under ``--runs`` (written atomically) makes an interrupted run resume;
``--summary-only`` rebuilds the Markdown from those files. The summary reports, with the
mean and a 95% t-interval over seeds (paired by seed):

1. full-model accuracy, new − old, per dataset and condition;
2. **same-checkpoint protocol**: every method prunes the ``new`` checkpoint; SentryGate −
   the strongest zero-shot baseline at sparsity ≥ 0.5;
3. **paper protocol**: SentryGate on the ``new`` checkpoint vs the baselines on the
   ``old`` one (how pruning papers usually compare), over all cells and over the dropout
   cells, in points and relative to the baseline's accuracy, beside the paper's figures;
4. the control and the ablation (SentryGate on each recipe's checkpoint).

    nice -n 5 python benchmarks/prunable_training.py --runs /work/wt/i10-train-runs/pt \\
        --summary benchmarks/results_prunable_training.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.prunable_summary import write_summary  # noqa: E402

METHODS = ("random", "magnitude", "taylor", "fisher", "taylor-calib", "sentrygate")
# Every recipe names its freeze and its pass weight, so a JSON written by an earlier build
# (whose default was subnet_freeze_epochs = 0) means the same recipe today, and would if a
# default moved again.
RECIPES = {
    "old": {"subnet": False},
    # the first default: the ranking keeps learning, passes at full weight
    "new": {"subnet_freeze_epochs": 0.0, "subnet_weight": 1.0},
    # the default of the third to seventh builds (tables before the eighth session call it
    # "default"; pinned, so their JSONs keep their meaning); today's default is sep05
    "default": {"subnet_freeze_epochs": None, "subnet_weight": 1.0, "subnet_grad": "sum"},
    "random": {"subnet_ranking": "random", "subnet_freeze_epochs": 0.0, "subnet_weight": 1.0},
    "nodistill": {"distill": False, "subnet_freeze_epochs": 0.0, "subnet_weight": 1.0},
    "freeze1": {"subnet_freeze_epochs": 1.0, "subnet_weight": 1.0},
    "freeze2": {"subnet_freeze_epochs": 2.0, "subnet_weight": 1.0},
    "w05": {"subnet_weight": 0.5, "subnet_freeze_epochs": 0.0},
    "smax05": {"subnet_sparsity_max": 0.5, "subnet_freeze_epochs": 0.0, "subnet_weight": 1.0},
    "freeze3": {"subnet_freeze_epochs": 3.0, "subnet_weight": 1.0},
    "freeze4": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0},
    "f2every1": {"subnet_freeze_epochs": 2.0, "subnet_every": 1, "subnet_weight": 1.0},
    "f3w05": {"subnet_freeze_epochs": 3.0, "subnet_weight": 0.5},
    "kd1": {"distill_weight": 1.0, "subnet_freeze_epochs": 0.0, "subnet_weight": 1.0},
    "f2kd1": {"subnet_freeze_epochs": 2.0, "distill_weight": 1.0, "subnet_weight": 1.0},
    "f4w05": {"subnet_freeze_epochs": 4.0, "subnet_weight": 0.5},
    "f4w025": {"subnet_freeze_epochs": 4.0, "subnet_weight": 0.25},
    "f4w05s05": {"subnet_freeze_epochs": 4.0, "subnet_weight": 0.5, "subnet_sparsity_max": 0.5},
    "random4": {"subnet_ranking": "random", "subnet_freeze_epochs": 4.0, "subnet_weight": 1.0},
    "nodistill4": {"distill": False, "subnet_freeze_epochs": 4.0, "subnet_weight": 1.0},
    # freeze4 with two sampled budgets in the sandwich (more passes at mild sparsity)
    "f4s2": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "subnet_sampled": 2},
    # freeze4 with the dropout curriculum ramping from epoch 0 (no warm-up), so the backbone
    # has run without each sensor before the ranking freezes (a test of why -gyro at 0.3
    # loses); the full model's curriculum changes too, so compare it with care
    "f4wu0": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "warmup_epochs": 0.0},
    # a middle: one warm-up epoch, the ranking frozen at epoch 2 (sensors dropped since 1)
    "f3wu1": {"subnet_freeze_epochs": 3.0, "subnet_weight": 1.0, "warmup_epochs": 1.0},
    # half a warm-up epoch: sensors start dropping before the freeze at epoch 1
    "f4wu05": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "warmup_epochs": 0.5},
    # freeze4 with the warm-up kept, but only the all-present ranking frozen at epoch 1:
    # the missing-sensor rankings learn on until the curriculum has dropped sensors for
    # 1 / 2 epochs (frozen at epoch 3 / 4 of 5 with the 2-epoch warm-up); until then their
    # sub-networks train with the live ranking ("live") or not at all ("g": gated, so
    # every pass trains a deployed sub-network)
    "f4pl1": {
        "subnet_freeze_epochs": 4.0,
        "subnet_weight": 1.0,
        "subnet_pattern_lag_epochs": 1.0,
        "subnet_pattern_passes": "live",
    },
    "f4pl2": {
        "subnet_freeze_epochs": 4.0,
        "subnet_weight": 1.0,
        "subnet_pattern_lag_epochs": 2.0,
        "subnet_pattern_passes": "live",
    },
    "f4pl1g": {
        "subnet_freeze_epochs": 4.0,
        "subnet_weight": 1.0,
        "subnet_pattern_lag_epochs": 1.0,
        "subnet_pattern_passes": "frozen",
    },
    "f4pl2g": {
        "subnet_freeze_epochs": 4.0,
        "subnet_weight": 1.0,
        "subnet_pattern_lag_epochs": 2.0,
        "subnet_pattern_passes": "frozen",
    },
    # freeze4 with the pass weight falling linearly from 1 at epoch 1 to 0.25 / 0 at the
    # end (full-weight passes early, the full model's own loss late: the full-model cost)
    "f4wd025": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "subnet_weight_end": 0.25},
    "f4wd0": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "subnet_weight_end": 0.0},
    # Seventh build: the passes' gradient projected off the full pass's where they conflict
    "f4pc": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "subnet_grad": "project"},
    "f4pct": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "subnet_grad": "project_tensor"},
    # Eighth build: the passes' gradient as a second update with its own Adam moments and
    # clip (the full model's own step as in the old recipe), at 1x / 0.5x the schedule's rate
    "f4sep": {"subnet_freeze_epochs": 4.0, "subnet_weight": 1.0, "subnet_grad": "separate"},
    "f4sep05": {"subnet_freeze_epochs": 4.0, "subnet_weight": 0.5, "subnet_grad": "separate"},
    # the same with the ranking frozen where the passes start at any length (at 5 epochs,
    # f4sep05 bit for bit; at 10, f4sep05 would freeze at epoch 6)
    "sep05": {"subnet_freeze_epochs": None, "subnet_weight": 0.5, "subnet_grad": "separate"},
    # Ninth session: is the 5-epoch full-model cost left under sep05 the second update's
    # size? Half its rate throughout, or its rate falling linearly from 0.5 to 0 at the end
    "sep025": {"subnet_freeze_epochs": None, "subnet_weight": 0.25, "subnet_grad": "separate"},
    "sep05e0": {
        "subnet_freeze_epochs": None,
        "subnet_weight": 0.5,
        "subnet_weight_end": 0.0,
        "subnet_grad": "separate",
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="hapt,avdigits,crowdsignals")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--recipes", default="old,default")
    p.add_argument("--ablation-datasets", default="hapt", help="also run random,nodistill")
    p.add_argument("--backbone", default="early")
    p.add_argument("--attention", default="dense")
    p.add_argument("--size", default="tiny")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--max-train", type=int, default=3000)
    p.add_argument("--max-test", type=int, default=1000)
    p.add_argument("--calib-samples", type=int, default=128)
    p.add_argument("--sparsities", default="0.3,0.5,0.7")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=Path, default=Path("runs/prunable"))
    p.add_argument("--summary", type=Path, default=Path("runs/prunable/summary.md"))
    p.add_argument("--summary-only", action="store_true")
    p.add_argument("--primary", default="new", help="recipe set beside old in the summary")
    p.add_argument("--summary-seeds", default=None, help="summarise only these seeds (a,b,c)")
    return p.parse_args(argv)


def summarise(args) -> None:
    seeds = None if args.summary_seeds is None else {int(x) for x in args.summary_seeds.split(",")}
    write_summary(args.runs, args.summary, args.primary, seeds, order=list(RECIPES))


def jobs(args) -> list[tuple[str, int, str]]:
    """Seed-major, so every dataset gets its first seed before any gets its third."""
    datasets, seeds = args.datasets.split(","), [int(s) for s in args.seeds.split(",")]
    ablate = set(args.ablation_datasets.split(",")) if args.ablation_datasets else set()
    out = []
    for seed in seeds:
        for ds in datasets:
            out += [(ds, seed, r) for r in args.recipes.split(",")]
    for seed in seeds:
        for ds in datasets:
            if ds in ablate:
                out += [(ds, seed, r) for r in ("random", "nodistill")]
    return out


def train_checkpoint(args, dataset, seed: int, recipe: str) -> Path:
    from sentryfuse.models import model_config_for
    from sentryfuse.train import TrainConfig, train

    path = args.runs / "ckpt" / f"{dataset.name}-{recipe}-s{seed}"
    if not (path / "config.json").exists():
        cfg = TrainConfig(epochs=args.epochs, seed=seed, threads=args.threads, **RECIPES[recipe])
        model_cfg = model_config_for(dataset, args.backbone, args.attention, args.size)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        train(dataset, model_cfg, cfg, tmp, progress=False)
        os.replace(tmp, path)
    return path


def evaluate_checkpoint(args, dataset, path: Path, seed: int) -> list[dict]:
    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.conditions import standard_conditions
    from sentryfuse.evaluate import evaluate_accuracy
    from sentryfuse.prune import prune
    from sentryfuse.prune.api import DATA_METHODS
    from sentryfuse.prune.routed import routed_accuracy

    ckpt = load_checkpoint(path)
    names = list(dataset.modality_names)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(dataset.train), min(args.calib_samples, len(dataset.train)), False)
    calib_all = dataset.train.take(np.sort(idx))
    cache: dict = {}  # per present set: scores do not depend on the sparsity
    rows = []
    for method in args.methods.split(","):
        calib = calib_all if method in DATA_METHODS else None
        for s in (float(v) for v in args.sparsities.split(",")):
            for cond in standard_conditions(names):

                def variant(present, method=method, s=s, calib=calib):
                    present = None if len(present) == len(names) else list(present)
                    return prune(
                        ckpt, method, s, present=present, calib=calib, seed=seed, cache=cache
                    )

                static = cond.static_present(names)
                if static is None:
                    acc, k = routed_accuracy(
                        lambda p, v=variant: v(p).model, dataset.test, cond, names, seed=seed
                    )
                    achieved = None
                else:
                    v = variant(static)
                    acc, k = evaluate_accuracy(v.model, dataset.test, cond, seed=seed), 1
                    achieved = round(v.achieved_sparsity, 4)
                rows.append(
                    {"method": method, "sparsity": s, "condition": cond.label,
                     "accuracy": round(acc, 5), "achieved_sparsity": achieved, "patterns": k}
                )  # fmt: skip
    return rows


def run_job(args, ds_name: str, seed: int, recipe: str) -> Path:
    from sentryfuse.data import load_dataset

    out = args.runs / f"{ds_name}-{recipe}-s{seed}.json"
    if out.exists():
        return out
    dataset = load_dataset(ds_name, max_train=args.max_train, max_test=args.max_test, seed=seed)
    t0 = time.perf_counter()
    path = train_checkpoint(args, dataset, seed, recipe)
    train_s = time.perf_counter() - t0
    metrics = json.loads((path / "metrics.json").read_text())
    t1 = time.perf_counter()
    cells = evaluate_checkpoint(args, dataset, path, seed)
    record = {
        "dataset": ds_name, "seed": seed, "recipe": recipe, "backbone": args.backbone,
        "attention": args.attention, "size": args.size, "epochs": args.epochs,
        "train_samples": metrics["train_samples"], "test_samples": metrics["test_samples"],
        "train_s": metrics["train_s"], "job_train_s": round(train_s, 1),
        "eval_s": round(time.perf_counter() - t1, 1), "full": metrics["accuracy"],
        "cells": cells,
    }  # fmt: skip
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        for ds_name, seed, recipe in jobs(args):
            t = time.perf_counter()
            run_job(args, ds_name, seed, recipe)
            print(f"[prunable] {ds_name} s{seed} {recipe}: {time.perf_counter() - t:.0f}s",
                  flush=True)  # fmt: skip
            summarise(args)
    summarise(args)
    print(f"[prunable] summary: {args.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
