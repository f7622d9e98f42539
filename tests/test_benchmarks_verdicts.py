"""``benchmarks/verdicts.py``: each run's stable / unstable cells and why, from a real store."""

from __future__ import annotations

import json
import sqlite3
from importlib import resources
from pathlib import Path

from benchmarks.verdicts import main


def _store(out: Path, cells: list[dict]) -> Path:
    out.mkdir(parents=True)
    db = sqlite3.connect(out / "results.sqlite")
    db.executescript(resources.files("harness").joinpath("schema.sql").read_text())
    for i, c in enumerate(cells):
        definition = {"method": c["method"], "kind": c["kind"], "i": i}
        db.execute(
            "INSERT INTO cells (cell_key, run_id, kind, definition_json, dataset, backbone,"
            " attention, method, sparsity, condition, target, runtime, power_mode, seed,"
            " status, stable, unstable_reason, extra_json, started_at, finished_at)"
            " VALUES (?, 'r', ?, ?, 'hapt', 'early', 'dense', ?, 0.5, 'all', 'cpu',"
            " 'onnxruntime', 'max', 0, ?, ?, ?, ?, 't', 't')",
            (f"k{i}", c["kind"], json.dumps(definition), c["method"], c.get("status", "ok"),
             int(c["reason"] is None), c["reason"], json.dumps(c.get("extra", {}))),
        )  # fmt: skip
    db.commit()
    db.close()
    return out


def test_counts_verdicts_per_kind_and_shows_each_replay_segment(tmp_path, capsys) -> None:
    replay_extra = {"latency_spread_segments": [0.02, None, 0.11], "cpu_share_segments": [1.0]}
    run = _store(
        tmp_path / "run1",
        [
            {"kind": "static", "method": "magnitude", "reason": None},
            {"kind": "static", "method": "taylor", "reason": "trial spread 0.187 > 0.05 (x)"},
            {"kind": "static", "method": "taylor", "reason": "trial spread 0.090 > 0.05 (y)"},
            {"kind": "static", "method": "fisher", "reason": "CPU share 0.79 per thread < 0.8"},
            {"kind": "static", "method": "random", "reason": "bad", "status": "failed"},
            {
                "kind": "replay",
                "method": "sentrygate",
                "reason": "latency spread 0.11 > 0.05 in segment 2 (relative MAD)",
                "extra": replay_extra,
            },  # fmt: skip
        ],
    )
    assert main([str(run)]) == 0
    out = capsys.readouterr().out
    # failed cells are not judged; reasons are grouped without their figures
    assert "| run1 | static | 1/4 | 2× trial spread; 1× CPU share per thread |" in out
    assert "| run1 | replay | 0/1 | 1× latency spread in segment |" in out
    assert "| run1 | sentrygate | 0.020, —, 0.110 | 1.00 | unstable (latency spread" in out


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no results.sqlite" in err[0]
    assert main(["--quickstart", "1"]) == 2
    assert "needs --out" in capsys.readouterr().err
