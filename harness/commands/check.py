"""``sentryfuse check``: the release regression gate (candidate run vs baseline run).

Exit codes scripts can rely on: 0 pass, 1 regression, 2 unusable input (missing or
corrupt store, different devices, bad thresholds file).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the check's options."""
    parser.add_argument(
        "--baseline",
        required=True,
        metavar="RUN_A",
        help="baseline run directory (holding results.sqlite) or store path",
    )
    parser.add_argument(
        "--candidate", required=True, metavar="RUN_B", help="candidate run directory or store path"
    )
    parser.add_argument(
        "--thresholds", metavar="FILE", help="TOML file overriding per-metric thresholds"
    )
    parser.add_argument("--allow-different-device", action="store_true",
                        help="compare cells even when the device fingerprints differ")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Print the Markdown table of regressions and improvements; return 0 or 1."""
    from reports.check import compare_stores, render_check
    from reports.store import load_store
    from reports.thresholds import load_thresholds

    thresholds = load_thresholds(args.thresholds)
    baseline = load_store(args.baseline)
    candidate = load_store(args.candidate)
    result = compare_stores(baseline, candidate, thresholds,
                            allow_different_device=args.allow_different_device)  # fmt: skip
    print(render_check(result, baseline, candidate, thresholds), end="")
    return result.exit_code
