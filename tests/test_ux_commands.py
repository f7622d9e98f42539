"""The commands a new user finds their way with: --version, profiles, run NAME, eval,
datasets; a checkpoint trained from a user's .npz pruned with Fisher without --dataset;
the calibration sample; check on unfinished stores; an ONNX Runtime parity failure as
a failed cell of a run."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from profile_helpers import tiny_profile

from harness.commands import run as run_cmd
from harness.shipped import shipped_profiles
from sentryfuse.calibration import stratified_indices
from sentryfuse.data import load_dataset
from sentryfuse.data.npz import write_npz

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_version_and_profiles_list_the_shipped_ones(tmp_path):
    res = _cli("--version", cwd=tmp_path)
    assert res.returncode == 0 and re.fullmatch(r"sentryfuse \d+\.\d+\.\d+\n", res.stdout)
    res = _cli("profiles", cwd=tmp_path)
    assert res.returncode == 0
    names = [p.name for p in shipped_profiles()]
    assert "quickstart" in names and len(names) >= 5
    for p in shipped_profiles():
        assert re.search(rf"^{re.escape(p.name)}\s+{re.escape(p.description)}$", res.stdout, re.M)


def test_run_resolves_a_shipped_name(tmp_path):
    """``run quickstart --dry-run`` from any folder: the shipped file, validated, planned."""
    res = _cli("run", "quickstart", "--dry-run", "--out", "q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert re.search(r"quickstart: 23 cells \(0 finished\), 23 to run, estimated", res.stdout)
    assert not (tmp_path / "q").exists()


def test_stratified_calibration_covers_every_class_of_a_sorted_dataset():
    y = np.repeat(np.arange(7), [300, 200, 100, 50, 30, 20, 10])  # sorted by class
    idx = stratified_indices(y, 128, seed=3)
    assert len(idx) == 128 and len(set(idx)) == 128 and list(idx) == sorted(idx)
    counts = np.bincount(y[idx], minlength=7)
    assert (counts >= 1).all()  # the first 128 would hold class 0 only
    share = np.bincount(y, minlength=7) / len(y) * 128
    assert np.all(np.abs(counts - share) <= 1.5)  # proportional
    assert list(stratified_indices(y, 128, seed=3)) == list(idx)  # seeded
    assert list(stratified_indices(y, 128, seed=4)) != list(idx)
    assert len(stratified_indices(y, 5000, seed=0)) == len(y)


def test_profile_route_and_cli_use_the_same_calibration():
    import inspect

    from harness import artifacts
    from harness.commands import prune

    for module in (artifacts, prune):
        assert "calibration_sample(" in inspect.getsource(module)


@pytest.fixture(scope="module")
def npz_checkpoint(tmp_path_factory):
    """A user's .npz (sorted by class, named by its file), trained into a checkpoint."""
    tmp = tmp_path_factory.mktemp("npz")
    ds = load_dataset("synthetic", max_train=96, max_test=48, seed=0)
    data = tmp / "data" / "watch.npz"
    write_npz(ds, data)
    res = _cli("train", "--dataset", str(data), "--backbone", "early", "--size", "tiny",
               "--epochs", "1", "--out", "ck", cwd=tmp)  # fmt: skip
    assert res.returncode == 0, res.stderr
    return tmp, data


def test_prune_fisher_finds_the_npz_from_the_checkpoint(npz_checkpoint):
    tmp, data = npz_checkpoint
    other = tmp / "elsewhere"
    other.mkdir()
    res = _cli(
        "prune", str(tmp / "ck"), "--method", "fisher", "--sparsity", "0.3", "--out", "v", cwd=other
    )  # fmt: skip  (another cwd: the path is absolute)
    assert res.returncode == 0, res.stderr
    assert "calib_samples" in (other / "v" / "config.json").read_text()


