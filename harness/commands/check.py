"""``sentryfuse check``: the release regression gate (candidate run vs baseline run).

Exit codes scripts can rely on:
  0  pass: no regression, and every tested change is ruled out at its threshold
  1  regression: a change beyond its threshold that the trial-level test confirms
     (or a cell that was ok in the baseline failed in the candidate)
  3  inconclusive: no regression, but the noise could not rule one out for some cell
     (the output gives the smallest change the pair could have detected); also when the
     runs have too few trials for any test (one line; schema-1 stores have one trial)
  2  unusable input: missing or corrupt store, different devices, bad thresholds file
     or --reference, no matching cells; with --interleave, a run directory whose
     checkpoints are not on disk

``--interleave`` re-measures both runs' variants now (``harness.remeasure``) and judges
the paired per-round trials (``reports.check_interleaved``).
"""

from __future__ import annotations

import argparse

EPILOG = """exit codes: 0 pass, 1 regression, 3 inconclusive (noise too large to rule out a
change of the threshold's size, or too few trials: a 95%% interval needs at least 4
trials per run), 2 unusable input.

Replicates are trials (independent timed windows), not the queries of one window.
A regression needs the change above its threshold AND its 95%% interval above half the
threshold; a pass needs the interval below the threshold."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the check's options."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
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
    parser.add_argument(
        "--reference",
        default="auto",
        metavar="SELECTOR",
        help="cancel machine-wide drift between the runs: divide every trial by the trial "
        "of the same round of a reference cell of the same target/runtime/power mode. "
        "'auto' (default): the dense cell of the group; 'none': compare unnormalised; or "
        "FIELD=VALUE[,FIELD=VALUE], e.g. method=dense,condition=all",
    )
    parser.add_argument("--allow-different-device", action="store_true",
                        help="compare cells even when the device fingerprints differ")  # fmt: skip
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="re-measure both runs' variants now on this device, alternately in rounds, and "
        "judge latency p50 and energy on those paired trials (needs both run directories' "
        "checkpoints; the most reliable mode: drift hits both sides alike)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="with --interleave: trials per side (default: the profile's [measure] trials; "
        "≥ 6 gives a paired interval)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the verdict and its tables; return 0, 1 or 3."""
    from reports.check import compare_stores, parse_reference
    from reports.check_render import render_check
    from reports.fleet import device_notes, device_view
    from reports.store import load_store
    from reports.thresholds import load_thresholds

    thresholds = load_thresholds(args.thresholds)
    parse_reference(args.reference)  # a bad selector is exit 2 before any store is read
    if args.interleave:
        return _interleaved(args, thresholds)
    if args.trials is not None:
        from sentryfuse.errors import HarnessError

        raise HarnessError("--trials applies only with --interleave; add --interleave")
    baseline = load_store(args.baseline)
    candidate = load_store(args.candidate)
    # fleet runs: each cell is judged against the cell of the same device fingerprint
    result = compare_stores(device_view(baseline), device_view(candidate), thresholds,
                            reference=args.reference,
                            allow_different_device=args.allow_different_device)  # fmt: skip
    result.notes.extend(device_notes(baseline, candidate))
    print(render_check(result, baseline, candidate, thresholds, args.reference), end="")
    return result.exit_code


def _interleaved(args: argparse.Namespace, thresholds: object) -> int:
    """Re-measure now (harness) and judge the paired trials (reports)."""
    from harness.remeasure import remeasure_interleaved
    from reports.check_interleaved import compare_remeasured, render_remeasured
    from sentryfuse.errors import HarnessError

    if args.trials is not None and args.trials < 1:
        raise HarnessError(f"--trials must be at least 1, got {args.trials}")
    cells = remeasure_interleaved(args.baseline, args.candidate, trials=args.trials)
    result = compare_remeasured(cells, thresholds)
    print(render_remeasured(result, args.baseline, args.candidate, thresholds, args.trials),
          end="")  # fmt: skip
    return result.exit_code
