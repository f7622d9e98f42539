"""`sentryfuse train`: bad input is one line + exit 2; a tiny run writes a checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (
            ["--dataset", "mnist", "--backbone", "late"],
            "valid: avdigits, crowdsignals, hapt, synthetic",
        ),
        (["--dataset", "synthetic", "--backbone", "lat"], "valid: bottleneck, early, late"),
        (
            ["--dataset", "synthetic", "--backbone", "late", "--attention", "sparse"],
            "valid: dense, sentryattend",
        ),
        (["--dataset", "synthetic", "--backbone", "late", "--size", "huge"], "valid: small, tiny"),
        (
            ["--dataset", "synthetic", "--backbone", "late", "--epochs", "0"],
            "--epochs must be at least 1",
        ),
        (["--dataset", "/nonexistent/x.npz", "--backbone", "late"], "x.npz"),
        (["--dataset", "synthetic", "--backbone", "late", "--out", "FOREIGN"], "not a checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, fragment) -> None:
    out = tmp_path / "ck"
    if argv[-2:] == ["--out", "FOREIGN"]:  # an existing non-checkpoint dir is never touched
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
        argv = argv[:-2]
    assert main(["train", *argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1, err
    leftovers = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert leftovers in ([], ["ck", "ck/notes.txt"])  # nothing half-written


def test_tiny_train_end_to_end(tmp_path) -> None:
    out = tmp_path / "ck"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "train", "--dataset", "synthetic",
         "--backbone", "bottleneck", "--attention", "sentryattend", "--size", "tiny",
         "--epochs", "2", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["accuracy"]) == {"all", "drop:a", "drop:b", "drop:c", "random:0.3"}
    assert all(0.0 <= v <= 1.0 for v in metrics["accuracy"].values())
    assert "accuracy: all=" in proc.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["attention"] == "sentryattend" and config["train"]["epochs"] == 2
    assert config["dataset"]["modalities"][0]["name"] == "a" and config["scorer"]["hidden"] == 64
