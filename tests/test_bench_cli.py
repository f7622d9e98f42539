"""``sentryfuse bench`` and ``[[models]]`` profiles on this CPU with real ONNX Runtime.

The models are unrelated to SentryFuse (a small CNN and a token MLP with a dynamic
sequence axis), exported from torch to ONNX here, benchmarked across the cpu power
modes into a real SQLite store and report, and gated by ``check``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
from pathlib import Path

import pytest
import torch

from harness.cli import main

FAST = ["--warmup-s", "0.02", "--duration-s", "0.1", "--min-count", "10"]


class SmallCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


class TokenMLP(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(50, 8)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 3)
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.emb(tokens)).mean(1)


def export(model: torch.nn.Module, example: torch.Tensor, path: Path, name: str, dyn: dict) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model.eval(), (example,), str(path), input_names=[name], output_names=["out"],
            dynamic_axes={name: dyn, "out": {0: "batch"}}, opset_version=17, dynamo=False,
        )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("models")
    return {
        "cnn": export(SmallCNN(), torch.randn(1, 3, 16, 16), d / "cnn.onnx", "image", {0: "batch"}),
        "mlp": export(
            TokenMLP(),
            torch.zeros(1, 6, dtype=torch.long),
            d / "mlp.onnx",
            "tokens",
            {0: "batch", 1: "seq"},
        ),  # fmt: skip
    }


def cells(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT kind, backbone, power_mode, status, latency_n, latency_ms_p50 FROM cells ORDER BY rowid"
        ).fetchall()


def test_bench_across_cpu_power_modes_writes_store_and_report(models, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "bench",
        str(models["cnn"]),
        "--power-mode",
        "max",
        "--power-mode",
        "single",
        "--out",
        str(out),
    ]
    assert main(argv + FAST) == 0
    rows = cells(out / "results.sqlite")
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("model", "cnn", "max", "ok"), ("model", "cnn", "single", "ok"),
    ]  # fmt: skip
    assert all(r[4] >= 10 and r[5] > 0 for r in rows)
    printed = capsys.readouterr().out
    assert "cnn cpu/onnxruntime/max: latency p50" in printed and "throughput" in printed
    summary = (out / "report" / "summary.md").read_text()
    assert "## Your models" in summary and "| cnn | cpu | onnxruntime | single |" in summary


def test_dynamic_dims_need_a_shape_and_then_run(models, tmp_path, capsys):
    out = tmp_path / "mlp"
    assert main(["bench", str(models["mlp"]), "--out", str(out)] + FAST) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--shape tokens=1xN" in err[0] and not out.exists()
    argv = [
        "bench",
        str(models["mlp"]),
        "--batch",
        "2",
        "--shape",
        "tokens=2x12",
        "--out",
        str(out),
    ]
    assert main(argv + FAST) == 0
    assert cells(out / "results.sqlite")[0][3] == "ok"


@pytest.mark.parametrize(
    ("make", "extra", "expect"),
    [
        ("malformed", [], "not a valid ONNX model"),
        ("missing", [], "file not found"),
        ("cnn", ["--runtime", "tensorrt-fast"], "unknown runtime 'tensorrt-fast'"),
        ("cnn", ["--power-mode", "turbo"], "unknown cpu power mode 'turbo'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    models, tmp_path, capsys, make, extra, expect
):
    path = {"malformed": tmp_path / "bad.onnx", "missing": tmp_path / "nope.onnx"}.get(make)
    if make == "malformed":
        path.write_bytes(b"\x08\x07garbage, not protobuf")
    path = path or models[make]
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)] + extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err
    assert not out.exists()


def _set_cpu_starved(store: Path, starved: bool) -> None:
    with sqlite3.connect(store) as db:
        for key, extra in db.execute("SELECT cell_key, extra_json FROM cells").fetchall():
            e = json.loads(extra)
            e["cpu_starved"] = starved
            db.execute("UPDATE cells SET extra_json = ? WHERE cell_key = ?", (json.dumps(e), key))


def test_models_profile_is_a_suite_that_check_gates(models, tmp_path, capsys):
    shutil.copy(models["cnn"], tmp_path / "cnn.onnx")
    shutil.copy(models["mlp"], tmp_path / "mlp.onnx")
    profile = tmp_path / "mine.toml"
    profile.write_text(
        'name = "mine"\n'
        '[[models]]\nname = "cnn"\npath = "cnn.onnx"\n'
        '[[models]]\nname = "mlp"\npath = "mlp.onnx"\nshapes = { tokens = [1, 8] }\n'
        '[grid]\ntargets = ["cpu"]\nruntimes = ["onnxruntime"]\npower_modes = ["single"]\n'
        "[measure]\nwarmup_s = 0.02\nmin_duration_s = 0.05\nmin_count = 100\n"
    )
    base = tmp_path / "A"
    assert main(["run", str(profile), "--out", str(base)]) == 0
    assert [r[1] for r in cells(base / "results.sqlite")] == ["cnn", "mlp"]
    # A candidate whose cnn is 3x slower in every query: the gate must call it a regression.
    _set_cpu_starved(base / "results.sqlite", False)  # as if measured on an idle machine:
    cand = tmp_path / "B"  # the gate's verdict on a starved cell is tested below
    shutil.copytree(base, cand)
    with sqlite3.connect(cand / "results.sqlite") as db:
        key = db.execute("SELECT cell_key FROM cells WHERE backbone = 'cnn'").fetchone()[0]
        db.execute(
            "UPDATE latency_samples SET latency_ms = latency_ms * 3 WHERE cell_key = ?", (key,)
        )
        for col in ("p50", "p99", "mean"):  # the trials the gate decides on
            db.execute(
                f"UPDATE trials SET latency_ms_{col} = latency_ms_{col} * 3 WHERE cell_key = ?",
                (key,),
            )
        for col in ("p50", "p90", "p95", "p99", "mean"):
            db.execute(
                f"UPDATE cells SET latency_ms_{col} = latency_ms_{col} * 3 WHERE cell_key = ?",
                (key,),
            )
    capsys.readouterr()
    assert main(["check", "--baseline", str(base), "--candidate", str(base)]) in (0, 3)  # never 1
    assert main(["check", "--baseline", str(base), "--candidate", str(cand)]) == 1
    report = capsys.readouterr().out
    assert "onnx · cnn" in report and "2 matched cell(s)" in report
    # The same slowdown where the candidate's trials did not get the CPU (another process
    # held the cores): with no reference cell to divide by, the gate cannot blame the code.
    with sqlite3.connect(cand / "results.sqlite") as db:
        extra = json.loads(
            db.execute("SELECT extra_json FROM cells WHERE cell_key = ?", (key,)).fetchone()[0]
        )
        assert extra["cpu_threads"] == 1 and extra["cpu_starved"] is False
        extra.update(cpu_share=0.3, cpu_starved=True)
        db.execute("UPDATE cells SET extra_json = ? WHERE cell_key = ?", (json.dumps(extra), key))
    assert main(["check", "--baseline", str(base), "--candidate", str(cand)]) == 3
    assert "candidate (0.30 of a core per thread) did not get the CPU" in capsys.readouterr().out


def test_models_profile_errors_name_the_key(models, tmp_path, capsys):
    profile = tmp_path / "bad.toml"
    profile.write_text(
        f'[[models]]\nname = "mlp"\npath = "{models["mlp"].as_posix()}"\n'
        '[grid]\ntargets = ["cpu"]\nruntimes = ["torch"]\n'
    )
    assert main(["run", str(profile), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "models[0].path" in err and "--shape tokens=" in err
