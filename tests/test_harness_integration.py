"""End to end through ``sentryfuse run``: a real subprocess SIGKILLed mid-suite and resumed,
and a failing cell stored with its error while the suite goes on (exit code 1)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from profile_helpers import tiny_profile

from harness.cells import expand
from harness.commands import run as run_cmd
from harness.profile import load_profile
from sentryfuse.errors import TargetError
from targets.cpu import CpuTarget

ROOT = Path(__file__).resolve().parent.parent

TRAIN = {"scorer_final_steps": 4}
EVAL = {"max_train": 256, "max_test": 128, "calib_samples": 32}
PROFILE = tiny_profile(
    "tiny",
    grid={
        "methods": ["sentrygate", "magnitude", "magnitude+ft"],
        "conditions": ["all", "drop:a", "burst:0.3:5"],
    },
    train=TRAIN,
    eval=EVAL,
    finetune={"steps": 3},
    measure={"min_duration_s": 0.1, "min_count": 10, "trials": 3},
    replay={
        "methods": ["sentrygate", "magnitude", "magnitude+ft"],
        "duration_s": 4.0,
        "rate_hz": 5.0,
        "deadline_ms": 50.0,
        "policy": {"max": 0.3, "single": 0.5},
        "events": [
            {"t_s": 0.0, "present": ["a", "b", "c"], "power_mode": "max"},
            {"t_s": 2.0, "present": ["a"], "power_mode": "single"},
        ],
    },
)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", "run", *args]


def _rows(store: Path) -> dict[str, tuple]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT cell_key, status, run_id, started_at, latency_n,"
            " (SELECT count(*) FROM latency_samples s WHERE s.cell_key=c.cell_key)"
            " FROM cells c"
        ).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    finally:
        db.close()
    return {r[0]: r[1:] for r in rows}


@pytest.mark.slow
def test_sigkill_midway_then_resume_finishes_exactly_the_grid(tmp_path):
    profile_path = tmp_path / "tiny.toml"
    profile_path.write_text(PROFILE)
    expected = {c.key for c in expand(load_profile(profile_path))}
    out = tmp_path / "out"
    store = out / "results.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        _cli(str(profile_path), "--out", str(out)),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists() and len(_rows(store)) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed midway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _rows(store)
    assert 3 <= len(before) < len(expected)
    ckpt = next((out / "checkpoints").iterdir()) / "model.safetensors"
    ckpt_mtime = ckpt.stat().st_mtime_ns

    # an existing store needs --resume: exit 2, nothing changed
    again = subprocess.run(
        _cli(str(profile_path), "--out", str(out)),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "--resume" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert _rows(store) == before

    resumed = subprocess.run(
        _cli(str(profile_path), "--out", str(out), "--resume"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(before)} already finished" in resumed.stdout
    # its ETA prices training from the checkpoint the killed run trained, not the priors
    assert "training priced from the 1 checkpoint(s) trained here before" in resumed.stderr
    after = _rows(store)
    assert set(after) == expected  # exactly the cells of an uninterrupted run
    assert all(r[0] == "ok" and r[3] == r[4] and r[4] >= 10 for r in after.values())
    for key, row in before.items():  # finished cells were not redone
        assert after[key] == row
    assert ckpt.stat().st_mtime_ns == ckpt_mtime  # the checkpoint was reused, not retrained
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert (
        db.execute("SELECT count(DISTINCT cell_key) FROM replay_segments").fetchone()[0] == 3
    )  # one per replay method
    replay_energy = db.execute(
        "SELECT energy_source, energy_model FROM cells"
        " WHERE cell_key IN (SELECT cell_key FROM replay_segments)"
    ).fetchall()
    assert len(replay_energy) == 3  # a replay's estimate names its power model, as a cell's does
    assert all(s == "estimated" and m.startswith("cpu-active-cores-v1") for s, m in replay_energy)
    ft = db.execute(
        "SELECT finetune_energy_mj, energy_model, extra_json FROM cells"
        " WHERE method LIKE '%+ft' AND status = 'ok' AND kind = 'static'"
    ).fetchall()
    assert ft
    static = db.execute(
        "SELECT trials, extra_json FROM cells WHERE status = 'ok' AND kind = 'static'"
    ).fetchall()
    for trials, extra in static:  # the CPU share each trial's process got, and its median
        e = json.loads(extra)
        assert isinstance(e["cpu_threads"], int) and e["cpu_threads"] >= 1
        assert len(e["cpu_share_trials"]) == trials and all(x > 0 for x in e["cpu_share_trials"])
        assert e["cpu_share"] == pytest.approx(float(np.median(e["cpu_share_trials"])), abs=1e-3)
    for energy_mj, model, extra in ft:  # the model's power x 3 steps x the median step
        watts = float(re.search(r"([\d.]+) W/core × (\d+) threads", model).group(1)) * int(
            re.search(r"× (\d+) threads", model).group(1)
        )
        step_ms = json.loads(extra)["finetune_step_ms_p50"]
        assert energy_mj == pytest.approx(watts * 3 * step_ms)


class BrokenRuntimeCpu(CpuTarget):
    """The real CPU target plus a runtime whose export always fails (injected in-process)."""

    def runtimes(self) -> tuple[str, ...]:
        return (*super().runtimes(), "broken")

    def export(self, model, example_inputs, runtime, workdir):
        if runtime == "broken":
            raise TargetError("runtime 'broken' cannot export this model")
        return super().export(model, example_inputs, runtime, workdir)


@pytest.mark.slow
def test_failing_cell_is_stored_and_suite_goes_on(tmp_path, capsys):
    text = tiny_profile(
        "tiny",
        grid={"methods": ["sentrygate", "magnitude"], "runtimes": ["broken", "torch"]},
        train=TRAIN,
        eval=EVAL,
        finetune={"steps": 3},
        measure={"min_count": 10, "trials": 3},
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    args = argparse.Namespace(profile=path, out=tmp_path / "out", resume=False, dry_run=False)
    rc = run_cmd.run(args, target_factory=lambda name: BrokenRuntimeCpu())
    assert rc == 1
    printed = capsys.readouterr().out
    assert "3 ran ok, 3 failed" in printed
    db = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    rows = db.execute("SELECT runtime, status, error FROM cells ORDER BY started_at").fetchall()
    assert [r[0] for r in rows] == ["broken"] * 3 + ["torch"] * 3  # went on after failures
    assert all(
        r[1] == "failed" and r[2] == "TargetError: runtime 'broken' cannot export this model"
        for r in rows[:3]
    )
    assert all(r[1] == "ok" and r[2] is None for r in rows[3:])
    assert len(list((tmp_path / "out" / "errors").glob("*.log"))) == 3
