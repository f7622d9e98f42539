"""Read a results store (``harness/schema.sql``) into pandas DataFrames, read-only.

Reports depend on the store's *schema*, not on the harness code: the columns this
module needs are listed here, checked when the store opens, and anything missing is a
one-line ``StoreError`` instead of a ``KeyError`` deep inside a plot. The store is opened
through a ``mode=ro`` URI so a report can never modify (or create) a store.

Schema 2 measures each cell as several trials (table ``trials``, one row per timed
window, with the interleaving ``round``); schema 1 stores are still read, as one trial per
cell built from the cell row, so reports work on them and the gate can say why it cannot
test them (``StoreData.user_version``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from sentryfuse.errors import StoreError

STORE_FILENAME = "results.sqlite"
SUPPORTED_USER_VERSIONS = (1, 2)

# Columns the reports read; extra columns in the store are fine (forward compatible).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "run_id", "profile_name", "profile_hash", "started_at", "finished_at",
        "git_commit", "packages_json", "fingerprint_json", "fingerprint_hash",
    ),
    "cells": (
        "cell_key", "run_id", "kind", "definition_json", "dataset", "backbone",
        "attention", "method", "sparsity", "condition", "target", "runtime",
        "power_mode", "seed", "status", "error", "accuracy", "n_eval", "params",
        "gflops", "weights_mb", "peak_memory_mb", "latency_ms_p50", "latency_ms_p90",
        "latency_ms_p95", "latency_ms_p99", "latency_ms_mean", "latency_cv", "latency_n",
        "stable", "energy_mj_per_inference", "energy_source", "energy_sensor",
        "prune_ms", "finetune_wall_s", "finetune_energy_mj", "finetune_energy_source",
    ),
    "latency_samples": ("cell_key", "idx", "latency_ms"),
    "replay_segments": (
        "cell_key", "seq", "t_start_s", "t_end_s", "power_mode", "present_json",
        "sparsity", "n_samples", "accuracy", "latency_ms_p50", "latency_ms_p99",
        "deadline_misses", "switch_ms", "energy_mj", "energy_source",
    ),
}  # fmt: skip
# What schema 2 adds (checked only on version-2 stores).
V2_COLUMNS: dict[str, tuple[str, ...]] = {
    "cells": (
        "trials", "latency_ms_p50_ci_lo", "latency_ms_p50_ci_hi", "latency_trial_spread",
        "energy_mj_ci_lo", "energy_mj_ci_hi", "energy_model", "unstable_reason",
        "accuracy_ci_lo", "accuracy_ci_hi",
    ),
    "trials": (
        "cell_key", "trial", "round", "latency_ms_p50", "latency_ms_p99", "latency_ms_mean",
        "n", "elapsed_s", "energy_mj_per_inference",
    ),
}  # fmt: skip
TRIAL_COLUMNS = V2_COLUMNS["trials"]


@dataclass(frozen=True)
class StoreData:
    """Everything a report needs from one store, as DataFrames (one per table)."""

    path: Path
    user_version: int
    runs: pd.DataFrame
    cells: pd.DataFrame
    latency_samples: pd.DataFrame
    replay_segments: pd.DataFrame
    # One row per trial (timed window); schema-1 stores get one synthesised trial per cell.
    trials: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TRIAL_COLUMNS))

    def trials_for(self, cell_key: str) -> pd.DataFrame:
        """The trials of one cell, ordered by trial number; empty if none."""
        rows = self.trials[self.trials["cell_key"] == cell_key]
        return rows.sort_values("trial").reset_index(drop=True)

    def samples_for(self, cell_key: str) -> pd.Series:
        """Raw latency samples (ms) of one cell in measurement order; empty if none."""
        rows = self.latency_samples[self.latency_samples["cell_key"] == cell_key]
        return rows.sort_values("idx")["latency_ms"].reset_index(drop=True)


def resolve_store_path(path: str | Path) -> Path:
    """Accept a run directory (holding ``results.sqlite``) or a store file path."""
    p = Path(path)
    if p.is_dir():
        candidate = p / STORE_FILENAME
        if not candidate.is_file():
            raise StoreError(
                f"no results store in run directory '{p}' (expected {STORE_FILENAME}); "
                "pass the run directory that `sentryfuse run` wrote or a .sqlite path"
            )
        return candidate
    if not p.exists():
        raise StoreError(
            f"results store '{p}' does not exist; pass a run directory or a .sqlite path"
        )
    return p


def _connect_ro(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open results store '{path}' ({exc}); check the path") from exc


def _check_schema(conn: sqlite3.Connection, path: Path) -> int:
    """Verify ``user_version`` and the required tables/columns; return the version."""
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"'{path}' is not a readable results store ({exc}); re-run the suite or pass "
            "the right file"
        ) from exc
    missing_tables = [t for t in REQUIRED_COLUMNS if t not in tables]
    if missing_tables:
        raise StoreError(
            f"'{path}' is not a results store: missing table(s) {', '.join(missing_tables)}; "
            "pass a results.sqlite written by `sentryfuse run`"
        )
    if version not in SUPPORTED_USER_VERSIONS:
        raise StoreError(
            f"results store '{path}' has schema version {version}, this version of the "
            f"reports reads {', '.join(map(str, SUPPORTED_USER_VERSIONS))}; upgrade sentryfuse"
        )
    required = dict(REQUIRED_COLUMNS)
    if version >= 2:
        if "trials" not in tables:
            raise StoreError(
                f"results store '{path}' is schema version {version} but has no 'trials' "
                "table; it was written by an incompatible sentryfuse version"
            )
        for table, cols in V2_COLUMNS.items():
            required[table] = tuple(required.get(table, ())) + cols
    for table, needed in required.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in needed if c not in have]
        if missing:
            raise StoreError(
                f"results store '{path}' table '{table}' lacks column(s) "
                f"{', '.join(missing)}; it was written by an incompatible sentryfuse version"
            )
    return int(version)


def load_store(path: str | Path) -> StoreData:
    """Open a store read-only, verify its schema and load every table.

    Raises ``StoreError`` (one line) for a missing, corrupt or incompatible store.
    """
    store_path = resolve_store_path(path)
    conn = _connect_ro(store_path)
    try:
        version = _check_schema(conn, store_path)
        frames = {}
        tables = list(REQUIRED_COLUMNS) + (["trials"] if version >= 2 else [])
        for table in tables:
            columns = REQUIRED_COLUMNS.get(table, TRIAL_COLUMNS)
            # Select every column so extras written by newer harnesses are kept.
            frames[table] = pd.read_sql_query(f"SELECT * FROM {table}", conn)
            for col in columns:
                if col not in frames[table].columns:  # pragma: no cover - checked above
                    frames[table][col] = None
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise StoreError(
            f"results store '{store_path}' is corrupt ({str(exc).splitlines()[0]}); "
            "re-run the suite to rebuild it"
        ) from exc
    finally:
        conn.close()
    cells = frames["cells"]
    if version < 2:
        cells["trials"] = 1
        cells["unstable_reason"] = [_v1_unstable_reason(e) for e in cells["extra_json"]]
    trials = frames["trials"] if version >= 2 else _one_trial_per_cell(cells)
    for col in ("latency_ms_p50", "latency_ms_p99", "latency_ms_mean", "elapsed_s",
                "energy_mj_per_inference"):  # fmt: skip
        trials[col] = pd.to_numeric(trials[col], errors="coerce")
    for col in ("sparsity", "accuracy", "latency_ms_p50", "latency_ms_p99",
                "energy_mj_per_inference", "peak_memory_mb", "gflops",
                "finetune_energy_mj"):  # fmt: skip
        cells[col] = pd.to_numeric(cells[col], errors="coerce")
    return StoreData(
        path=store_path,
        user_version=version,
        runs=frames["runs"],
        cells=cells,
        latency_samples=frames["latency_samples"],
        replay_segments=frames["replay_segments"],
        trials=trials,
    )


def _v1_unstable_reason(extra_json: object) -> str | None:
    """Schema 1 kept the stability warning in ``extra_json``; surface it."""
    try:
        warnings = json.loads(extra_json).get("warnings", []) if isinstance(extra_json, str) else []
    except (ValueError, AttributeError):
        return None
    found = [str(w) for w in warnings if str(w).startswith("unstable")]
    return found[0].removeprefix("unstable: ") if found else None


def _one_trial_per_cell(cells: pd.DataFrame) -> pd.DataFrame:
    """A schema-1 store measured each cell in one window: that window is its only trial."""
    ok = cells[cells["status"] == "ok"]
    return pd.DataFrame(
        {
            "cell_key": ok["cell_key"],
            "trial": 0,
            "round": 0,
            "latency_ms_p50": ok["latency_ms_p50"],
            "latency_ms_p99": ok["latency_ms_p99"],
            "latency_ms_mean": ok["latency_ms_mean"],
            "n": ok["latency_n"],
            "elapsed_s": None,
            "energy_mj_per_inference": ok["energy_mj_per_inference"],
        },
        columns=list(TRIAL_COLUMNS),
    ).reset_index(drop=True)
