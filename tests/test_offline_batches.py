"""Batch sizes in the grid and the Offline (throughput) scenario, reported per sample."""

from __future__ import annotations

import argparse
import json
import sqlite3

import pytest

from harness.cells import expand
from harness.commands import run as run_cmd
from harness.offline import per_sample
from harness.profile import load_profile
from sentryfuse.errors import ProfileError
from targets.cpu import CpuTarget
from tests.test_runtime_defaults import PROFILE


def _load(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return load_profile(path)


def test_batch_sizes_and_scenarios_expand_and_keep_old_keys(tmp_path):
    plain = expand(_load(tmp_path, PROFILE))
    grid = PROFILE.replace(
        "seeds = [0]", 'seeds = [0]\nbatch_sizes = [1, 8]\nscenarios = ["single-stream", "offline"]'
    )
    cells = expand(_load(tmp_path, grid))
    assert len(cells) == 4 * len(plain)
    single_b1 = [c for c in cells if c.batch_size == 1 and c.scenario == "single-stream"]
    assert [c.key for c in single_b1] == [c.key for c in plain]  # stores resume unchanged
    assert {(c.batch_size, c.scenario) for c in cells} == {
        (1, "single-stream"), (8, "single-stream"), (1, "offline"), (8, "offline")
    }  # fmt: skip
    assert any(c.label().endswith("b8 offline") for c in cells)
    with pytest.raises(ProfileError, match="grid.scenarios\\[0\\]"):
        _load(tmp_path, PROFILE.replace("seeds = [0]", 'seeds = [0]\nscenarios = ["server"]'))
    with pytest.raises(ProfileError, match="batch sizes must be ≥ 1"):
        _load(tmp_path, PROFILE.replace("seeds = [0]", "seeds = [0]\nbatch_sizes = [0]"))


def test_offline_figures_are_per_sample():
    cols = {"latency_ms_p50": 2.0, "latency_ms_p99": None, "energy_mj_per_inference": 4.0,
            "accuracy": 0.9}  # fmt: skip
    out, figures = per_sample(cols, batch_size=4, queries=10, elapsed_s=0.02)
    assert out == {"latency_ms_p50": 0.5, "latency_ms_p99": None,
                   "energy_mj_per_inference": 1.0, "accuracy": 0.9}  # fmt: skip
    assert figures == {"samples": 40, "samples_per_s": 2000.0, "ms_per_sample": 0.5}
    assert cols["latency_ms_p50"] == 2.0  # the per-query columns are not modified


@pytest.mark.slow
def test_an_offline_cell_runs_at_its_batch_size(tmp_path):
    text = PROFILE.replace("seeds = [0]", 'seeds = [0]\nbatch_sizes = [4]\nscenarios = ["offline"]')
    path = tmp_path / "p.toml"
    path.write_text(text)
    args = argparse.Namespace(profile=path, out=tmp_path / "out", resume=False, dry_run=False)
    assert run_cmd.run(args, target_factory=lambda name: CpuTarget()) == 0
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    rows = db.execute("SELECT latency_n, latency_ms_p50, extra_json FROM cells").fetchall()
    assert len(rows) == 2
    for n, p50, extra in rows:
        e = json.loads(extra)
        assert (e["batch_size"], e["scenario"]) == (4, "offline") and e["samples"] == 4 * n
        assert e["samples_per_s"] * e["ms_per_sample"] == pytest.approx(1000.0)
        assert 0 < p50 < e["ms_per_sample"] * 10
    assert sorted(p.name for p in (tmp_path / "out" / "work").rglob("*.onnx")) == ["model.onnx"] * 2
