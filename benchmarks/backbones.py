"""Backbone benchmark: 3 backbones × datasets × {dense, sentryattend}.

For every cell it trains a checkpoint with the modality-dropout curriculum (the same
``train()`` the CLI runs), then measures on the test split: accuracy with all modalities
and with each one missing (plus random 30% per-sample dropout), parameters, forward
GFLOPs per sample (``torch.utils.flop_counter``) and CPU latency at batch 1 (median of
``--runs`` timed forwards after ``--warmup`` untimed ones, ``torch.inference_mode``, one
thread). Results go to ``<runs>/<cell>/bench.json`` (a rerun skips finished cells, so
two processes can split the grid with ``--only``) and to a Markdown table.

    python benchmarks/backbones.py                       # full grid, then the table
    python benchmarks/backbones.py --datasets hapt avdigits crowdsignals &  # 2nd worker
    python benchmarks/backbones.py --report-only         # rebuild the table
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sentryfuse.checkpoint import load_checkpoint  # noqa: E402
from sentryfuse.data import load_dataset  # noqa: E402
from sentryfuse.models import count_gflops, count_params, model_config_for  # noqa: E402
from sentryfuse.train import TrainConfig, train  # noqa: E402

DATASETS = ("avdigits", "crowdsignals", "hapt")
BACKBONES = ("early", "late", "bottleneck")
ATTENTIONS = ("dense", "sentryattend")
# Epochs per dataset: sized so the grid fits in about an hour on 2 shared CPU cores.
EPOCHS = {"hapt": 5, "avdigits": 12, "crowdsignals": 10}
TARGETS = {"hapt": 0.90, "avdigits": 0.97, "crowdsignals": 0.92}


def recipe(dataset: str, epochs: int | None, seed: int) -> TrainConfig:
    """The benchmark's training recipe: warm-up 20% of epochs, ramp over the next 30%."""
    n = epochs or EPOCHS.get(dataset, 15)
    return TrainConfig(
        epochs=n, batch_size=64, lr=1e-3, weight_decay=0.05, seed=seed, threads=1,
        warmup_epochs=round(0.2 * n, 2), ramp_epochs=round(0.3 * n, 2), p_drop_max=0.4,
        saliency_every=4, saliency_groups=2, scorer_final_steps=60,
    )  # fmt: skip


@torch.inference_mode()
def latency_ms(model, inputs: dict[str, torch.Tensor], warmup: int, runs: int) -> float:
    """Median wall time of one batch-1 forward, after ``warmup`` untimed forwards."""
    for _ in range(warmup):
        model(inputs)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(inputs)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_cell(ds, backbone: str, attention: str, args, cell_dir: Path) -> dict:
    cfg = model_config_for(ds, backbone, attention, size=args.size)
    t0 = time.perf_counter()
    train(ds, cfg, recipe(ds.name, args.epochs, args.seed), cell_dir, progress=not args.quiet)
    train_s = time.perf_counter() - t0
    ck = load_checkpoint(cell_dir)
    model = ck.model.eval()
    one = {k: torch.from_numpy(v[:1].copy()) for k, v in ds.test.x.items()}
    eight = {k: torch.from_numpy(v[:8].copy()) for k, v in ds.test.x.items()}
    torch.set_num_threads(1)
    row = {
        "dataset": ds.name, "backbone": backbone, "attention": attention,
        "accuracy": ck.metrics["accuracy"], "params": count_params(model),
        "gflops": count_gflops(model, eight),
        "latency_ms": latency_ms(model, one, args.warmup, args.runs),
        "train_s": round(train_s, 1), "epochs": ck.meta["train"]["epochs"],
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }  # fmt: skip
    (cell_dir / "bench.json").write_text(json.dumps(row, indent=2))
    return row


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def scorer_fidelity(ck, ds, n: int = 512, seed: int = 0) -> dict[str, float]:
    """How well the scorer, from the mask alone, ranks units like the saliency measured on
    held-out data under that mask: Spearman ρ over all FFN channels (and all heads) of the
    blocks on the path, averaged over all-present and each single modality missing."""
    from sentryfuse.conditions import standard_conditions
    from sentryfuse.gate import unit_saliency

    test = ds.test.take(np.random.default_rng(seed).permutation(len(ds.test))[:n])
    x = {k: torch.from_numpy(v) for k, v in test.x.items()}
    y = torch.from_numpy(test.y)
    rho: dict[str, list[float]] = {"heads": [], "channels": []}
    for cond in standard_conditions(ck.modalities):
        present = cond.static_present(ck.modalities)
        if present is None:
            continue
        sal = unit_saliency(ck.model, x, y, ck.scorer.mask_for(present), groups=16)
        scores = ck.scorer.scores_for(present)
        live = [b for b in sal if float(sal[b][1].sum()) > 0]
        for kind, key in ((0, "heads"), (1, "channels")):
            s = torch.cat([sal[b][kind] for b in live])
            p = torch.cat([scores[b][kind] for b in live])
            rho[key].append(_spearman(s, p))
    return {k: float(np.mean(v)) for k, v in rho.items()}


