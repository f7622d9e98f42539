"""``benchmarks/paper_grid_summary.py`` on two real stores: the paper's protocol and the
full model's cost, paired by backbone and seed."""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from benchmarks.paper_grid_summary import main

SEEDS = (0, 1, 2)
BACKBONES = ("early", "late")
CONDITIONS = ("all", "drop:gyro")


def _store(path: Path, accuracy: dict[tuple[str, str, float], list[float]]) -> str:
    """A store from ``harness/schema.sql`` with one cell per (method, condition, sparsity)
    × backbone × seed; ``accuracy`` gives each seed's accuracy (fraction), the same on
    every backbone."""
    db = sqlite3.connect(path)
    db.executescript(resources.files("harness").joinpath("schema.sql").read_text())
    i = 0
    for (method, condition, sparsity), per_seed in accuracy.items():
        for backbone in BACKBONES:
            for seed, acc in zip(SEEDS, per_seed, strict=True):
                i += 1
                db.execute(
                    "INSERT INTO cells (cell_key, run_id, kind, definition_json, dataset,"
                    " backbone, attention, method, sparsity, condition, target, runtime,"
                    " power_mode, seed, status, accuracy, n_eval, params, gflops,"
                    " latency_ms_p50, started_at, finished_at) VALUES (?, 'r', 'static', '{}',"
                    " 'hapt', ?, 'sentryattend', ?, ?, ?, 'cpu', 'onnxruntime', 'single', ?,"
                    " 'ok', ?, 1000, ?, ?, ?, 't', 't')",
                    (f"k{i}", backbone, method, sparsity, condition, seed, acc,
                     int(1000 * (1 - sparsity)), 1.0 - sparsity, 2.0 - sparsity),
                )  # fmt: skip
    db.commit()
    db.close()
    return str(path)


def test_full_model_cost_and_paper_protocol_pair_the_two_stores(tmp_path, capsys) -> None:
    # prunable-trained: the full model loses 1.0 point without the gyroscope (every seed
    # and backbone: a zero-width interval), none with all sensors; SentryGate at 0.5
    prunable = _store(
        tmp_path / "prunable.sqlite",
        {
            ("dense", "all", 0.0): [0.90, 0.91, 0.92],
            ("dense", "drop:gyro", 0.0): [0.79, 0.80, 0.81],
            ("sentrygate", "all", 0.5): [0.85, 0.86, 0.87],
            ("sentrygate", "drop:gyro", 0.5): [0.70, 0.72, 0.74],
            ("magnitude", "all", 0.5): [0.80, 0.80, 0.80],
            ("magnitude", "drop:gyro", 0.5): [0.60, 0.60, 0.60],
        },
    )
    ordinary = _store(
        tmp_path / "ordinary.sqlite",
        {
            ("dense", "all", 0.0): [0.90, 0.91, 0.92],
            ("dense", "drop:gyro", 0.0): [0.80, 0.81, 0.82],
            ("magnitude", "all", 0.5): [0.75, 0.75, 0.75],
            ("magnitude", "drop:gyro", 0.5): [0.50, 0.50, 0.50],
        },
    )
    main(prunable, ordinary)
    out = capsys.readouterr().out
    assert (
        "| hapt | all | 91.0 | 91.0 | +0.00 [+0.0, +0.0] (3 seeds, paired t interval) | yes |"
        in out
    )
    assert (
        "| hapt | drop:gyro | 80.0 | 81.0 | -1.00 [-1.0, -1.0] (3 seeds, paired t interval) | no |"
        in out
    )
    assert "1 of 2 dataset × condition means within 0.5 points." in out
    # paper protocol: SentryGate (prunable) 86 / 72 vs magnitude on the ordinary 75 / 50
    assert (
        "| all sensors | 86.0 | magnitude | +11.0 [+8.5, +13.5] (3 seeds, paired t interval)" in out
    )
    assert "| dropout | 72.0 | magnitude | +22.0 [+17.0, +27.0] (3 seeds, paired t interval)" in out
    # no fine-tuned method in the store: its gap says so instead of printing nan
    assert "| overall | 12 | 79.0 | magnitude | +9.0" in out and "nan" not in out
