"""``sentryfuse prune``: zero-shot prune a checkpoint into a physically smaller variant.

Everything a user can get wrong (sparsity, method, budget, modality names, a checkpoint
without a scorer for ``sentrygate``) is checked before any data is loaded, and the
variant is written only after pruning succeeded, so bad input costs one line, exit code
2 and no half-written directory.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", type=Path, help="checkpoint directory (sentryfuse train --out)"
    )
    parser.add_argument("--method", required=True,
                        help="random | magnitude | taylor | fisher | taylor-calib | sentrygate")  # fmt: skip
    parser.add_argument("--sparsity", required=True, help="fraction to remove, in [0, 1)")
    parser.add_argument("--drop", nargs="+", action="extend", default=[], metavar="MODALITY",
                        help="modalities absent at deployment (repeatable)")  # fmt: skip
    parser.add_argument("--budget", default="units", help="units | flops (default: units)")
    parser.add_argument("--calib-samples", type=int, default=None,
                        help="calibration samples for taylor/taylor-calib/fisher: seeded, "
                             "class-stratified (default: 128, as in profiles)")  # fmt: skip
    parser.add_argument("--dataset", default=None,
                        help="calibration dataset (default: the checkpoint's own, by name "
                             "or by the .npz path it was trained from)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, type=Path, help="variant directory to write")


def _calibration(args: argparse.Namespace, ckpt, method: str):
    """The seeded, class-stratified calibration sample, only for data-driven methods."""
    from sentryfuse.calibration import DEFAULT_CALIB_SAMPLES, calibration_sample
    from sentryfuse.data import load_dataset
    from sentryfuse.errors import PruneError
    from sentryfuse.prune.api import DATA_METHODS

    if method not in DATA_METHODS:
        return None
    n = DEFAULT_CALIB_SAMPLES if args.calib_samples is None else args.calib_samples
    if n < 1:
        raise PruneError(f"--calib-samples must be at least 1, got {n}")
    source = ckpt.meta.get("dataset") or {}
    name = args.dataset or source.get("path") or source.get("name")
    if not name:
        raise PruneError("the checkpoint does not name its dataset; pass --dataset NAME")
    if not args.dataset and source.get("path") and not Path(name).is_file():
        raise PruneError(
            f"the checkpoint was trained from {name}, which is gone; pass --dataset PATH.npz"
        )
    return calibration_sample(load_dataset(name, seed=args.seed).train, n, args.seed)


def _example(model, present) -> dict:
    import torch

    mods = [m for m in model.config.modalities if present is None or m.name in present]
    return {m.name: torch.zeros(1, m.steps, m.features) for m in mods}


def run(args: argparse.Namespace) -> int:
    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.errors import PruneError
    from sentryfuse.models import count_gflops, count_params, save_variant
    from sentryfuse.outpath import check_can_create
    from sentryfuse.prune import check_method, check_sparsity, prune
    from sentryfuse.prune.api import check_present
    from sentryfuse.prune.budget import check_budget

    method = check_method(args.method)
    try:
        sparsity = check_sparsity(float(args.sparsity))
    except ValueError:
        raise PruneError(f"--sparsity must be a number in [0, 1), got '{args.sparsity}'") from None
    budget = check_budget(args.budget)
    out = args.out
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").exists())
    ):
        raise PruneError(f"{out} exists and is not a variant directory; pass a new or empty --out")
    check_can_create(out, "--out")
    ckpt = load_checkpoint(args.checkpoint)
    mods = ckpt.modalities
    present = None
    if args.drop:
        for name in args.drop:  # unknown names first: the kept list below cannot show them
            check_present(mods, [name])
        present = check_present(mods, [m for m in mods if m not in args.drop])
    if method == "sentrygate" and ckpt.scorer is None:
        from sentryfuse.prune.scores import sentrygate_scores

        sentrygate_scores(None, mods, present)
    calib = _calibration(args, ckpt, method)
    variant = prune(
        ckpt, method, sparsity, present=present, calib=calib, budget=budget, seed=args.seed
    )
    params0, params1 = count_params(ckpt.model), count_params(variant.model)
    gf0 = count_gflops(ckpt.model, _example(ckpt.model, present))
    gf1 = count_gflops(variant.model, _example(variant.model, present))
    meta = {
        "source_checkpoint": str(args.checkpoint),
        "method": method,
        "sparsity": sparsity,
        "budget": budget,
        "present": None if present is None else list(present),
        "achieved_sparsity": round(variant.achieved_sparsity, 6),
        "prune_ms": round(variant.prune_ms, 3),
        "calib_samples": 0 if calib is None else len(calib),
        "seed": args.seed,
        "details": variant.details,
    }
    try:
        save_variant(variant.model, out, meta)
    except OSError as exc:
        raise PruneError(
            f"cannot write the variant to {out} ({exc.strerror}); choose another --out"
        ) from None
    cond = "all modalities" if present is None else f"present: {', '.join(present)}"
    print(f"wrote {out} ({method}, sparsity {sparsity:g} by {budget}, {cond})")
    print(f"params: {params0:,} -> {params1:,} ({100 * (1 - params1 / params0):.1f}% fewer)")
    print(f"GFLOPs/sample: {gf0:.4f} -> {gf1:.4f} ({100 * (1 - gf1 / gf0):.1f}% fewer)")
    print(
        f"prune time: {variant.prune_ms:.1f} ms (achieved {budget} sparsity {variant.achieved_sparsity:.3f})"
    )
    return 0
