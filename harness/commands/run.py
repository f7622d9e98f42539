"""``sentryfuse run PROFILE``: run a benchmark profile into a resumable results store.

``PROFILE`` is a path or the name of a shipped profile (``sentryfuse profiles``). The
``--out`` folder follows ``harness.outdir``'s rule, checked before any work. Exit codes:
0 every cell finished; 1 some cells failed (they are stored with their error and the
rest of the suite still ran); 2 bad input (nothing written); 130 interrupted.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cells import expand
from harness.profile import load_profile
from harness.store import STORE_NAME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "profile",
        help="a TOML profile (e.g. profiles/quickstart.toml) or a shipped profile's name",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder: new, empty, or an earlier run of this profile "
        "(default: runs/<profile name>)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an existing store in --out, skipping finished cells",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate everything, list the cells and estimate the wall time; run nothing",
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
        help="run only shard I of N (cell groups split by key hash); join with `sentryfuse merge`",
    )


def run(args: argparse.Namespace, *, target_factory: Callable[[str], Any] | None = None) -> int:
    """``target_factory`` is for in-process callers (tests inject a target); not a CLI flag."""
    from harness import registry
    from harness.outdir import check_out_dir
    from harness.shipped import resolve_profile

    profile_path = resolve_profile(args.profile)
    profile = load_profile(profile_path, target_factory=target_factory)
    out_dir = args.out or Path("runs") / profile.name
    check_out_dir(out_dir, profile.name, resume=args.resume or args.dry_run)
    factory = target_factory or registry.default_target_factory
    shard, cluster = getattr(args, "shard", None), getattr(args, "cluster", None)
    select = None
    if shard:
        from harness.shard import shard_filter

        select = shard_filter(shard)
    if args.dry_run:
        return _dry_run(profile, out_dir, factory, select)
    from harness.interrupt import Interrupted, stoppable
    from harness.outdir import claimed
    from harness.suite import run_suite, write_report_or_warn

    try:
        with stoppable(), claimed(out_dir):
            if cluster:
                from harness.fleet.driver import run_fleet_suite

                summary = run_fleet_suite(
                    profile, out_dir, cluster, resume=args.resume, select=select
                )
            else:
                summary = run_suite(profile, out_dir, resume=args.resume,
                                    target_factory=factory, select=select)  # fmt: skip
    except KeyboardInterrupt as exc:
        # The power mode is restored and the store closed by now; say how to continue.
        print(_interrupted(args, out_dir), file=sys.stderr, flush=True)
        raise Interrupted(getattr(exc, "signum", signal.SIGINT), reported=True) from None
    print(
        f"{profile.name}: {summary.total} cells: {summary.ok} ran ok, {summary.failed} failed, "
        f"{summary.skipped} already finished; store {summary.store_path}"
    )
    for label, error in summary.failures[:10]:
        print(f"  failed: {label}: {error}")
    if summary.failed > 10:
        print(f"  ... and {summary.failed - 10} more (see the store's cells.error)")
    write_report_or_warn(summary.store_path, out_dir / "report")
    return 1 if summary.failed else 0


def _interrupted(args: argparse.Namespace, out_dir: Path) -> str:
    """The one line after Ctrl-C: what is kept and the exact command that continues."""
    store = out_dir / STORE_NAME
    if not store.exists():
        return "sentryfuse run: interrupted before any cell ran; nothing was kept"
    from harness.outdir import stored_finished_keys

    n = len(stored_finished_keys(store))
    command = shlex.join(
        ["sentryfuse", "run", str(args.profile), "--out", str(out_dir), "--resume"]
    )
    return f"sentryfuse run: interrupted; {n} finished cells are kept in {store}; continue with: {command}"


def _dry_run(
    profile: Any, out_dir: Path, factory: Callable[[str], Any], select: Callable | None = None
) -> int:
    """Everything the real run checks before its first cell, then the plan; writes nothing."""
    from harness.cellgroup import plan_groups
    from harness.progress import plan_for, plan_seconds
    from harness.suite import preflight

    _, _, art = preflight(profile, out_dir, resume=True, target_factory=factory)
    cells = expand(profile)
    cells = select(cells) if select else cells
    from harness.outdir import stored_finished_keys

    done = stored_finished_keys(out_dir / STORE_NAME)
    for cell in cells:
        mark = "done" if cell.key in done else "todo"
        print(f"{cell.key[:12]}  {mark}  {cell.kind:6s}  {cell.label()}")
    todo = [c for c in cells if c.key not in done]
    est = plan_seconds(
        profile, plan_for(profile, plan_groups(todo), art), art.earlier_trainings(cells)
    )
    print(
        f"{profile.name}: {len(cells)} cells ({len(cells) - len(todo)} finished), "
        f"{len(todo)} to run, estimated {est / 60:.1f} min on a 2-core CPU (rough; the run "
        "prints a measured ETA per cell)"
    )
    return 0