def remeasure_latency(runs_dir: Path, d: str, b: str, args) -> None:
    """Re-time a dense/sentryattend pair in alternating rounds, so background load on a
    shared machine hits both alike; stores the medians in each ``bench.json``."""
    files = [runs_dir / f"{d}-{b}-{a}" / "bench.json" for a in args.attentions]
    files = [f for f in files if f.exists()]
    if not files:
        return
    ds = load_dataset(d, seed=args.seed)
    one = {k: torch.from_numpy(v[:1].copy()) for k, v in ds.test.x.items()}
    models = [load_checkpoint(f.parent).model.eval() for f in files]
    samples: list[list[float]] = [[] for _ in models]
    rounds = 10
    for _ in range(rounds):
        for i, m in enumerate(models):
            samples[i].append(latency_ms(m, one, args.warmup // 3 + 1, args.runs // rounds))
    eight = {k: torch.from_numpy(v[:8].copy()) for k, v in ds.test.x.items()}
    for f, lat, m in zip(files, samples, models, strict=True):
        row = json.loads(f.read_text())
        row["gflops"] = count_gflops(m, eight)  # the model code may have changed since training
        row["latency_ms"] = statistics.median(lat)
        row["latency_method"] = f"median of {rounds} alternating rounds x {args.runs // rounds}"
        f.write_text(json.dumps(row, indent=2))


def claim(runs_dir: Path, name: str, force: bool) -> bool:
    """Mark a cell as taken (``<name>.claim``) so parallel processes split the grid.

    A claim left by a killed process blocks that cell until it is deleted or ``--rerun``.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        with open(runs_dir / f"{name}.claim", "x") as f:
            f.write(f"{platform.node()} {time.time():.0f}\n")
        return True
    except FileExistsError:
        return force


HEADER = """## Backbones: accuracy, cost, SentryAttend vs dense

Command (two workers split the grid through claim files; one is enough):

    python benchmarks/backbones.py --quiet --datasets hapt crowdsignals avdigits &
    python benchmarks/backbones.py --quiet --datasets avdigits crowdsignals hapt
    python benchmarks/backbones.py --report-only --remeasure-latency --runs 600

Recipe: `sentryfuse.train.train` with the `small` size, AdamW (lr 1e-3, wd 0.05), cosine
LR, batch 64, epochs per dataset {epochs}, modality-dropout curriculum (no dropout for 20%
of the epochs, then ramped to p=0.4 over 30%), SentryGate saliency every 4 steps, seed 0,
one torch thread. Accuracy on the test split (subject-wise for HAPT); "−m" = modality m
missing for every sample (its encoder skipped), "random 30%" = per-sample dropout.
GFLOPs per sample from `torch.utils.flop_counter` (all modalities present); CPU latency
at batch 1, `torch.inference_mode`, 1 thread, on {machine} ({torch}): after training, the
dense and SentryAttend models of each backbone are re-timed alternately in 10 rounds of
{per_round} forwards (after warm-up), median of the round medians. The 2 cores were shared
with other jobs during training (training times are inflated) and less so while timing;
latencies of these sub-2 ms models still move ±10–20% between reruns here. "scorer ρ": Spearman rank correlation between the SentryGate scorer's
scores (from the presence mask alone) and first-order saliency measured on 512 held-out
test samples under that mask, over all heads / all FFN channels of the blocks on the path,
averaged over all-present and each single modality missing (1.0 = same ranking).

"""


def table(rows: list[dict], runs: int = 300, warmup: int = 30) -> str:
    """Markdown: one row per cell, then SentryAttend vs dense per backbone."""
    first = rows[0]
    epochs = ", ".join(f"{d} {EPOCHS[d]}" for d in DATASETS if d in EPOCHS)
    out = [HEADER.format(epochs=epochs, per_round=runs // 10, machine=first.get("machine", "?"), torch=f"torch {first.get('torch', '?')}").rstrip(), "",
           "| dataset | backbone | attention | acc all | acc each missing | acc random 30% "
           "| params | GFLOPs/sample | CPU latency b=1 (ms) | train (s) | scorer ρ heads / channels |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        acc = r["accuracy"]
        miss = ", ".join(f"−{k[5:]} {v:.3f}" for k, v in acc.items() if k.startswith("drop:"))
        rnd = next((v for k, v in acc.items() if k.startswith("random")), float("nan"))
        rho = r.get("scorer_rho", {})
        out.append(
            f"| {r['dataset']} | {r['backbone']} | {r['attention']} | {acc['all']:.3f} | {miss} "
            f"| {rnd:.3f} | {r['params'] / 1e6:.3f} M | {r['gflops']:.4f} | {r['latency_ms']:.2f} "
            f"| {r['train_s']:.0f} | {rho.get('heads', float('nan')):.2f} / {rho.get('channels', float('nan')):.2f} |"
        )
    out += ["", "SentryAttend vs dense (same dataset and backbone):", "",
            "| dataset | backbone | GFLOPs change | accuracy change (all present, points) "
            "| latency change |", "|---|---|---|---|---|"]  # fmt: skip
    key = {(r["dataset"], r["backbone"], r["attention"]): r for r in rows}
    for (d, b, a), r in key.items():
        dense = key.get((d, b, "dense"))
        if a != "sentryattend" or dense is None:
            continue
        dg = 100 * (r["gflops"] / dense["gflops"] - 1)
        da = 100 * (r["accuracy"]["all"] - dense["accuracy"]["all"])
        dl = 100 * (r["latency_ms"] / dense["latency_ms"] - 1)
        out.append(f"| {d} | {b} | {dg:+.1f}% | {da:+.1f} | {dl:+.1f}% |")
    out += ["", "Best dense accuracy (all present) per dataset vs target:", "",
            "| dataset | best backbone | accuracy | target |", "|---|---|---|---|"]  # fmt: skip
    for d in sorted({r["dataset"] for r in rows}):
        dense = [r for r in rows if r["dataset"] == d and r["attention"] == "dense"]
        if dense:
            best = max(dense, key=lambda r: r["accuracy"]["all"])
            tgt = TARGETS.get(d)
            mark = "" if tgt is None else (" ✔" if best["accuracy"]["all"] >= tgt else " ✘")
            out.append(
                f"| {d} | {best['backbone']} | {best['accuracy']['all']:.3f}{mark} | {tgt} |"
            )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), help="in this order")
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    p.add_argument("--attentions", nargs="+", default=list(ATTENTIONS))
    p.add_argument(
        "--only", nargs="*", default=None, help="run only cells whose name contains one of these"
    )
    p.add_argument("--epochs", type=int, default=None, help="override the per-dataset epochs")
    p.add_argument("--size", default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "backbones")
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results_backbones.md")
    p.add_argument("--rerun", action="store_true", help="retrain cells that already have results")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--remeasure-latency", action="store_true", help="re-time finished cells in pairs"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if not args.report_only:
        for d in args.datasets:
            ds = None
            for b in args.backbones:
                for a in args.attentions:
                    name = f"{d}-{b}-{a}"
                    cell = args.runs_dir / name
                    if args.only and not any(s in name for s in args.only):
                        continue
                    if (cell / "bench.json").exists() and not args.rerun:
                        continue
                    if not claim(args.runs_dir, name, args.rerun):
                        continue  # another process is training it
                    ds = ds or load_dataset(d, seed=args.seed)
                    row = run_cell(ds, b, a, args, cell)
                    print(f"{name}: acc {row['accuracy']} gflops {row['gflops']:.4f} "
                          f"latency {row['latency_ms']:.2f} ms train {row['train_s']} s", flush=True)  # fmt: skip
    if args.remeasure_latency:
        for d in args.datasets:
            for b in args.backbones:
                remeasure_latency(args.runs_dir, d, b, args)
    rows = []
    for d in args.datasets:
        for b in args.backbones:
            for a in args.attentions:
                f = args.runs_dir / f"{d}-{b}-{a}" / "bench.json"
                if f.exists():
                    row = json.loads(f.read_text())
                    if "scorer_rho" not in row:  # cheap: a few saliency passes
                        ck = load_checkpoint(f.parent)
                        row["scorer_rho"] = scorer_fidelity(ck, load_dataset(d, seed=args.seed))
                        f.write_text(json.dumps(row, indent=2))
                    rows.append(row)
    if rows:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(table(rows, args.runs, args.warmup))
        print(f"wrote {args.results} ({len(rows)} cells)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
