"""Accuracy of a model on a split under a modality condition.

Static conditions (``all``, ``drop:x``) feed only the present modalities, exactly as a
device whose sensor is gone would: absent tokenizers/encoders are skipped. Random
per-sample dropout passes the full inputs with a ``(B, M)`` ``present`` mask, which the
model uses to mask those samples' tokens. The mask is drawn from ``seed``, so two methods
evaluated under ``random:0.3`` see the same missing sensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sentryfuse.conditions import Condition, standard_conditions
from sentryfuse.data.base import Split
from sentryfuse.errors import PruneError


def _model_modalities(model: nn.Module) -> tuple[list[str], list[str]]:
    """(all modality names in mask order, those the model still has encoders for)."""
    names = [m.name for m in model.config.modalities]
    have = list(getattr(model.config, "present", None) or names)
    return names, have


@torch.no_grad()
def predict(
    model: nn.Module,
    split: Split,
    condition: Condition,
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> np.ndarray:
    """Predicted class per sample ``(N,)`` under ``condition``."""
    names, have = _model_modalities(model)
    static = condition.static_present(names)
    mask = None
    if static is not None:
        missing = [m for m in static if m not in have]
        if missing:
            raise PruneError(
                f"condition '{condition.label}' needs {', '.join(missing)}, which this "
                f"pruned model no longer has; evaluate it under a condition within {have}"
            )
        feed_names = list(static)
    else:
        rng = np.random.default_rng(seed)
        # Random dropout among the modalities the model has; the rest are absent throughout.
        sub = condition.present_mask(len(split), have, rng)
        mask = np.zeros((len(split), len(names)), dtype=bool)
        mask[:, [names.index(m) for m in have]] = sub
        feed_names = have
    was_training = model.training
    model.eval()
    preds = []
    try:
        for start in range(0, len(split), batch_size):
            sl = slice(start, start + batch_size)
            inputs = {m: torch.from_numpy(np.ascontiguousarray(split.x[m][sl])) for m in feed_names}
            present = None if mask is None else torch.from_numpy(mask[sl])
            preds.append(model(inputs, present).argmax(dim=-1).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def evaluate_accuracy(
    model: nn.Module,
    split: Split,
    condition: Condition,
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> float:
    """Top-1 accuracy of ``model`` on ``split`` under ``condition``."""
    if len(split) == 0:
        raise PruneError("cannot evaluate on an empty split; pass a split with samples")
    pred = predict(model, split, condition, seed=seed, batch_size=batch_size)
    return float((pred == split.y).mean())


def evaluate_conditions(
    model: nn.Module,
    split: Split,
    conditions: Sequence[Condition] | None = None,
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """``{condition label: accuracy}``; default: all, each modality missing, random:0.3."""
    names, _ = _model_modalities(model)
    conds = list(conditions) if conditions is not None else standard_conditions(names)
    return {
        c.label: evaluate_accuracy(model, split, c, seed=seed, batch_size=batch_size) for c in conds
    }
