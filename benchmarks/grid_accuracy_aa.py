"""A/A of ``benchmarks/grid_accuracy.py``: the same grid trained twice, cell by cell.

    python benchmarks/grid_accuracy_aa.py benchmarks/grid_accuracy/claims /work/runs/claims-json/claims

Why: a committed JSON is the record of one training run. Retrained with the same code and
seeds on the same float platform it comes out bit-identical, and on another platform
(the torch kernels are chosen from the CPU's vector ISA) it gives other weights. This
says how far apart the two folders are per cell, and whether the headline figure moves:
the same-checkpoint margin of each folder, the summary's own definition
(``paper_grid_summary.margin``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.paper_grid_summary import SummaryInputError, load, margin  # noqa: E402


def compare(path_a: str, path_b: str) -> None:
    a, b = load(path_a), load(path_b)
    keys_a, keys_b = set(a["cell_key"]), set(b["cell_key"])
    if keys_a != keys_b:
        raise SummaryInputError(
            f"the folders hold different cells ({len(keys_a - keys_b)} only in {path_a}, "
            f"{len(keys_b - keys_a)} only in {path_b}): compare two runs of one grid"
        )
    pair = a.set_index("cell_key")["accuracy_pct"].to_frame("a")
    pair["b"] = b.set_index("cell_key")["accuracy_pct"]
    diff = (pair["a"] - pair["b"]).abs()
    print(
        f"{len(pair)} cells: {int((diff == 0).sum())} identical; |difference| median "
        f"{diff.median():.2f}, 95th percentile {diff.quantile(0.95):.2f}, max {diff.max():.2f} points"
    )
    for label, df in ((path_a, a), (path_b, b)):
        baseline, text, _, _ = margin(df)
        sentrygate = df[(df["method"] == "sentrygate") & (df["sparsity"] > 0)]["accuracy_pct"]
        print(f"{label}: SentryGate {sentrygate.mean():.1f}; same checkpoint {text} vs {baseline}")


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="a grid_accuracy folder (or a results store)")
    ap.add_argument("b", help="the same grid's other run")
    args = ap.parse_args(argv)
    try:
        compare(args.a, args.b)
    except SummaryInputError as exc:
        print(f"grid_accuracy_aa: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
