"""The results store: SQLite (harness/schema.sql), WAL, one transaction per cell.

A cell row, its trials, its raw latency samples and its replay segments are written in
one transaction, so a SIGKILL loses at most the cell in flight and never leaves half a cell.
Only cells with status 'ok' count as finished: a rerun retries failed cells (the failure
may have been transient, e.g. a busy device), replacing the failed row.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sentryfuse.errors import StoreError

SCHEMA_VERSION = 2
STORE_NAME = "results.sqlite"
_PACKAGES = (
    "sentryfuse-bench",
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "tensorrt",
    "safetensors",
    "pandas",
    "jetson-stats",
    "nvidia-ml-py",
)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class SegmentRow:
    seq: int
    t_start_s: float
    t_end_s: float
    power_mode: str
    present: tuple[str, ...]
    sparsity: float
    n_samples: int
    deadline_misses: int
    accuracy: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p99: float | None = None
    switch_ms: float | None = None
    energy_mj: float | None = None
    energy_source: str | None = None


@dataclass(frozen=True)
class TrialRow:
    """One timed window of a static cell (table ``trials``)."""

    trial: int
    round: int
    latency_ms_p50: float
    latency_ms_p99: float
    latency_ms_mean: float
    n: int
    elapsed_s: float
    energy_mj_per_inference: float | None = None


@dataclass(frozen=True)
class CellResult:
    """Everything a finished (or failed) cell stores; column names follow schema.sql."""

    status: str  # 'ok' | 'failed'
    started_at: str
    finished_at: str
    error: str | None = None
    columns: Mapping[str, Any] = field(default_factory=dict)  # accuracy, latency_ms_p50, ...
    latencies_ms: Sequence[float] = ()
    segments: Sequence[SegmentRow] = ()
    trials: Sequence[TrialRow] = ()
    latency_trials: Sequence[int] = ()  # trial of each latency sample (empty: none, e.g. replay)


class Store:
    """Open (creating if needed) the store at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise StoreError(
                    f"{self.path}: store schema v{version}, this version writes "
                    f"v{SCHEMA_VERSION}; use a new --out directory"
                )
            schema = resources.files("harness").joinpath("schema.sql").read_text()
            self._db.executescript(schema)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a usable results store ({exc}); use a new --out directory"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin_run(
        self,
        profile_name: str,
        profile_hash: str,
        profile_json: str,
        fingerprints: Mapping[str, Any],
        *,
        repo_dir: Path | None = None,
    ) -> str:
        run_id = uuid.uuid4().hex
        fp_json = json.dumps(fingerprints, sort_keys=True, default=str)
        with self._tx():
            self._db.execute(
                "INSERT INTO runs (run_id, profile_name, profile_hash, profile_json, started_at,"
                " git_commit, packages_json, fingerprint_json, fingerprint_hash)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    run_id,
                    profile_name,
                    profile_hash,
                    profile_json,
                    utc_now(),
                    git_commit(repo_dir),
                    json.dumps(package_versions(), sort_keys=True),
                    fp_json,
                    fingerprint_hash(fingerprints),
                ),
            )
        return run_id

    def end_run(self, run_id: str) -> None:
        with self._tx():
            self._db.execute("UPDATE runs SET finished_at=? WHERE run_id=?", (utc_now(), run_id))

    def finished_keys(self) -> set[str]:
        rows = self._db.execute("SELECT cell_key FROM cells WHERE status='ok'")
        return {r[0] for r in rows}

    def has_cells(self) -> bool:
        return self._db.execute("SELECT 1 FROM cells LIMIT 1").fetchone() is not None

    def commit_cell(
        self, run_id: str, key: str, kind: str, definition: Mapping[str, Any], result: CellResult
    ) -> None:
        """Write the cell, its samples and segments atomically (replacing a failed try)."""
        d = definition
        cols = {
            "cell_key": key,
            "run_id": run_id,
            "kind": kind,
            "definition_json": json.dumps(d, sort_keys=True, separators=(",", ":")),
            "dataset": d["dataset"],
            "backbone": d["backbone"],
            "attention": d["attention"],
            "method": d["method"],
            "sparsity": d["sparsity"],
            "condition": d["condition"],
            "target": d["target"],
            "runtime": d["runtime"],
            "power_mode": d["power_mode"],
            "seed": d["seed"],
            "status": result.status,
            "error": result.error,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            **dict(result.columns),
        }
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        with self._tx():
            for table in ("latency_samples", "replay_segments", "trials", "cells"):
                self._db.execute(f"DELETE FROM {table} WHERE cell_key=?", (key,))
            self._db.execute(f"INSERT INTO cells ({names}) VALUES ({marks})", tuple(cols.values()))
            trial_of = list(result.latency_trials) or [None] * len(result.latencies_ms)
            if len(trial_of) != len(result.latencies_ms):
                raise ValueError("latency_trials must give one trial per latency sample")
            self._db.executemany(
                "INSERT INTO latency_samples (cell_key, idx, latency_ms, trial) VALUES (?,?,?,?)",
                (
                    (key, i, float(v), t)
                    for i, (v, t) in enumerate(zip(result.latencies_ms, trial_of, strict=True))
                ),
            )
            self._db.executemany(
                "INSERT INTO trials (cell_key, trial, round, latency_ms_p50, latency_ms_p99,"
                " latency_ms_mean, n, elapsed_s, energy_mj_per_inference)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    (
                        key,
                        t.trial,
                        t.round,
                        t.latency_ms_p50,
                        t.latency_ms_p99,
                        t.latency_ms_mean,
                        t.n,
                        t.elapsed_s,
                        t.energy_mj_per_inference,
                    )
                    for t in result.trials
                ),
            )
            self._db.executemany(
                "INSERT INTO replay_segments (cell_key, seq, t_start_s, t_end_s, power_mode,"
                " present_json, sparsity, n_samples, accuracy, latency_ms_p50, latency_ms_p99,"
                " deadline_misses, switch_ms, energy_mj, energy_source)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        key,
                        s.seq,
                        s.t_start_s,
                        s.t_end_s,
                        s.power_mode,
                        json.dumps(list(s.present)),
                        s.sparsity,
                        s.n_samples,
                        s.accuracy,
                        s.latency_ms_p50,
                        s.latency_ms_p99,
                        s.deadline_misses,
                        s.switch_ms,
                        s.energy_mj,
                        s.energy_source,
                    )
                    for s in result.segments
                ),
            )

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self._db.execute(sql, tuple(params)).fetchall()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def git_commit(repo_dir: Path | None = None) -> str | None:
    """``git rev-parse HEAD`` of the checkout this code runs from (None outside git)."""
    cwd = repo_dir or Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


_VOLATILE = ("power_mode", "current_power_mode", "clocks", "temperature", "time", "uptime")


def fingerprint_hash(fingerprints: Mapping[str, Any]) -> str:
    """Hash of the stable parts (device model, versions); drops volatile state keys."""

    def stable(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {k: stable(x) for k, x in v.items() if not any(t in k for t in _VOLATILE)}
        return v

    text = json.dumps(stable(fingerprints), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
