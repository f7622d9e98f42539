"""Opening results stores: schema contract, read-only access, one-line errors."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from reports.store import REQUIRED_COLUMNS, STORE_FILENAME, SUPPORTED_USER_VERSIONS, load_store
from sentryfuse.errors import StoreError

ROOT = Path(__file__).resolve().parents[1]
STORES = Path(__file__).parent / "data" / "stores"
REPORT_STORE = STORES / "generated_report.sqlite"


def test_required_columns_match_the_harness_schema() -> None:
    """The reader's expectations are a subset of the writer's schema (the contract)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript((ROOT / "harness" / "schema.sql").read_text())
    for table, columns in REQUIRED_COLUMNS.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        assert set(columns) <= have, (table, set(columns) - have)
    assert conn.execute("PRAGMA user_version").fetchone()[0] in SUPPORTED_USER_VERSIONS


def test_loads_every_table_without_modifying_the_store() -> None:
    before = hashlib.sha256(REPORT_STORE.read_bytes()).hexdigest()
    store = load_store(REPORT_STORE)
    assert hashlib.sha256(REPORT_STORE.read_bytes()).hexdigest() == before
    assert store.user_version == 1
    assert len(store.runs) == 1
    assert len(store.cells) > 100 and (store.cells["status"] == "ok").all()
    assert not store.replay_segments.empty
    key = store.cells["cell_key"].iloc[0]
    samples = store.samples_for(key)
    assert len(samples) == int(store.cells["latency_n"].iloc[0])
    assert samples.min() > 0


def test_run_directory_resolves_to_results_sqlite(tmp_path: Path) -> None:
    shutil.copy(REPORT_STORE, tmp_path / STORE_FILENAME)
    assert len(load_store(tmp_path).cells) == len(load_store(REPORT_STORE).cells)


def _one_line_store_error(path: Path, *fragments: str) -> str:
    with pytest.raises(StoreError) as info:
        load_store(path)
    msg = str(info.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg
    return msg


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sqlite"
    _one_line_store_error(missing, "does not exist")
    assert not missing.exists()
    _one_line_store_error(tmp_path, "no results store in run directory")


def test_corrupt_and_foreign_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    _one_line_store_error(junk, "not a readable results store")
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE x (a INTEGER)").connection.commit()
    _one_line_store_error(other, "missing table")


def test_truncated_store_is_reported_corrupt(tmp_path: Path) -> None:
    cut = tmp_path / "cut.sqlite"
    data = REPORT_STORE.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError) as info:
        load_store(cut)
    assert "\n" not in str(info.value)


def test_incompatible_schema_version_and_columns(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    shutil.copy(REPORT_STORE, newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("PRAGMA user_version = 99")
    _one_line_store_error(newer, "schema version 99")
    older = tmp_path / "older.sqlite"
    shutil.copy(REPORT_STORE, older)
    with sqlite3.connect(older) as conn:
        conn.execute("ALTER TABLE cells DROP COLUMN energy_sensor")
    _one_line_store_error(older, "energy_sensor")
