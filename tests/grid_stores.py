"""Small real results stores (``harness/schema.sql``) of one HAPT grid, for the tests of
the paper's protocol: the accuracies are given, every other column is plausible."""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path

SEEDS = (0, 1, 2)
BACKBONES = ("early", "late")
TRAIN = {"size": "small", "epochs": 6, "batch_size": 64, "lr": 0.001}
EVAL = {"max_train": None, "max_test": 1000}


def grid_store(
    path: Path,
    accuracy: dict[tuple[str, str, float], list[float]],
    *,
    subnet: bool,
    train: dict | None = None,
    profile: str = "grid",
) -> Path:
    """One ok static cell per (method, condition, sparsity) key of ``accuracy`` × backbone
    × seed (its list: one accuracy fraction per seed, the same on every backbone), with
    ``[train] subnet`` and ``train`` (default ``TRAIN``) in every cell's definition."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(resources.files("harness").joinpath("schema.sql").read_text())
    db.execute(
        "INSERT INTO runs (run_id, profile_name, profile_hash, profile_json, started_at,"
        " packages_json, fingerprint_json, fingerprint_hash) VALUES"
        " ('r', ?, 'h', '{}', '2026-12-02T00:00:00Z', '{}', '{}', 'f')",
        (profile,),
    )
    settings = {"train": {**(train or TRAIN), "subnet": subnet}, "eval": EVAL}
    i = 0
    for (method, condition, sparsity), per_seed in accuracy.items():
        for backbone in BACKBONES:
            for seed, acc in zip(SEEDS, per_seed, strict=True):
                i += 1
                definition = {"method": method, "condition": condition, "sparsity": sparsity,
                              "backbone": backbone, "seed": seed, "settings": settings}  # fmt: skip
                db.execute(
                    "INSERT INTO cells (cell_key, run_id, kind, definition_json, dataset,"
                    " backbone, attention, method, sparsity, condition, target, runtime,"
                    " power_mode, seed, status, accuracy, n_eval, params, gflops,"
                    " latency_ms_p50, started_at, finished_at) VALUES (?, 'r', 'static', ?,"
                    " 'hapt', ?, 'sentryattend', ?, ?, ?, 'cpu', 'onnxruntime', 'single', ?,"
                    " 'ok', ?, 1000, ?, ?, ?, 't', 't')",
                    (f"k{i}", json.dumps(definition), backbone, method, sparsity, condition,
                     seed, acc, int(1000 * (1 - sparsity)), 1.0 - sparsity, 2.0 - sparsity),
                )  # fmt: skip
    db.commit()
    db.close()
    return path


# The two stores of the tests: prunability-trained, the full model loses 1.0 point
# without the gyroscope (every seed and backbone) and none with all sensors; SentryGate
# 86 / 72 at 0.5 against magnitude's 75 / 50 on the ordinary checkpoints.
PRUNABLE = {
    ("dense", "all", 0.0): [0.90, 0.91, 0.92],
    ("dense", "drop:gyro", 0.0): [0.79, 0.80, 0.81],
    ("sentrygate", "all", 0.5): [0.85, 0.86, 0.87],
    ("sentrygate", "drop:gyro", 0.5): [0.70, 0.72, 0.74],
    ("magnitude", "all", 0.5): [0.80, 0.80, 0.80],
    ("magnitude", "drop:gyro", 0.5): [0.60, 0.60, 0.60],
}
ORDINARY = {
    ("dense", "all", 0.0): [0.90, 0.91, 0.92],
    ("dense", "drop:gyro", 0.0): [0.80, 0.81, 0.82],
    ("magnitude", "all", 0.5): [0.75, 0.75, 0.75],
    ("magnitude", "drop:gyro", 0.5): [0.50, 0.50, 0.50],
}
