"""``sentryfuse eval PATH``: accuracy of a checkpoint or pruned variant per condition.

Prints, per modality condition, the top-1 accuracy on the test split with its Wilson
95% interval and the number of test samples, so two variants can be told apart (or
not) at a glance. The dataset comes from the checkpoint (for a variant: from the
checkpoint it was pruned from) unless ``--dataset`` names another.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="VARIANT_OR_CKPT", type=Path,
                        help="a `sentryfuse prune --out` or `sentryfuse train --out` folder")  # fmt: skip
    parser.add_argument("--condition", action="append", default=[], metavar="C",
                        help="all | drop:MOD[+MOD] | random:P (repeatable; default: all, "
                             "each sensor dropped, random:0.3 — those the model can run)")  # fmt: skip
    parser.add_argument(
        "--dataset", default=None, help="dataset name or .npz path (default: the model's)"
    )
    parser.add_argument("--max-test", type=int, default=None, help="evaluate on N test samples")
    parser.add_argument("--seed", type=int, default=0, help="seed of random:P masks and slices")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _dataset_of(path: Path, manifest: dict) -> str | None:
    """The dataset a model was trained on: its own record, or its source checkpoint's."""
    from sentryfuse.errors import ModelError
    from sentryfuse.models.variant import read_manifest

    ds = manifest.get("dataset")
    if not isinstance(ds, dict):
        source = (manifest.get("meta") or {}).get("source_checkpoint")
        if not source:
            return None
        try:
            ds = read_manifest(Path(source)).get("dataset")
        except ModelError:  # the source checkpoint moved: the caller asks for --dataset
            return None
        if not isinstance(ds, dict):
            return None
    return ds.get("path") or ds.get("name")


def run(args: argparse.Namespace) -> int:
    from sentryfuse.conditions import parse_condition, standard_conditions
    from sentryfuse.data import load_dataset
    from sentryfuse.errors import ModelError, PruneError
    from sentryfuse.evaluate import predict
    from sentryfuse.models.variant import load_variant, read_manifest

    if args.max_test is not None and args.max_test < 1:
        raise PruneError(f"--max-test must be at least 1, got {args.max_test}")
    manifest = read_manifest(args.path)
    model = load_variant(args.path)
    names = [m.name for m in model.config.modalities]
    have = list(getattr(model.config, "present", None) or names)
    conds = [parse_condition(c, names) for c in args.condition]
    if not conds:
        conds = [c for c in standard_conditions(names)
                 if c.kind == "random" or set(c.static_present(names) or ()) <= set(have)]  # fmt: skip
    name = args.dataset or _dataset_of(args.path, manifest)
    if not name:
        raise ModelError(
            f"{args.path} does not say which dataset it was trained on; pass --dataset"
        )
    test = load_dataset(name, max_test=args.max_test, seed=args.seed).test
    rows = []
    from reports.intervals import wilson

    for cond in conds:
        pred = predict(model, test, cond, seed=args.seed)
        correct, n = int((pred == test.y).sum()), len(test)
        ci = wilson(correct / n, n)  # the one Wilson interval the reports use too
        lo, hi = ci.lo, ci.hi
        rows.append({"condition": cond.label, "accuracy": correct / n, "ci95_low": lo,
                     "ci95_high": hi, "n": n})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len("condition"), *(len(r["condition"]) for r in rows)) + 2
    print(f"{args.path} on {name}")
    print(f"{'condition':<{width}}{'accuracy':>9}  {'95% interval (Wilson)':<22}{'n':>7}")
    for r in rows:
        ci = f"[{100 * r['ci95_low']:.1f}%, {100 * r['ci95_high']:.1f}%]"
        print(f"{r['condition']:<{width}}{100 * r['accuracy']:>8.1f}%  {ci:<22}{r['n']:>7}")
    return 0