def test_eval_prints_accuracy_with_interval_per_condition(npz_checkpoint):
    tmp, _ = npz_checkpoint
    res = _cli("eval", "ck", "--condition", "all", "--condition", "drop:a", cwd=tmp)
    assert res.returncode == 0, res.stderr
    rows = re.findall(r"^(all|drop:a)\s+([\d.]+)%\s+\[([\d.]+)%, ([\d.]+)%\]\s+(\d+)$",
                      res.stdout, re.M)  # fmt: skip
    assert [r[0] for r in rows] == ["all", "drop:a"]
    for _, acc, lo, hi, n in rows:
        assert float(lo) <= float(acc) <= float(hi) and int(n) == 48
    bad = _cli("eval", "ck", "--condition", "drop:zz", cwd=tmp)
    assert bad.returncode == 2 and "unknown modality 'zz'" in bad.stderr


def test_prune_out_into_a_foreign_folder_is_refused(npz_checkpoint):
    tmp, _ = npz_checkpoint
    user = tmp / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    res = _cli("prune", "ck", "--method", "magnitude", "--sparsity", "0.3", "--out", "mine",
               cwd=tmp)  # fmt: skip
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(user)) == ["notes.txt"]


def test_datasets_columns_fit_long_names(npz_checkpoint):
    tmp, data = npz_checkpoint
    long = tmp / ("a-rather-long-folder-name-for-data" * 2) / "watch.npz"
    long.parent.mkdir()
    shutil.copy(data, long)
    res = _cli("datasets", str(long), cwd=tmp)
    assert res.returncode == 0, res.stderr
    header, row = res.stdout.splitlines()[:2]
    assert row.startswith(str(long) + " ")
    assert header.index("installed") == row.index("yes")  # the columns line up


def test_check_on_unfinished_stores_says_so(tmp_path):
    from harness.store import Store

    for name in ("a", "b"):
        with Store(tmp_path / name / "results.sqlite") as s:
            s.begin_run("tiny", "h", "{}", {"cpu": {}})  # killed before any cell finished
    res = _cli("check", "--baseline", "a", "--candidate", "b", cwd=tmp_path)
    assert res.returncode == 2 and "unfinished" in res.stderr and "--resume" in res.stderr


PARITY_PROFILE = tiny_profile(
    "parity",
    grid={
        "attentions": ["dense"],
        "runtimes": ["torch", "onnxruntime"],
        "power_modes": ["current"],
        "seeds": None,
    },
    eval={"max_train": 64, "max_test": 32, "calib_samples": None},
    measure={"warmup_n": 1},
)


def test_onnxruntime_parity_failure_is_a_failed_cell_of_the_run(tmp_path, capsys):
    """A CPU target whose parity tolerance no runtime can meet (an injected parameter) makes
    the real parity check fail every ORT export: those cells are stored failed with the
    check's message, the torch cells still run, the exit code is 1 and the report lists
    the failures."""
    pytest.importorskip("onnxruntime")
    from targets.cpu import CpuTarget

    def strict(name: str):
        return CpuTarget(parity_atol=-1.0, parity_rtol=0.0) if name == "cpu" else None

    (tmp_path / "p.toml").write_text(PARITY_PROFILE)
    args = argparse.Namespace(profile=str(tmp_path / "p.toml"), out=tmp_path / "o",
                              resume=False, dry_run=False)  # fmt: skip
    assert run_cmd.run(args, target_factory=strict) == 1
    out = capsys.readouterr().out
    assert "2 ran ok, 2 failed" in out
    db = sqlite3.connect(tmp_path / "o" / "results.sqlite")
    rows = db.execute("SELECT runtime, status, error FROM cells ORDER BY runtime").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("onnxruntime", "failed")] * 2 + [("torch", "ok")] * 2
    assert all(re.search(r"onnxruntime.* outputs differ from torch", r[2]) for r in rows[:2])
    failed_csv = (tmp_path / "o" / "report" / "tables" / "failed_cells.csv").read_text()
    assert len(re.findall(r"outputs differ from torch", failed_csv)) == 2
