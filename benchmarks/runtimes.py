"""Runtimes side by side: torch eager, torch.compile and ONNX Runtime on dense and
physically pruned models, with each pruning speedup as a share of its GFLOPs limit.

For every shapes × backbone × attention (the ``small`` preset at a dataset's real input
shapes) the unpruned model and its variants at each ``--sparsities`` (a seeded random
choice of heads and FFN channels per block, as ``prune_latency.py``) are exported through
the CPU target's own runners (ONNX Runtime parity-checked against torch before anything
is timed; a failing export is reported, never timed). All runners of one backbone ×
attention are timed in ONE interleaved loop: each round, every runner makes
``--round-size`` back-to-back batch-1 calls after one untimed re-warm call, so drift on a
shared machine hits all of them alike. Latency = median over all calls (spread: p25–p75);
speedup = median over rounds of (round median dense ÷ round median pruned), spread p25–p75
of those per-round ratios; "% limit" = speedup ÷ (GFLOPs dense ÷ GFLOPs pruned). "p10" is
the same ratio of each round's 10th-percentile call: on a loaded machine a longer call is
preempted more often, which biases median ratios; the fast tail is the runtime's own speed.
The **A/A** row is the unpruned model exported a second time and timed in the same loop:
its "speedup" should read 1.00×, and its spread is the noise floor the other rows sit on.

    nice -n 5 python benchmarks/runtimes.py --shapes hapt --json out.json --markdown out.md
    python benchmarks/runtimes.py --shapes all --runtimes torch onnxruntime --align 16

No data or training is needed: latency depends on shapes, not on the weights' values.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.prune_latency import NUM_CLASSES, SHAPES  # noqa: E402
from sentryfuse.errors import TargetError  # noqa: E402
from sentryfuse.models import (  # noqa: E402
    ATTENTIONS,
    BACKBONES,
    KeepSet,
    ModalityInput,
    build_model,
    count_gflops,
    model_config_for,
    prune_model,
)
from targets.cpu_runners import export_cpu  # noqa: E402

RUNTIMES = ("torch", "torch-compiled", "onnxruntime")


def keep_sets(model, sparsity: float, seed: int, align: int) -> dict[str, KeepSet]:
    """Keep round((1 - s)·n) heads and channels per block (channels rounded to a
    multiple of ``align`` when > 1, to test kernel-friendly widths), chosen at random."""
    g = torch.Generator().manual_seed(seed)
    keep = {}
    for name, block in model.blocks():
        nh, ff = block.attn.n_head, block.mlp.d_ff
        n_heads = max(1, round(nh * (1 - sparsity)))
        n_ch = max(1, round(ff * (1 - sparsity)))
        if align > 1:
            n_ch = max(align, round(n_ch / align) * align)
        keep[name] = KeepSet(
            sorted(torch.randperm(nh, generator=g)[:n_heads].tolist()),
            sorted(torch.randperm(ff, generator=g)[:n_ch].tolist()),
        )
    return keep


AA = "A/A"  # the unpruned model exported again: the comparison's own noise floor


def interleaved(runners: list, x: dict, rounds: int, round_size: int, warmup: int) -> list:
    """Per runner, per round, the list of call latencies in ms."""
    out: list[list[list[float]]] = [[] for _ in runners]
    clock = time.perf_counter
    for r in runners:
        for _ in range(warmup):
            r(x)
    for _ in range(rounds):
        for i, r in enumerate(runners):
            r(x)  # re-warm caches the other runners evicted; untimed
            lat = []
            for _ in range(round_size):
                t0 = clock()
                r(x)
                lat.append((clock() - t0) * 1e3)
            out[i].append(lat)
    return out


def _q(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_pair(shapes, backbone, attention, args, workdir: Path) -> list[dict]:
    """Every runtime × (unpruned, each sparsity) of one backbone × attention, interleaved."""
    specs = [ModalityInput(n, t, c) for n, t, c in SHAPES[shapes]]
    rng = np.random.default_rng(args.seed)
    x = {n: rng.standard_normal((1, t, c), dtype=np.float32) for n, t, c in SHAPES[shapes]}
    xt = {k: torch.from_numpy(v) for k, v in x.items()}
    torch.manual_seed(args.seed)
    cfg = model_config_for(specs, backbone, attention, "small", num_classes=NUM_CLASSES[shapes])
    dense = build_model(cfg).eval()
    models: dict = {0.0: dense, AA: dense}
    for s in args.sparsities:
        models[s] = prune_model(dense, keep_sets(dense, s, args.seed, args.align)).eval()
    gflops = {s: count_gflops(m, xt) for s, m in models.items()}
    runners, keys, failed, export_s = [], [], {}, {}
    for rt in args.runtimes:
        for s, m in models.items():
            t0 = time.perf_counter()
            try:
                tag = "aa" if s == AA else s
                r = export_cpu(m, x, rt, workdir / f"{shapes}-{backbone}-{attention}-{rt}-{tag}")
                if rt == "torch-compiled":
                    r(x)  # compile outside the timed loop
            except TargetError as exc:
                failed[rt, s] = str(exc)
                continue
            export_s[rt, s] = time.perf_counter() - t0
            runners.append(r)
            keys.append((rt, s))
    lat = dict(
        zip(keys, interleaved(runners, x, args.rounds, args.round_size, args.warmup), strict=True)
    )
    rows = []
    for rt in args.runtimes:
        base = lat.get((rt, 0.0))
        for s in models:
            row = dict(shapes=shapes, backbone=backbone, attention=attention, runtime=rt,
                       sparsity=s, gflops=gflops[s], gflops_limit=gflops[0.0] / gflops[s],
                       align=args.align, threads=torch.get_num_threads())  # fmt: skip
            if (rt, s) in failed:
                row["error"] = failed[rt, s]
                rows.append(row)
                continue
            calls = [v for rnd in lat[rt, s] for v in rnd]
            row.update(ms_p50=statistics.median(calls), ms_p25=_q(calls, 25),
                       ms_p75=_q(calls, 75), ms_p10=_q(calls, 10), n=len(calls),
                       export_s=export_s[rt, s])  # fmt: skip
            if base is not None and (s == AA or s > 0):
                ratios = [
                    statistics.median(b) / statistics.median(p)
                    for b, p in zip(base, lat[rt, s], strict=True)
                ]
                row.update(speedup=statistics.median(ratios), speedup_p25=_q(ratios, 25),
                           speedup_p75=_q(ratios, 75))  # fmt: skip
                row["pct_limit"] = 100 * row["speedup"] / row["gflops_limit"]
                # p10 per round: the runtime's speed with the shared machine's preemptions
                # (which hit a longer call more often) filtered out
                fast = [_q(b, 10) / _q(p, 10) for b, p in zip(base, lat[rt, s], strict=True)]
                row["speedup_p10"] = statistics.median(fast)
                row["pct_limit_p10"] = 100 * row["speedup_p10"] / row["gflops_limit"]
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    """One line per shapes × backbone × attention × sparsity, runtimes side by side."""
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    head = (
        "| shapes | backbone | attention | sparsity | GFLOPs limit | "
        + " | ".join(
            f"{rt} ms (p25–p75) | {rt} speedup (p25–p75), % limit; p10 speedup, % limit"
            for rt in runtimes
        )
        + " | fastest |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    index = {
        (r["shapes"], r["backbone"], r["attention"], r["sparsity"], r["runtime"]): r for r in rows
    }
    for key in dict.fromkeys(
        (r["shapes"], r["backbone"], r["attention"], r["sparsity"]) for r in rows
    ):
        cells, best = [], None
        for rt in runtimes:
            r = index.get((*key, rt))
            if r is None or "error" in r:
                cells += ["failed" if r else "", (r or {}).get("error", "")[:60]]
                continue
            cells.append(f"{r['ms_p50']:.3f} ({r['ms_p25']:.3f}–{r['ms_p75']:.3f})")
            fast = f"; p10 {r['speedup_p10']:.2f}×, {r['pct_limit_p10']:.0f}%" if (
                "speedup_p10" in r
            ) else ""  # fmt: skip
            cells.append(
                f"{r['speedup']:.2f}× ({r['speedup_p25']:.2f}–{r['speedup_p75']:.2f}), "
                f"{r['pct_limit']:.0f}%{fast}"
                if "speedup" in r
                else "—"
            )
            if best is None or r["ms_p50"] < best[1]:
                best = (rt, r["ms_p50"])
        limit = next(index[(*key, rt)]["gflops_limit"] for rt in runtimes if (*key, rt) in index)
        sparsity = key[3] if key[3] == AA else f"{key[3]:.0%}"
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {sparsity} | {limit:.2f}× | "
            + " | ".join(cells)
            + f" | {best[0] if best else '—'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="hapt", choices=[*SHAPES, "all"])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    ap.add_argument("--attentions", nargs="+", default=list(ATTENTIONS), choices=ATTENTIONS)
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    ap.add_argument("--sparsities", nargs="+", type=float, default=[0.3, 0.5, 0.7])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--round-size", type=int, default=25, help="timed calls per runner per round")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--align", type=int, default=1, help="round kept FFN channels to a multiple")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    ap.add_argument("--render", type=Path, default=None, help="only print the table of a --json")
    args = ap.parse_args(argv)
    if args.render:
        print(markdown(json.loads(args.render.read_text())))
        return 0
    bad = [s for s in args.sparsities if not 0 < s < 1]
    if bad or args.rounds < 1 or args.round_size < 1 or args.threads < 1:
        print(
            "error: sparsities must be in (0, 1); rounds, round-size, threads ≥ 1", file=sys.stderr
        )
        return 2
    torch.set_num_threads(args.threads)  # ONNX Runtime sessions follow torch's count
    shape_sets = list(SHAPES) if args.shapes == "all" else [args.shapes]
    print(f"# load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}, "
          f"{args.threads} thread(s), {args.rounds}×{args.round_size} calls", flush=True)  # fmt: skip
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for shapes in shape_sets:
            for backbone in args.backbones:
                for attention in args.attentions:
                    got = bench_pair(shapes, backbone, attention, args, Path(tmp))
                    rows += got
                    print("\n".join(markdown(got).splitlines()[2:]), flush=True)
                    if args.json:  # rewritten after each pair: a cut-short run keeps its rows
                        args.json.write_text(json.dumps(rows, indent=1))
    table = markdown(rows)
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
