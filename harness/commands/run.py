"""``sentryfuse run PROFILE``: run a benchmark profile into a resumable results store.

Exit codes: 0 every cell finished; 1 some cells failed (they are stored with their
error and the rest of the suite still ran); 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cells import estimate_seconds, expand
from harness.profile import load_profile
from harness.store import STORE_NAME, Store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profile", type=Path, help="a TOML profile, e.g. profiles/quickstart.toml")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default: runs/<profile name>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing store in --out, skipping finished cells",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the cells and estimate the wall time; run nothing",
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="run the cells on a Ray cluster: HOST:PORT of its head, or local:N for a "
        "throwaway local cluster of N simulated CPU devices (docs: README, 'Fleet')",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        default=None,
        help="run only shard I of N (cells split by content hash); join with `sentryfuse merge`",
    )


def run(args: argparse.Namespace, *, target_factory: Callable[[str], Any] | None = None) -> int:
    """``target_factory`` is for in-process callers (tests inject a target); not a CLI flag."""
    profile = load_profile(args.profile, target_factory=target_factory)
    out_dir = args.out or Path("runs") / profile.name
    shard, cluster = getattr(args, "shard", None), getattr(args, "cluster", None)
    select = None
    if shard:
        from harness.shard import shard_filter

        select = shard_filter(shard)
    if args.dry_run:
        return _dry_run(profile, out_dir, select)
    from harness.suite import run_suite, write_report

    if cluster:
        from harness.fleet.driver import run_fleet_suite

        summary = run_fleet_suite(profile, out_dir, cluster, resume=args.resume, select=select)
    else:
        summary = run_suite(
            profile, out_dir, resume=args.resume, target_factory=target_factory, select=select
        )
    print(
        f"{profile.name}: {summary.total} cells: {summary.ok} ran ok, {summary.failed} failed, "
        f"{summary.skipped} already finished; store {summary.store_path}"
    )
    for label, error in summary.failures[:10]:
        print(f"  failed: {label}: {error}")
    if summary.failed > 10:
        print(f"  ... and {summary.failed - 10} more (see the store's cells.error)")
    try:
        print(write_report(summary.store_path, out_dir / "report"))
    except Exception as exc:  # the results are safe in the store; the report can be rerun
        print(
            f"report failed: {type(exc).__name__}: {exc}; rerun `sentryfuse report`",
            file=sys.stderr,
        )
    return 1 if summary.failed else 0


def _dry_run(profile: Any, out_dir: Path, select: Callable | None = None) -> int:
    cells = expand(profile)
    cells = select(cells) if select else cells
    store_path = out_dir / STORE_NAME
    done: set[str] = set()
    if store_path.exists():
        with Store(store_path) as store:
            done = store.finished_keys()
    for cell in cells:
        mark = "done" if cell.key in done else "todo"
        print(f"{cell.key[:12]}  {mark}  {cell.kind:6s}  {cell.label()}")
    todo = [c for c in cells if c.key not in done]
    est = estimate_seconds(profile, todo)
    print(
        f"{profile.name}: {len(cells)} cells ({len(cells) - len(todo)} finished), "
        f"{len(todo)} to run, estimated {est / 60:.1f} min on a 2-core CPU (rough)"
    )
    return 0
