"""Re-prune time per modality condition: SentryGate from an already loaded checkpoint.

The harness re-prunes on every sensor or power-mode change, so what matters is the time
from "present set changed" to "smaller model ready", in-process. For each condition
(each non-empty subset of modalities) and sparsity, ``Repruner.reprune`` is called
``--repeats`` times; the first call per (condition, sparsity) includes the scorer pass and
the ranking (cold), later ones reuse the cached selection and only slice weights (warm).
Both medians are printed as a Markdown table.

    python benchmarks/reprune_speed.py runs/checkpoints/hapt-late-dense --repeats 20
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.models import count_params
    from sentryfuse.prune import Repruner

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--sparsities", default="0.3,0.5")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--budget", default="units", choices=("units", "flops"))
    args = p.parse_args(argv)

    t = time.perf_counter()
    ckpt = load_checkpoint(args.checkpoint)
    load_ms = (time.perf_counter() - t) * 1e3
    t = time.perf_counter()
    rep = Repruner(ckpt, budget=args.budget)
    init_ms = (time.perf_counter() - t) * 1e3
    mods = ckpt.modalities
    subsets = [c for r in range(len(mods), 0, -1) for c in itertools.combinations(mods, r)]
    print(f"checkpoint {args.checkpoint} ({count_params(ckpt.model):,} params): "
          f"load {load_ms:.0f} ms, Repruner init {init_ms:.0f} ms (one-time)")  # fmt: skip
    print("\n| present | sparsity | cold ms | warm median ms | warm p90 ms | params |")
    print("|---|---|---|---|---|---|")
    warm_all = []
    for present in subsets:
        for s in (float(v) for v in args.sparsities.split(",")):
            cold = rep.reprune(list(present), s)
            warm = [rep.reprune(list(present), s).prune_ms for _ in range(args.repeats)]
            warm_all += warm
            p90 = sorted(warm)[int(0.9 * (len(warm) - 1))]
            print(f"| {'+'.join(present)} | {s:g} | {cold.prune_ms:.2f} | "
                  f"{statistics.median(warm):.2f} | {p90:.2f} | {count_params(cold.model):,} |")  # fmt: skip
    print(f"\noverall warm median {statistics.median(warm_all):.2f} ms over {len(warm_all)} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
