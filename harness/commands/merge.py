"""``sentryfuse merge RUN_DIR... --out DIR``: one store from the stores of shards.

Exit codes: 0 merged; 2 bad input (runs of different profiles, a cell with two different
results, a missing store, an existing --out store) with nothing written.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run directories (or results.sqlite paths) to merge")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="directory for the merged store")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")


def run(args: argparse.Namespace) -> int:
    from harness.merge import merge_stores

    s = merge_stores(list(args.run_dirs), args.out)
    print(
        f"merged {s.stores} stores ({s.runs} runs) into {s.store_path}: {s.cells} cells, "
        f"{s.identical_duplicates} identical duplicates kept once, "
        f"{s.replaced_failed} failed tries superseded by finished ones"
    )
    if not args.no_report:
        from harness.suite import write_report

        print(write_report(s.store_path, args.out / "report"))
    return 0
