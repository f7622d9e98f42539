"""The calibration sample of data-using pruning baselines (Fisher, Taylor-calib, Taylor).

One rule for every route (``sentryfuse prune`` and a profile's cells), so the same
checkpoint, method and seed prune the same way wherever they are asked for. The sample
is seeded and class-stratified: each class gets its share of ``n`` (proportional to its
size, at least one sample while ``n`` allows), drawn at random within the class. Taking
the *first* samples instead would, on a dataset stored sorted by class, calibrate on a
few classes only.
"""

from __future__ import annotations

import numpy as np

from sentryfuse.data.base import Split

DEFAULT_CALIB_SAMPLES = 128


def stratified_indices(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified sample of ``min(n, len(y))`` labels."""
    y = np.asarray(y)
    n = max(0, min(int(n), len(y)))
    if n == len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    share = counts / counts.sum() * n
    quota = np.floor(share).astype(int)
    if n >= len(classes):  # every class at least once
        quota = np.maximum(quota, 1)
    while quota.sum() > n:  # the minimum of one overshot: take back from the largest
        quota[np.argmax(quota - share)] -= 1
    remainder = share - quota
    while quota.sum() < n:  # largest remainders first, never beyond a class's size
        room = np.where(quota < counts, remainder, -np.inf)
        i = int(np.argmax(room))
        quota[i] += 1
        remainder[i] = -np.inf if quota[i] >= counts[i] else remainder[i] - 1.0
    picks = [
        rng.choice(np.flatnonzero(y == c), size=q, replace=False)
        for c, q in zip(classes, quota, strict=True)
        if q > 0
    ]
    return np.sort(np.concatenate(picks)) if picks else np.arange(0)


def calibration_sample(train: Split, n: int, seed: int) -> Split:
    """The calibration sub-split of ``train``: ``n`` samples, seeded, class-stratified."""
    return train.take(stratified_indices(train.y, n, seed))
