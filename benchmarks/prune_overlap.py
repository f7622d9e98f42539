"""How alike are the units magnitude and SentryGate keep? (Jaccard of the kept sets.)

The prunability-aware recipe lifts magnitude pruning almost as much as SentryGate on the
same checkpoint. One explanation would be that training with the scorer's units removed
makes those units small, so magnitude learns the scorer's ranking. This measures it: for
each checkpoint of ``benchmarks/prunable_training.py`` (``--runs``/ckpt/DATASET-RECIPE-sS),
the Jaccard index of the heads+channels each method keeps at one sparsity, all sensors.
Two independent random halves give about 1/3 at sparsity 0.5.

    python benchmarks/prune_overlap.py --ckpts /work/wt/i10-train-runs/pt/ckpt /work/runs/pt2/ckpt
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def kept_units(keep: dict) -> set[tuple[str, str, int]]:
    out: set[tuple[str, str, int]] = set()
    for block, k in keep.items():
        heads, chans = (k.heads, k.channels) if hasattr(k, "heads") else k
        out |= {(block, "h", int(i)) for i in heads} | {(block, "c", int(i)) for i in chans}
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.prune import prune

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpts", type=Path, nargs="+", required=True)
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--against", default="magnitude")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    groups: dict[tuple[str, str], list[float]] = {}
    for root in args.ckpts:
        for path in sorted(root.glob("*-s*")):
            if not (path / "config.json").is_file():
                continue
            ds, recipe, _seed = path.name.rsplit("-", 2)
            ckpt = load_checkpoint(path)
            a = kept_units(prune(ckpt, args.against, args.sparsity).keep)
            b = kept_units(prune(ckpt, "sentrygate", args.sparsity).keep)
            groups.setdefault((ds, recipe), []).append(len(a & b) / len(a | b))
    print(f"| dataset | recipe | Jaccard(kept {args.against}, kept sentrygate), "
          f"s={args.sparsity}, all sensors | seeds |")  # fmt: skip
    print("|---|---|---|---|")
    for (ds, recipe), js in sorted(groups.items()):
        vals = ", ".join(f"{j:.2f}" for j in js)
        print(f"| {ds} | {recipe} | {statistics.mean(js):.2f} ({vals}) | {len(js)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
