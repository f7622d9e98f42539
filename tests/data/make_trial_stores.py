"""Build GENERATED schema-2 stores (cells measured as trials) for the gate tests.

Not measurements: a seeded process model on top of ``make_stores``' grid. Each cell is
measured as ``n_trials`` trials interleaved in rounds; a trial's median is

    true latency × run drift × round drift (shared by every cell of the round) × noise,

so a test can plant machine-wide drift (``run_drift``) that a reference cell cancels,
round-to-round drift that only trial-level statistics see, and a regression
(``perturb``). Training seeds are replicates of accuracy: a seed's accuracy is fixed by
the seed (as seeded training is), so two runs of an unchanged model agree exactly.
Every run row says ``profile_name = 'generated-fixture'``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from make_stores import (
    FIXTURE_NOTE,
    SCHEMA_SQL,
    _fingerprint,
    grid,
    true_accuracy_pct,
    true_latency_ms,
)

# defn -> (latency factor, accuracy change in points[, energy factor])
Perturb = Callable[[dict], tuple[float, ...]]
V2_CELL_COLUMNS = {
    "trials": "INTEGER", "latency_ms_p50_ci_lo": "REAL", "latency_ms_p50_ci_hi": "REAL",
    "latency_trial_spread": "REAL", "energy_mj_ci_lo": "REAL", "energy_mj_ci_hi": "REAL",
    "energy_model": "TEXT", "unstable_reason": "TEXT", "accuracy_ci_lo": "REAL",
    "accuracy_ci_hi": "REAL",
}  # fmt: skip
TRIALS_DDL = """CREATE TABLE IF NOT EXISTS trials (
  cell_key TEXT NOT NULL, trial INTEGER NOT NULL, round INTEGER NOT NULL,
  latency_ms_p50 REAL, latency_ms_p99 REAL, latency_ms_mean REAL, n INTEGER,
  elapsed_s REAL, energy_mj_per_inference REAL, PRIMARY KEY (cell_key, trial))"""
POWER_W = 15.0  # the fixture's power model: energy = window time × a constant power
MAX_TRIAL_SPREAD = 0.10


def _schema_v2(conn: sqlite3.Connection) -> None:
    """The harness's schema, plus whatever of schema 2 it does not have yet."""
    conn.executescript(SCHEMA_SQL.read_text())
    have = {r[1] for r in conn.execute("PRAGMA table_info(cells)")}
    for col, kind in V2_CELL_COLUMNS.items():
        if col not in have:
            conn.execute(f"ALTER TABLE cells ADD COLUMN {col} {kind}")
    if "trial" not in {r[1] for r in conn.execute("PRAGMA table_info(latency_samples)")}:
        conn.execute("ALTER TABLE latency_samples ADD COLUMN trial INTEGER")
    conn.execute(TRIALS_DDL)
    conn.execute("PRAGMA user_version = 2")


