"""``sentryfuse merge RUN_DIR... --out DIR``: join the stores of shards (or of any runs of
one profile) into one store, for labs that run ``--shard I/N`` from cron.

Cells are keyed by their content hash, so a cell is the same cell in every store. A cell
found in two stores must be identical there (the same shard merged twice) or it is
refused, naming both runs — with one exception that mirrors ``--resume``: a failed try is
replaced by a finished one. Runs of different profiles are refused before anything is
written. Every ``runs`` row is kept (each shard's device fingerprint and git commit stay
its provenance), and every table keyed by ``cell_key`` is copied with its cells, so
tables a later schema adds travel too. The result is written to a temporary file and
renamed: a failed merge leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store import STORE_NAME, Store
from sentryfuse.errors import HarnessError


@dataclass
class _Cell:
    source: Path
    row: dict[str, Any]
    children: dict[str, list[tuple]] = field(default_factory=dict)

    def content(self) -> tuple:
        row = tuple(sorted((k, v) for k, v in self.row.items() if k != "run_id"))
        return row, tuple(sorted((t, tuple(rows)) for t, rows in self.children.items()))


@dataclass(frozen=True)
class MergeSummary:
    stores: int
    runs: int
    cells: int
    replaced_failed: int
    identical_duplicates: int
    store_path: Path


def resolve(path: Path) -> Path:
    p = path / STORE_NAME if path.is_dir() else path
    if not p.is_file():
        raise HarnessError(f"{path}: no results store there (expected a run directory)")
    return p


def _read(path: Path) -> tuple[list[dict[str, Any]], list[_Cell]]:
    db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        runs = [dict(r) for r in db.execute("SELECT * FROM runs")]
        cells = {r["cell_key"]: _Cell(path, dict(r)) for r in db.execute("SELECT * FROM cells")}
        for table in _child_tables(db):
            order = ", ".join(_columns(db, table))
            for r in db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                if r["cell_key"] in cells:
                    cells[r["cell_key"]].children.setdefault(table, []).append(tuple(r))
    except sqlite3.DatabaseError as exc:
        raise HarnessError(f"{path}: not a readable results store ({exc})") from None
    finally:
        db.close()
    return runs, list(cells.values())


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def _child_tables(db: sqlite3.Connection) -> list[str]:
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return sorted(t for t in names if t not in ("cells", "runs") and "cell_key" in _columns(db, t))


def merge_stores(sources: list[Path], out_dir: Path) -> MergeSummary:
    paths = [resolve(Path(s)) for s in sources]
    final = out_dir / STORE_NAME
    if final.exists():
        raise HarnessError(f"{final} already exists; choose another --out")
    runs: dict[str, dict[str, Any]] = {}
    profiles: dict[str, Path] = {}
    chosen: dict[str, _Cell] = {}
    replaced = identical = 0
    for path in paths:
        src_runs, src_cells = _read(path)
        for r in src_runs:
            profiles.setdefault(r["profile_hash"], path)
            runs.setdefault(r["run_id"], r)
        if len(profiles) > 1:
            (h1, p1), (h2, p2) = list(profiles.items())[:2]
            raise HarnessError(
                f"{p1} and {p2} hold runs of different profiles (profile hash {h1[:12]} vs "
                f"{h2[:12]}); merge only runs of one profile"
            )
        for cell in src_cells:
            key = cell.row["cell_key"]
            have = chosen.get(key)
            if have is None:
                chosen[key] = cell
            elif have.content() == cell.content():
                identical += 1
            elif have.row["status"] != "ok" and cell.row["status"] == "ok":
                chosen[key] = cell
                replaced += 1
            elif have.row["status"] == "ok" and cell.row["status"] != "ok":
                replaced += 1
            else:
                raise HarnessError(
                    f"cell {key[:12]} is in {have.source} and {cell.source} with different "
                    "results; merge each shard once, or leave one of the runs out"
                )
    _write(final, list(runs.values()), list(chosen.values()))
    return MergeSummary(len(paths), len(runs), len(chosen), replaced, identical, final)


def _write(final: Path, runs: list[dict[str, Any]], cells: list[_Cell]) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.merge-{os.getpid()}")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    try:
        Store(tmp).close()  # the current schema
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            for r in runs:
                _insert(db, "runs", r)
            for c in sorted(cells, key=lambda c: (c.row["started_at"], c.row["cell_key"])):
                _insert(db, "cells", c.row)
                for table, rows in c.children.items():
                    marks = ", ".join("?" for _ in rows[0])
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        os.replace(tmp, final)
    finally:
        for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(OSError):
                p.unlink()


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    have = set(_columns(db, table))
    cols = [k for k in row if k in have]
    marks = ", ".join("?" for _ in cols)
    db.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", [row[k] for k in cols])
