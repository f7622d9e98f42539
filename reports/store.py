"""Read a results store (``harness/schema.sql``) into pandas DataFrames, read-only.

Reports depend on the store's *schema*, not on the harness code: the columns this
module needs are listed here, checked when the store opens, and anything missing is a
one-line ``StoreError`` instead of a ``KeyError`` deep inside a plot. The store is opened
through a ``mode=ro`` URI so a report can never modify (or create) a store.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from sentryfuse.errors import StoreError

STORE_FILENAME = "results.sqlite"
SUPPORTED_USER_VERSIONS = (1, 2)  # v2 (trials, intervals) adds tables/columns only

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


@dataclass(frozen=True)
class StoreData:
    """Everything a report needs from one store, as DataFrames (one per table)."""

    path: Path
    user_version: int
    runs: pd.DataFrame
    cells: pd.DataFrame
    latency_samples: pd.DataFrame
    replay_segments: pd.DataFrame

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
    for table, needed in REQUIRED_COLUMNS.items():
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
        for table, columns in REQUIRED_COLUMNS.items():
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
    )
