"""`sentryfuse check`: no false alarms on A/A runs, planted regressions caught and named,
unusable input refused with one line and exit code 2.

Stores are generated per test from the seeded process model in tests/data/make_stores.py:
a different seed redraws the measurement noise (including a run-level drift), so two
seeds of the same grid are two runs of an unchanged model.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from harness.cli import main

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_stores import make_store  # noqa: E402

N_SAMPLES = 200
SLOW_CELL = "hapt · early · dense · sentrygate · s=0.30 · all · cpu/torch/cpu-4t · seed 0"
ACC_CELL = "hapt · late · dense · fisher · s=0.30 · all · cpu/torch/cpu-4t · seed 0"


def _gate(path: Path, seed: int, **kw) -> Path:
    return make_store(path, grid_name="gate", seed=seed, n_samples=N_SAMPLES, **kw)


def _slow(d: dict) -> tuple[float, float]:
    hit = (d["backbone"], d["method"], d["sparsity"]) == ("early", "sentrygate", 0.3)
    return (1.10, 0.0) if hit else (1.0, 0.0)


def _acc_drop(d: dict) -> tuple[float, float]:
    hit = (d["backbone"], d["method"]) == ("late", "fisher")
    return (1.0, -1.0) if hit else (1.0, 0.0)


def _check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("seeds", [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)])
def test_aa_runs_of_an_unchanged_model_pass(tmp_path: Path, capsys, seeds) -> None:
    a = _gate(tmp_path / "a.sqlite", seeds[0])
    b = _gate(tmp_path / "b.sqlite", seeds[1])
    code, out, err = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert (code, err) == (0, "")
    assert "PASS — 0 regression(s)" in out and "in 8 matched cell(s)" in out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_planted_latency_slowdown_fails_and_names_the_cell(tmp_path: Path, capsys, seed) -> None:
    a = _gate(tmp_path / "a.sqlite", seed - 10)
    b = _gate(tmp_path / "b.sqlite", seed, perturb=_slow)
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 1
    regressions = out.split("### Regressions")[1].split("### Improvements")[0]
    rows = [r for r in regressions.splitlines() if r.startswith("| hapt")]
    assert rows and all(r.startswith(f"| {SLOW_CELL} |") for r in rows)
    assert any("| latency_p50 |" in r for r in rows)


def test_planted_accuracy_drop_fails_and_names_the_cell(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1, perturb=_acc_drop)
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 1
    assert f"| {ACC_CELL} | accuracy |" in out and "-1.00 points" in out


def test_thresholds_file_loosens_the_gate_and_run_dirs_work(tmp_path: Path, capsys) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "cand").mkdir()
    _gate(tmp_path / "base" / "results.sqlite", 1)
    _gate(tmp_path / "cand" / "results.sqlite", 11, perturb=_slow)
    loose = tmp_path / "loose.toml"
    loose.write_text(
        "[thresholds]\nlatency_p50 = 25.0\nlatency_p99 = 50\nenergy_per_inference = 25\n"
    )
    args = ["--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "cand")]
    assert _check(capsys, *args)[0] == 1
    code, out, _ = _check(capsys, *args, "--thresholds", str(loose))
    assert code == 0 and "latency p50 +25%" in out


def test_failed_candidate_cell_is_a_regression(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1)
    with sqlite3.connect(b) as conn:
        conn.execute("UPDATE cells SET status='failed', error='export failed: OOM' "
                     "WHERE method='fisher' AND backbone='early'")  # fmt: skip
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 1 and "| status | ok | failed | export failed: OOM |" in out


def _bad(capsys, *args: str) -> str:
    code, out, err = _check(capsys, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sentryfuse check: error: ")
    return lines[0]


def test_unusable_input_exits_2_with_one_line(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    other_device = _gate(tmp_path / "other.sqlite", 1, device="Another CPU @ 2.1GHz")
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"\x00garbage" * 512)
    assert "does not exist" in _bad(capsys, "--baseline", str(a), "--candidate",
                                    str(tmp_path / "missing"))  # fmt: skip
    assert "not a readable results store" in _bad(capsys, "--baseline", str(corrupt),
                                                  "--candidate", str(a))  # fmt: skip
    msg = _bad(capsys, "--baseline", str(a), "--candidate", str(other_device))
    assert "different devices" in msg and "--allow-different-device" in msg
    unknown = tmp_path / "t.toml"
    unknown.write_text("latency_p5O = 3\n")
    msg = _bad(capsys, "--baseline", str(a), "--candidate", str(a), "--thresholds", str(unknown))
    assert "latency_p5O" in msg and "did you mean 'latency_p50'" in msg
    broken = tmp_path / "broken.toml"
    broken.write_text("latency_p50 = [\n")
    assert "not valid TOML" in _bad(capsys, "--baseline", str(a), "--candidate", str(a),
                                    "--thresholds", str(broken))  # fmt: skip
    negative = tmp_path / "neg.toml"
    negative.write_text("accuracy = -1\n")
    assert "non-negative" in _bad(capsys, "--baseline", str(a), "--candidate", str(a),
                                  "--thresholds", str(negative))  # fmt: skip
    minimal = make_store(tmp_path / "minimal.sqlite", grid_name="minimal", seed=0)
    shutil.copy(minimal, tmp_path / "m2.sqlite")
    with sqlite3.connect(tmp_path / "m2.sqlite") as conn:
        conn.execute("UPDATE cells SET definition_json = '{\"other\": 1}'")
    assert "no cell of" in _bad(capsys, "--baseline", str(minimal), "--candidate",
                                str(tmp_path / "m2.sqlite"))  # fmt: skip


def test_allow_different_device_compares_and_says_so(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1, device="Another CPU @ 2.1GHz")
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b),
                          "--allow-different-device")  # fmt: skip
    assert code == 0 and "different device fingerprints" in out