def make_trial_store(path: Path, *, grid_name: str = "gate", seed: int = 0, n_trials: int = 7,
                     train_seeds: tuple[int, ...] = (0,), run_drift: float = 1.0,
                     round_sigma: float = 0.015, noise_sigma: float = 0.01,
                     samples_per_trial: int = 100, perturb: Perturb | None = None,
                     device: str = "Fixture CPU @ 3.0GHz") -> Path:  # fmt: skip
    """Write one generated schema-2 store. ``seed`` draws the measurement noise only;
    ``run_drift`` multiplies every latency of the run (a slower machine that day)."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    _schema_v2(conn)
    run_id = uuid.UUID(int=int(rng.integers(0, 2**63))).hex
    fp_json, fp_hash = _fingerprint(device)
    conn.execute(
        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
        (run_id, "generated-fixture", hashlib.sha256(grid_name.encode()).hexdigest(),
         json.dumps({"name": grid_name, "note": FIXTURE_NOTE}), "2025-01-01T00:00:00Z",
         "2025-01-01T01:00:00Z", None, json.dumps({"torch": "2.13.0"}), fp_json, fp_hash),
    )  # fmt: skip
    rounds = run_drift * rng.lognormal(0.0, round_sigma, n_trials)
    for base in grid(grid_name):
        for train_seed in train_seeds:
            d = {**base, "seed": train_seed}
            _write_cell(conn, rng, run_id, d, rounds, noise_sigma, samples_per_trial, perturb)
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    return path


def _write_cell(conn, rng, run_id, d, rounds, noise_sigma, k, perturb) -> None:  # noqa: ANN001
    lat_factor, acc_delta, *rest = perturb(d) if perturb else (1.0, 0.0)
    energy_factor = rest[0] if rest else 1.0
    definition = json.dumps(d, sort_keys=True)
    key = hashlib.sha256(definition.encode()).hexdigest()
    n_eval = 2000
    seed_effect = float(np.random.default_rng(1000 + d["seed"]).normal(0.0, 0.8))
    acc = round((true_accuracy_pct(d) + seed_effect + acc_delta) / 100 * n_eval) / n_eval
    true_ms = true_latency_ms(d) * lat_factor
    trials, samples = [], []
    for t, drift in enumerate(rounds):
        med = true_ms * drift * float(rng.lognormal(0.0, noise_sigma))
        s = med * rng.lognormal(0.0, 0.04, k)
        p50, p99 = float(np.median(s)), float(np.percentile(s, 99))
        elapsed = float(s.sum()) / 1e3
        trials.append((key, t, t, p50, p99, float(s.mean()), k, elapsed,
                       elapsed * POWER_W * 1e3 / k * energy_factor))  # fmt: skip
        samples += [(key, t * k + i, float(v), t) for i, v in enumerate(s)]
    meds = np.array([r[3] for r in trials])
    energy = np.array([r[8] for r in trials])
    spread = float((meds.max() - meds.min()) / np.median(meds))
    stable = spread <= MAX_TRIAL_SPREAD
    reason = None if stable else f"trial spread {spread:.3f} > {MAX_TRIAL_SPREAD}"
    src, sensor = (
        ("estimated", "cpu-power-model") if d["target"] == "cpu" else ("measured", "ina3221-sysfs")
    )
    conn.execute(
        "INSERT INTO cells (cell_key, run_id, kind, definition_json, dataset, backbone,"
        " attention, method, sparsity, condition, target, runtime, power_mode, seed, status,"
        " accuracy, n_eval, params, gflops, weights_mb, peak_memory_mb, latency_ms_p50,"
        " latency_ms_p99, latency_ms_mean, latency_n, stable, energy_mj_per_inference,"
        " energy_source, energy_sensor, extra_json, started_at, finished_at, trials,"
        " latency_ms_p50_ci_lo, latency_ms_p50_ci_hi, latency_trial_spread, energy_mj_ci_lo,"
        " energy_mj_ci_hi, energy_model, unstable_reason)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (key, run_id, d["kind"], definition, d["dataset"], d["backbone"], d["attention"],
         d["method"], d["sparsity"], d["condition"], d["target"], d["runtime"],
         d["power_mode"], d["seed"], "ok", acc, n_eval, 1_000_000, 0.3, 4.0, 200.0,
         float(np.median(meds)), float(np.median([r[4] for r in trials])),
         float(np.mean([r[5] for r in trials])), k * len(rounds), int(stable),
         float(np.median(energy)), src, sensor, json.dumps({"fixture": FIXTURE_NOTE}),
         "2025-01-01T00:10:00Z", "2025-01-01T00:10:05Z", len(rounds), float(meds.min()),
         float(meds.max()), spread, float(energy.min()), float(energy.max()),
         f"fixture constant {POWER_W:g} W", reason),
    )  # fmt: skip
    conn.executemany("INSERT INTO trials VALUES (?,?,?,?,?,?,?,?,?)", trials)
    conn.executemany(
        "INSERT INTO latency_samples (cell_key, idx, latency_ms, trial) VALUES (?,?,?,?)", samples
    )
