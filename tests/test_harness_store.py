"""The results store: atomic per-cell transactions, resume keys, failed-cell retry, provenance."""

from __future__ import annotations

import json
import sqlite3

import pytest

from harness.store import CellResult, SegmentRow, Store, fingerprint_hash, utc_now

DEF = {
    "dataset": "synthetic",
    "backbone": "early",
    "attention": "dense",
    "method": "dense",
    "sparsity": 0.0,
    "condition": "all",
    "target": "cpu",
    "runtime": "torch",
    "power_mode": "max",
    "seed": 0,
}


def _ok(n=3, **cols):
    return CellResult(
        "ok",
        utc_now(),
        utc_now(),
        columns={"accuracy": 0.9, **cols},
        latencies_ms=[1.0 + i for i in range(n)],
    )


def test_commit_and_finished_keys_and_provenance(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        run = s.begin_run("p", "h" * 64, "{}", {"cpu": {"model": "x", "power_mode": "max"}})
        s.commit_cell(run, "k1", "static", DEF, _ok(latency_ms_p50=2.0))
        seg = SegmentRow(0, 0.0, 1.0, "max", ("a",), 0.3, 10, 2, accuracy=0.5, switch_ms=1.5)
        s.commit_cell(
            run, "k2", "replay", DEF, CellResult("ok", utc_now(), utc_now(), segments=[seg])
        )
        s.commit_cell(
            run,
            "k3",
            "static",
            DEF,
            CellResult("failed", utc_now(), utc_now(), error="TargetError: boom"),
        )
        s.end_run(run)
        assert s.finished_keys() == {"k1", "k2"}
        row = s.query("SELECT packages_json, git_commit, fingerprint_hash, finished_at FROM runs")[
            0
        ]
        assert "numpy" in json.loads(row[0]) and row[3] is not None
        assert row[2] == fingerprint_hash({"cpu": {"model": "x", "power_mode": "other"}})
        assert s.query("SELECT count(*) FROM latency_samples WHERE cell_key='k1'") == [(3,)]
        assert s.query("SELECT present_json, deadline_misses FROM replay_segments") == [
            ('["a"]', 2)
        ]
        assert s.query("SELECT error FROM cells WHERE cell_key='k3'") == [("TargetError: boom",)]
    # WAL mode persisted; another connection sees the committed rows
    db = sqlite3.connect(tmp_path / "r.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT count(*) FROM cells").fetchone()[0] == 3


def test_failed_cell_is_replaced_on_retry(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        run = s.begin_run("p", "h", "{}", {})
        s.commit_cell(
            run, "k", "static", DEF, CellResult("failed", utc_now(), utc_now(), error="x")
        )
        s.commit_cell(run, "k", "static", DEF, _ok(5))
        assert s.query("SELECT status FROM cells") == [("ok",)]
        assert s.query("SELECT count(*) FROM latency_samples") == [(5,)]


def test_a_cell_commits_entirely_or_not_at_all(tmp_path):
    with Store(tmp_path / "r.sqlite") as s:
        run = s.begin_run("p", "h", "{}", {})
        bad = CellResult("ok", utc_now(), utc_now(), latencies_ms=[1.0, None])
        with pytest.raises(TypeError):  # fails after the cell row was inserted
            s.commit_cell(run, "k", "static", DEF, bad)
        assert s.query("SELECT count(*) FROM cells") == [(0,)]
        assert s.query("SELECT count(*) FROM latency_samples") == [(0,)]
        s.commit_cell(run, "k", "static", DEF, _ok(4))  # the store is still usable
        assert s.finished_keys() == {"k"}


def test_not_a_store_is_a_one_line_error(tmp_path):
    from sentryfuse.errors import StoreError

    path = tmp_path / "r.sqlite"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a usable results store"):
        Store(path)


def test_trials_and_sample_trial_indices_round_trip(tmp_path):
    from harness.store import TrialRow

    trials = [TrialRow(t, t, 1.0 + t, 2.0 + t, 1.5 + t, 2, 0.01, 0.5 * t) for t in range(3)]
    result = CellResult(
        "ok",
        utc_now(),
        utc_now(),
        columns={"trials": 3, "latency_ms_p50": 2.0, "latency_ms_p50_ci_lo": 1.0},
        latencies_ms=[1.0, 1.1, 2.0, 2.1, 3.0, 3.1],
        trials=trials,
        latency_trials=[0, 0, 1, 1, 2, 2],
    )
    with Store(tmp_path / "r.sqlite") as s:
        run = s.begin_run("p", "h", "{}", {})
        s.commit_cell(run, "k", "static", DEF, result)
        got = s.query(
            "SELECT trial, round, latency_ms_p50, latency_ms_p99, latency_ms_mean, n,"
            " elapsed_s, energy_mj_per_inference FROM trials WHERE cell_key='k' ORDER BY trial"
        )
        assert got == [tuple(t.__dict__.values()) for t in trials]
        assert s.query("SELECT idx, trial FROM latency_samples ORDER BY idx") == [
            (i, i // 2) for i in range(6)
        ]
        assert s.query("SELECT trials, latency_ms_p50_ci_lo FROM cells") == [(3, 1.0)]
        s.commit_cell(run, "k", "static", DEF, _ok(2))  # a rerun replaces the trials too
        assert s.query("SELECT count(*) FROM trials") == [(0,)]
        assert s.query("SELECT trial FROM latency_samples") == [(None,), (None,)]
        with pytest.raises(ValueError, match="one trial per latency sample"):
            s.commit_cell(
                run,
                "k2",
                "static",
                DEF,
                CellResult("ok", utc_now(), utc_now(), latencies_ms=[1.0, 2.0], latency_trials=[0]),
            )
        assert s.finished_keys() == {"k"}


def test_a_v1_store_is_refused_for_writing_in_one_line(tmp_path):
    from sentryfuse.errors import StoreError

    path = tmp_path / "r.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 1")
    db.execute("CREATE TABLE cells (cell_key TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema v1, this version writes v2; use a new --out"):
        Store(path)
