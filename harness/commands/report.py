"""``sentryfuse report RUN_DIR``: tables, summary.md and a self-contained report.html."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the report's options."""
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="run directory (holding results.sqlite) or a store path"
    )
    parser.add_argument("--out", metavar="DIR",
                        help="output directory (default: RUN_DIR/report); replaced atomically")  # fmt: skip
    parser.add_argument(
        "--ordinary", metavar="RUN_DIR",
        help="a run of the same grid with [train] subnet = false: adds the paper's protocol "
        "(SentryGate on this run's checkpoints, the baselines on those) and the full "
        "model's cost to the claims",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    from reports.store import resolve_store_path
    from reports.write import write_report

    store_path = resolve_store_path(args.run_dir)
    out = Path(args.out) if args.out else store_path.parent / "report"
    ordinary = resolve_store_path(args.ordinary) if args.ordinary else None
    written = write_report(store_path, out, ordinary)
    print(f"report written to {written} (open {written / 'report.html'})")
    return 0
