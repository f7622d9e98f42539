"""``sentryfuse train``: train a backbone + SentryGate scorer into a checkpoint directory.

Names are validated before any data is loaded or any file written, so a typo costs one
line and exit code 2, not a traceback after minutes of loading.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sentryfuse.train_config import SUBNET_GRADS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", required=True, help="hapt | avdigits | crowdsignals | synthetic | PATH.npz"
    )
    parser.add_argument("--backbone", required=True, help="early | late | bottleneck")
    parser.add_argument(
        "--attention", default="dense", help="dense | sentryattend (default: dense)"
    )
    parser.add_argument("--out", required=True, type=Path, help="checkpoint directory to write")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 20)")
    parser.add_argument("--size", default="small", help="model size: small | tiny (default: small)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-train", type=int, default=None, help="train on N samples (quick runs)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: 1e-3)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--no-subnet", action="store_true",
        help="old recipe: no prunability-aware sub-network passes",
    )  # fmt: skip
    parser.add_argument(
        "--subnet-ranking", choices=("scorer", "random"), default=None,
        help="units removed in sub-network passes: the scorer's choice (default) or random",
    )  # fmt: skip
    parser.add_argument(
        "--no-distill", action="store_true", help="sub-networks learn from labels only"
    )
    parser.add_argument(
        "--subnet-freeze-epochs", type=float, default=None, metavar="N",
        help="last N epochs train with SentryGate's ranking frozen (default: from where the "
        "sub-network passes start; 0: the ranking keeps learning and is refit at the end)",
    )  # fmt: skip
    parser.add_argument(
        "--subnet-weight", type=float, default=None, metavar="W",
        help="weight of the sub-network passes against the full model's (default: 0.5)",
    )  # fmt: skip
    parser.add_argument(
        "--subnet-grad", choices=SUBNET_GRADS, default=None,
        help="the passes' gradient: its own Adam update (separate, default) or added to "
        "the full model's (sum: the recipe before the eighth build)",
    )  # fmt: skip


def _validate_names(args: argparse.Namespace) -> None:
    from sentryfuse.data import dataset_names
    from sentryfuse.errors import DatasetError, ModelError, unknown_name
    from sentryfuse.models.config import ATTENTIONS, BACKBONES, SIZES

    if not args.dataset.endswith(".npz") and args.dataset not in dataset_names():
        raise DatasetError(
            unknown_name("dataset", args.dataset, dataset_names()) + ", or a path to a .npz"
        )
    for kind, value, valid in (
        ("backbone", args.backbone, BACKBONES),
        ("attention", args.attention, ATTENTIONS),
        ("model size", args.size, SIZES),
    ):
        if value not in valid:
            raise ModelError(unknown_name(kind, value, valid))
    for flag, value in (("--epochs", args.epochs), ("--max-train", args.max_train),
                        ("--threads", args.threads), ("--batch-size", args.batch_size)):  # fmt: skip
        if value is not None and value < 1:
            raise ModelError(f"{flag} must be at least 1, got {value}")
    if args.lr is not None and not args.lr > 0:
        raise ModelError(f"--lr must be positive, got {args.lr}")


def run(args: argparse.Namespace) -> int:
    _validate_names(args)
    from sentryfuse.checkpoint import check_out_dir
    from sentryfuse.outpath import check_can_create

    check_out_dir(args.out)  # before loading data or training: a bad --out costs one line
    check_can_create(args.out, "--out")
    from sentryfuse.data import load_dataset
    from sentryfuse.models import model_config_for
    from sentryfuse.train import TrainConfig, train

    overrides = {
        k: v
        for k, v in dict(
            epochs=args.epochs, seed=args.seed, max_train=args.max_train, threads=args.threads,
            lr=args.lr, batch_size=args.batch_size, subnet_ranking=args.subnet_ranking,
            subnet=False if args.no_subnet else None, distill=False if args.no_distill else None,
            subnet_freeze_epochs=args.subnet_freeze_epochs, subnet_weight=args.subnet_weight,
            subnet_grad=args.subnet_grad,
        ).items()
        if v is not None
    }  # fmt: skip
    cfg = TrainConfig(**overrides)
    dataset = load_dataset(args.dataset, seed=args.seed)
    model_config = model_config_for(dataset, args.backbone, args.attention, size=args.size)
    out = train(
        dataset, model_config, cfg, args.out, progress=not args.no_progress and sys.stderr.isatty()
    )
    metrics = json.loads((out / "metrics.json").read_text())
    acc = "  ".join(f"{k}={v:.4f}" for k, v in metrics["accuracy"].items())
    print(f"wrote {out} ({metrics['params']:,} params, {metrics['train_s']:.1f} s)")
    print(f"accuracy: {acc}")
    return 0
