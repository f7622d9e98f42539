"""`sentryfuse check` on generated trial stores: three outcomes, drift cancellation, exit
codes, unusable input refused with one line and exit code 2.

Stores come from the seeded process model in tests/data/make_trial_stores.py: a different
seed redraws the measurement noise, ``run_drift`` makes one run's machine slower, so two
seeds of the same grid are two runs of an unchanged model. Stores recorded from real runs
on this machine are tested in test_reports_check_recorded.py.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from harness.cli import main

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_trial_stores import make_trial_store  # noqa: E402

SLOW_CELL = "hapt · early · dense · sentrygate · s=0.30 · all · cpu/torch/cpu-4t · seed 0"
ACC_CELL = "hapt · late · dense · fisher · s=0.30 · all · cpu/torch/cpu-4t"


def _gate(path: Path, seed: int, **kw) -> Path:
    return make_trial_store(path, grid_name="gate", seed=seed, **kw)


def _hit(d: dict) -> bool:
    return (d["backbone"], d["method"], d["sparsity"]) == ("early", "sentrygate", 0.3)


def _slow(d: dict) -> tuple[float, float]:
    return (1.10, 0.0) if _hit(d) else (1.0, 0.0)


def _check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _section(out: str, title: str) -> list[str]:
    body = out.split(f"### {title}")[1].split("###")[0]
    return [r for r in body.splitlines() if r.startswith("| hapt")]


@pytest.mark.parametrize("seeds", [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)])
def test_aa_runs_of_an_unchanged_model_pass(tmp_path: Path, capsys, seeds) -> None:
    a = _gate(tmp_path / "a.sqlite", seeds[0])
    b = _gate(tmp_path / "b.sqlite", seeds[1])
    code, out, err = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert (code, err) == (0, "")
    assert out.startswith("## sentryfuse check: PASS — 0 regression(s), 0 inconclusive")
    assert "in 8 matched cell(s)" in out


def test_machine_drift_is_cancelled_by_the_reference_cell(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1, run_drift=1.08)  # the whole machine 8% slower
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b),
                          "--reference", "none")  # fmt: skip
    assert code == 1  # without a reference, drift reads as regressions everywhere
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 3  # the references slowed: drift or a uniform change, cannot tell
    assert _section(out, "Regressions") == []
    inconclusive = _section(out, "Inconclusive")
    assert inconclusive and all("· dense · dense ·" in r for r in inconclusive)
    assert "the reference cell slowed" in out and "drift of reference" in out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_planted_slowdown_is_a_regression_named_by_cell(tmp_path: Path, capsys, seed) -> None:
    a = _gate(tmp_path / "a.sqlite", seed - 10)
    b = _gate(tmp_path / "b.sqlite", seed, perturb=_slow, run_drift=1.03)
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 1
    rows = _section(out, "Regressions")
    assert rows and all(r.startswith(f"| {SLOW_CELL} |") for r in rows)
    assert any("| latency_p50 |" in r and "÷ reference" in r for r in rows)


def test_noise_too_large_is_inconclusive_with_the_detectable_change(tmp_path: Path,
                                                                    capsys) -> None:  # fmt: skip
    a = _gate(tmp_path / "a.sqlite", 0, noise_sigma=0.12)
    b = _gate(tmp_path / "b.sqlite", 1, noise_sigma=0.12)
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 3 and out.startswith("## sentryfuse check: INCONCLUSIVE")
    rows = [r for r in _section(out, "Inconclusive") if "| latency_p50 |" in r]
    assert rows and all("MDE +" in r for r in rows)


def test_a_change_that_slows_every_cell_is_never_a_pass(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1, perturb=lambda d: (1.10, 0.0))
    assert _check(capsys, "--baseline", str(a), "--candidate", str(b))[0] == 3
    assert _check(capsys, "--baseline", str(a), "--candidate", str(b),
                  "--reference", "none")[0] == 1  # fmt: skip


def test_energy_regression_is_tested_on_trials(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1, perturb=lambda d: (1.0, 0.0, 1.25 if _hit(d) else 1.0))
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 1
    rows = _section(out, "Regressions")
    assert len(rows) == 1 and rows[0].startswith(f"| {SLOW_CELL} | energy_per_inference |")


def test_accuracy_drop_over_seeds_is_paired(tmp_path: Path, capsys) -> None:
    def drop(d: dict) -> tuple[float, float]:
        return (1.0, -1.0) if (d["backbone"], d["method"]) == ("late", "fisher") else (1.0, 0.0)

    seeds = (0, 1, 2)
    a = _gate(tmp_path / "a.sqlite", 0, train_seeds=seeds)
    b = _gate(tmp_path / "b.sqlite", 1, train_seeds=seeds, perturb=drop)
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 1
    (row,) = _section(out, "Regressions")
    assert row.startswith(f"| {ACC_CELL} · seed 0, 1, 2 | accuracy |")
    assert "-1.00 points" in row and "3 seeds, paired t interval" in row


def test_one_seed_accuracy_uses_the_binomial_interval(tmp_path: Path, capsys) -> None:
    def drop(points: float):
        return lambda d: (1.0, points) if d["method"] == "fisher" else (1.0, 0.0)

    a = _gate(tmp_path / "a.sqlite", 0)
    small = _gate(tmp_path / "b.sqlite", 1, perturb=drop(-1.0))
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(small))
    assert code == 3  # 1 point on 2000 test samples is within the binomial noise
    assert any("| accuracy |" in r and "1 seed, binomial" in r
               for r in _section(out, "Inconclusive"))  # fmt: skip
    large = _gate(tmp_path / "c.sqlite", 1, perturb=drop(-6.0))
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(large))
    assert code == 1 and len(_section(out, "Regressions")) == 2  # both fisher cells


def test_unstable_cells_carry_a_badge(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0, round_sigma=0.08)
    b = _gate(tmp_path / "b.sqlite", 1, round_sigma=0.08)
    _, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert "### Unstable cells (⚠ unstable)" in out
    assert "⚠ unstable: baseline: trial spread" in out or "⚠ unstable: candidate:" in out


def test_too_few_trials_is_one_line_exit_3(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0, n_trials=3)
    b = _gate(tmp_path / "b.sqlite", 1, n_trials=3)
    code, out, err = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert (code, err) == (3, "")
    assert out.count("\n") == 1 and "too few trials" in out and "at least 4 per run" in out


def test_schema_1_stores_are_read_and_inconclusive(tmp_path: Path, capsys) -> None:
    v1 = Path(__file__).parent / "data" / "stores" / "generated_minimal.sqlite"
    with sqlite3.connect(f"file:{v1}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    code, out, _ = _check(capsys, "--baseline", str(v1), "--candidate", str(v1))
    assert code == 3 and out.count("\n") == 1 and "schema v1" in out


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
    assert code == 1 and "| status | regression | ok | failed | export failed: OOM |" not in out
    assert "| status | ok | failed | export failed: OOM |" in out


def test_help_documents_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 pass, 1 regression, 3 inconclusive" in text and "2 unusable input" in text


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
    msg = _bad(capsys, "--baseline", str(a), "--candidate", str(a), "--reference", "methd=dense")
    assert "--reference 'methd=dense'" in msg and "method" in msg
    shutil.copy(a, tmp_path / "m2.sqlite")
    with sqlite3.connect(tmp_path / "m2.sqlite") as conn:
        conn.execute("UPDATE cells SET definition_json = '{\"other\": 1}'")
    assert "no cell of" in _bad(capsys, "--baseline", str(a), "--candidate",
                                str(tmp_path / "m2.sqlite"))  # fmt: skip
    with sqlite3.connect(tmp_path / "m2.sqlite") as conn:
        conn.execute("DROP TABLE trials")
    assert "no 'trials' table" in _bad(capsys, "--baseline", str(a), "--candidate",
                                       str(tmp_path / "m2.sqlite"))  # fmt: skip


def test_allow_different_device_compares_and_says_so(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0)
    b = _gate(tmp_path / "b.sqlite", 1, device="Another CPU @ 2.1GHz")
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b),
                          "--allow-different-device")  # fmt: skip
    assert code == 0 and "different device fingerprints" in out


def test_p99_from_short_windows_is_not_judged(tmp_path: Path, capsys) -> None:
    a = _gate(tmp_path / "a.sqlite", 0, samples_per_trial=30)
    b = _gate(tmp_path / "b.sqlite", 1, samples_per_trial=30)
    code, out, _ = _check(capsys, "--baseline", str(a), "--candidate", str(b))
    assert code == 3
    rows = _section(out, "Inconclusive")
    assert rows and all("| latency_p99 |" in r for r in rows)
    assert all("p99 of 30 samples per trial" in r for r in rows)
