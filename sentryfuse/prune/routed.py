"""Accuracy under per-sample modality dropout with one sub-network per present pattern.

Under ``random:p`` (or bursty) dropout each sample has its own set of working sensors,
and the device reads which ones before it runs the model. A zero-shot pruner whose
scores depend on the present set (SentryGate's scorer, calibration Taylor) can therefore
prune once per pattern and run every sample on its pattern's sub-network — which is what
SentryGate is for. Pruning a single all-present model and masking the missing sensors'
tokens (what a static cell does) asks the scorer for the wrong pattern.

``routed_predict`` draws the per-sample mask exactly as ``sentryfuse.evaluate.predict``
does (same condition, same seed, same modality order), so routed and masked accuracies
of different methods are computed on the same missing sensors. Every method is routed
the same way, so a difference between methods still comes from their scores alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch import nn

from sentryfuse.conditions import ALL, Condition
from sentryfuse.data.base import Split
from sentryfuse.errors import PruneError

VariantFor = Callable[[tuple[str, ...]], nn.Module]  # present modality names -> model


def present_patterns(
    condition, modalities: Sequence[str], n: int, seed: int
) -> list[tuple[tuple[str, ...], np.ndarray]]:
    """``[(present names, sample rows)]`` of the seeded per-sample mask, most rows first."""
    mask = condition.present_mask(n, list(modalities), np.random.default_rng(seed))
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    out = []
    for i, row in enumerate(patterns):
        names = tuple(m for m, p in zip(modalities, row.tolist(), strict=True) if p)
        out.append((names, np.flatnonzero(inverse == i)))
    out.sort(key=lambda g: (-len(g[1]), g[0]))
    return out


def routed_predict(
    variant_for: VariantFor,
    split: Split,
    condition,
    modalities: Sequence[str],
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[np.ndarray, int]:
    """(predicted class per sample, number of patterns/sub-networks used)."""
    from sentryfuse.evaluate import predict

    pred = np.zeros(len(split), dtype=np.int64)
    groups = present_patterns(condition, modalities, len(split), seed)
    for present, rows in groups:
        absent = tuple(m for m in modalities if m not in present)
        static = Condition("drop", dropped=absent) if absent else ALL
        model = variant_for(present)
        pred[rows] = predict(model, split.take(rows), static, seed=seed, batch_size=batch_size)
    return pred, len(groups)


def routed_accuracy(
    variant_for: VariantFor,
    split: Split,
    condition,
    modalities: Sequence[str],
    *,
    seed: int = 0,
    batch_size: int = 256,
) -> tuple[float, int]:
    """(top-1 accuracy with every sample on its pattern's sub-network, patterns used)."""
    if len(split) == 0:
        raise PruneError("cannot evaluate on an empty split; pass a split with samples")
    pred, k = routed_predict(
        variant_for, split, condition, modalities, seed=seed, batch_size=batch_size
    )
    return float((pred == split.y).mean()), k
