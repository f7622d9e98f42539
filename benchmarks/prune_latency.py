"""CPU batch-1 latency and parameter memory: dense vs physically pruned models.

For every backbone × attention at the ``small`` size and a dataset's real input shapes,
prune ``--sparsity`` of the heads and of the FFN channels of every block (a seeded random
choice: latency depends on shapes, not on which units stay), then time torch eager at
batch 1 with 1 and 2 intra-op threads. The dense and SentryAttend models of a backbone and
their pruned variants are timed together, taking turns in rounds of ``--round-size``
calls, so load drift on a shared machine hits all of them alike and the ratios (pruning
speedup, SentryAttend ÷ dense) come from one run; each figure is the median of ``--runs``
calls after ``--warmup`` calls. Also reports the time ``prune_model`` itself takes (re-pruning on a
sensor/power change) and GFLOPs per sample.

    python benchmarks/prune_latency.py                      # HAPT shapes, all backbones
    python benchmarks/prune_latency.py --shapes all --runs 1000 --json out.json
    python benchmarks/prune_latency.py --shapes all --flops-table   # SentryAttend vs dense

No data or training is needed: latency and memory do not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sentryfuse.models import (  # noqa: E402
    ATTENTIONS,
    BACKBONES,
    KeepSet,
    ModalityInput,
    build_model,
    count_gflops,
    count_params,
    model_config_for,
    prune_model,
)

# (name, steps, features) per modality, as the dataset loaders produce them.
SHAPES: dict[str, list[tuple[str, int, int]]] = {
    "hapt": [("acc", 128, 3), ("gyro", 128, 3)],
    "avdigits": [("image", 8, 8), ("audio", 32, 13)],
    "crowdsignals": [("phone", 64, 9), ("watch", 64, 9), ("hr", 8, 1), ("env", 8, 2)],
}
NUM_CLASSES = {"hapt": 6, "avdigits": 10, "crowdsignals": 8}


class PlainBlock(torch.nn.Module):
    """The reference the issue quotes: a bare pre-LN block (fused QKV, no gates, no masks)."""

    def __init__(self, d_model: int, n_head: int, d_ff: int, head_dim: int = 32) -> None:
        super().__init__()
        self.n_head, self.head_dim = n_head, head_dim
        self.ln1, self.ln2 = torch.nn.LayerNorm(d_model), torch.nn.LayerNorm(d_model)
        self.qkv = torch.nn.Linear(d_model, 3 * n_head * head_dim)
        self.o = torch.nn.Linear(n_head * head_dim, d_model)
        self.fc1, self.fc2 = torch.nn.Linear(d_model, d_ff), torch.nn.Linear(d_ff, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        qkv = self.qkv(self.ln1(x)).view(B, T, 3, self.n_head, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, nh, T, hs)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        x = x + self.o(y.transpose(1, 2).reshape(B, T, -1))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


def plain_stack(n_head: int, d_ff: int) -> torch.nn.Module:
    return torch.nn.Sequential(*(PlainBlock(128, n_head, d_ff) for _ in range(4))).eval()


class DictInput(torch.nn.Module):
    """Lets the reference stack take the same dict input as the models."""

    def __init__(self, stack: torch.nn.Module, tokens: int) -> None:
        super().__init__()
        self.stack, self.tokens = stack, tokens

    def forward(self, x: dict) -> torch.Tensor:
        return self.stack(x["_tokens"])


def half_keep(model, sparsity: float, seed: int) -> dict[str, KeepSet]:
    """Keep round((1 - sparsity)·n) heads and channels per block, chosen at random."""
    g = torch.Generator().manual_seed(seed)
    keep = {}
    for name, block in model.blocks():
        nh, ff = block.attn.n_head, block.mlp.d_ff
        n_heads, n_ch = max(1, round(nh * (1 - sparsity))), max(1, round(ff * (1 - sparsity)))
        keep[name] = KeepSet(
            sorted(torch.randperm(nh, generator=g)[:n_heads].tolist()),
            sorted(torch.randperm(ff, generator=g)[:n_ch].tolist()),
        )
    return keep


def paired_latency_ms(
    models: list, x: dict, runs: int, warmup: int, round_size: int = 25
) -> list[float]:
    """Median per-call latency of each model. Models take turns in rounds of
    ``round_size`` back-to-back calls (the first call of each turn is untimed, it only
    re-warms caches the other models evicted), so load drift on a shared machine hits
    every model alike and no model is always timed right after another one."""
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for _ in range(warmup):
            for m in models:
                m(x)
        done = 0
        while done < runs:
            n = min(round_size, runs - done)
            for i, m in enumerate(models):
                m(x)
                for _ in range(n):
                    start = time.perf_counter()
                    m(x)
                    times[i].append(time.perf_counter() - start)
            done += n
    return [statistics.median(t) * 1e3 for t in times]


def prune_ms(model, keep, runs: int = 30) -> float:
    prune_model(model, keep)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        prune_model(model, keep)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def flops_table(shape_sets: list[str], backbones: list[str]) -> int:
    """SentryAttend vs dense: parameters and GFLOPs per sample at each dataset's shapes."""
    print(
        "| shapes | backbone | GFLOPs dense | GFLOPs sentryattend | Δ GFLOPs | params dense | params sentryattend |"
    )
    print("|---|---|---|---|---|---|---|")
    for shapes in shape_sets:
        specs = [ModalityInput(n, t, c) for n, t, c in SHAPES[shapes]]
        x = {n: torch.randn(1, t, c) for n, t, c in SHAPES[shapes]}
        for backbone in backbones:
            g, p = {}, {}
            for attention in ATTENTIONS:
                cfg = model_config_for(
                    specs, backbone, attention, "small", num_classes=NUM_CLASSES[shapes]
                )
                model = build_model(cfg).eval()
                g[attention], p[attention] = count_gflops(model, x), count_params(model)
            delta = g["sentryattend"] / g["dense"] - 1
            print(
                f"| {shapes} | {backbone} | {g['dense']:.4f} | {g['sentryattend']:.4f} | "
                f"{delta * 100:+.1f}% | {p['dense']:,} | {p['sentryattend']:,} |"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="hapt", choices=[*SHAPES, "all"])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    ap.add_argument("--attentions", nargs="+", default=list(ATTENTIONS), choices=ATTENTIONS)
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--round-size", type=int, default=25, help="timed calls per model per turn")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-reference", action="store_true", help="skip the plain 4×128 stack")
    ap.add_argument("--flops-table", action="store_true", help="only dense vs sentryattend GFLOPs")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if not 0 <= args.sparsity < 1:
        print(f"error: --sparsity must be in [0, 1), got {args.sparsity}", file=sys.stderr)
        return 2

    shape_sets = list(SHAPES) if args.shapes == "all" else [args.shapes]
    if args.flops_table:
        return flops_table(shape_sets, args.backbones)
    rows = []
    print(
        f"# load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, sparsity {args.sparsity}"
    )
    print(
        "| shapes | backbone | attention | threads | unpruned ms | ÷ dense unpruned | pruned ms | speedup | params unpruned | params pruned | params Δ | GFLOPs unpruned | GFLOPs pruned | prune ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for shapes in shape_sets:
        specs = [ModalityInput(n, t, c) for n, t, c in SHAPES[shapes]]
        x = {n: torch.randn(1, t, c) for n, t, c in SHAPES[shapes]}
        if not args.no_reference:  # same sequence length as the early-fusion model
            tokens = 1 + sum(
                m.tokens
                for m in model_config_for(specs, "early", "dense", num_classes=2).modalities
            )
            torch.manual_seed(args.seed)
            full, half = plain_stack(4, 256), plain_stack(2, 128)
            xr = {"_tokens": torch.randn(1, tokens, 128)}
            for threads in args.threads:
                torch.set_num_threads(threads)
                ms_full, ms_half = paired_latency_ms(
                    [DictInput(full, tokens), DictInput(half, tokens)],
                    xr,
                    args.runs,
                    args.warmup,
                    args.round_size,
                )
                p_full, p_half = count_params(full), count_params(half)
                rows.append(dict(shapes=shapes, backbone="plain-4x128", attention="dense", threads=threads,
                                 dense_ms=ms_full, pruned_ms=ms_half, speedup=ms_full / ms_half,
                                 params_dense=p_full, params_pruned=p_half,
                                 params_reduction=1 - p_half / p_full))  # fmt: skip
                print(
                    f"| {shapes} | plain-4x128 (reference, {tokens} tokens) | dense | {threads} | {ms_full:.3f} | "
                    f" | {ms_half:.3f} | {ms_full / ms_half:.2f}× | {p_full:,} | {p_half:,} | "
                    f"−{(1 - p_half / p_full) * 100:.1f}% | | | |",
                    flush=True,
                )
        for backbone in args.backbones:
            models, info = [], {}
            for attention in args.attentions:
                torch.manual_seed(args.seed)
                cfg = model_config_for(
                    specs, backbone, attention, "small", num_classes=NUM_CLASSES[shapes]
                )
                dense = build_model(cfg).eval()
                keep = half_keep(dense, args.sparsity, args.seed)
                pruned = prune_model(dense, keep).eval()
                info[attention] = dict(
                    params_dense=count_params(dense), params_pruned=count_params(pruned),
                    gflops_dense=count_gflops(dense, x), gflops_pruned=count_gflops(pruned, x),
                    prune_ms=prune_ms(dense, keep),
                )  # fmt: skip
                models += [dense, pruned]
            for threads in args.threads:
                torch.set_num_threads(threads)
                ms = paired_latency_ms(models, x, args.runs, args.warmup, args.round_size)
                for i, attention in enumerate(args.attentions):
                    ms_dense, ms_pruned = ms[2 * i], ms[2 * i + 1]
                    row = dict(
                        shapes=shapes, backbone=backbone, attention=attention, threads=threads,
                        dense_ms=ms_dense, pruned_ms=ms_pruned, speedup=ms_dense / ms_pruned,
                        **info[attention],
                    )  # fmt: skip
                    row["params_reduction"] = 1 - row["params_pruned"] / row["params_dense"]
                    if attention != args.attentions[0]:  # vs the first (dense), same run
                        row["vs_" + args.attentions[0]] = ms_dense / ms[0]
                    rows.append(row)
                    vs = row.get("vs_" + args.attentions[0])
                    print(
                        f"| {shapes} | {backbone} | {attention} | {threads} | {ms_dense:.3f} | "
                        f"{'' if vs is None else f'{vs:.3f}'} | "
                        f"{ms_pruned:.3f} | {row['speedup']:.2f}× | {row['params_dense']:,} | "
                        f"{row['params_pruned']:,} | −{row['params_reduction'] * 100:.1f}% | "
                        f"{row['gflops_dense']:.4f} | {row['gflops_pruned']:.4f} | "
                        f"{row['prune_ms']:.1f} |",
                        flush=True,
                    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
