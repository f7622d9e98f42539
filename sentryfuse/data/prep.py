"""Shared preparation steps: windows, splits, standardisation, small slices.

Every loader ends the same way (standardise with train statistics, validate), and every
consumer may ask for a small, class-balanced slice, so those steps live here once.
"""

from __future__ import annotations

import numpy as np

from sentryfuse.data.base import MultimodalDataset, Split


def window_starts(length: int, window: int, hop: int) -> np.ndarray:
    """Start indices of every full window of ``window`` samples, ``hop`` apart."""
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, hop, dtype=np.int64)


def runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """Contiguous runs of equal values as ``(start, stop, value)``; stop is exclusive."""
    if len(values) == 0:
        return []
    edges = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(values)]])
    return [(int(a), int(b), int(values[a])) for a, b in zip(starts, stops, strict=True)]


def stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split into sorted (train, test) index arrays."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over samples and time of an ``(N, T, C)`` array.

    A near-constant channel gets std 1 so it is centred but never blown up.
    """
    mean = x.mean(axis=(0, 1), dtype=np.float64)
    std = x.std(axis=(0, 1), dtype=np.float64)
    std = np.where(std < 1e-6, 1.0, std)
    return mean, std


def standardize(
    train: Split, test: Split, modalities: list[str] | tuple[str, ...]
) -> tuple[Split, Split, dict[str, dict[str, list[float]]]]:
    """Standardise the named modalities with train statistics (no test leakage)."""
    stats: dict[str, dict[str, list[float]]] = {}
    x_tr, x_te = dict(train.x), dict(test.x)
    for name in modalities:
        mean, std = channel_stats(x_tr[name])
        x_tr[name] = ((x_tr[name] - mean) / std).astype(np.float32)
        x_te[name] = ((x_te[name] - mean) / std).astype(np.float32)
        stats[name] = {"mean": mean.tolist(), "std": std.tolist()}
    return (
        Split(x_tr, train.y, train.subjects),
        Split(x_te, test.y, test.subjects),
        stats,
    )


def balanced_slice(split: Split, n: int | None, seed: int) -> Split:
    """At most ``n`` samples, classes interleaved so a tiny slice still has every class.

    Samples keep their original order inside the slice, so a slice of a time-ordered
    split is still time-ordered.
    """
    if n is None or n >= len(split):
        return split
    if n < 1:
        return split.take(np.zeros(0, dtype=np.int64))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split))
    y = split.y[order]
    rank = np.zeros(len(order), dtype=np.int64)  # position of each sample within its class
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        rank[members] = np.arange(len(members))
    # sort by (rank within class, random tie-break) -> round-robin over classes
    pick = order[np.lexsort((rng.random(len(order)), rank))[:n]]
    return split.take(np.sort(pick))


def slice_dataset(
    ds: MultimodalDataset, max_train: int | None, max_test: int | None, seed: int
) -> MultimodalDataset:
    """The dataset with both splits cut to at most the given sizes."""
    if max_train is None and max_test is None:
        return ds
    meta = dict(ds.meta, max_train=max_train, max_test=max_test, slice_seed=seed)
    return MultimodalDataset(
        ds.name,
        ds.modalities,
        ds.classes,
        balanced_slice(ds.train, max_train, seed),
        balanced_slice(ds.test, max_test, seed + 1),
        meta,
    )
