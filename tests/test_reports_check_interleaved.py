"""``check --interleave``'s judging half: paired per-round trials -> outcomes. (The harness
half, ``harness.remeasure``, is tested with the harness; the CLI runs both.)"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.cli import main
from reports.check_interleaved import compare_remeasured, render_remeasured
from reports.intervals import paired_shift_interval
from reports.thresholds import Thresholds


def _cell(label: str, factor: float, seed: int, drift_sigma: float = 0.08, n: int = 8):
    rng = np.random.default_rng(seed)
    rounds = rng.lognormal(0.0, drift_sigma, n)  # big drift, shared by both sides
    base = 0.7 * rounds * rng.lognormal(0, 0.005, n)
    cand = 0.7 * factor * rounds * rng.lognormal(0, 0.005, n)
    return SimpleNamespace(label=label, baseline_p50_ms=tuple(base), candidate_p50_ms=tuple(cand),
                           baseline_energy_mj=(None,) * n, candidate_energy_mj=(None,) * n,
                           error=None)  # fmt: skip


def test_pairing_by_round_cancels_drift_that_hides_a_regression() -> None:
    th = Thresholds()
    same = compare_remeasured([_cell("a", 1.0, 1), _cell("b", 1.0, 2)], th)
    assert same.exit_code == 0
    slow = compare_remeasured([_cell("a", 1.10, 3), _cell("b", 1.0, 4)], th)
    assert slow.exit_code == 1 and [f.cell for f in slow.regressions] == ["a"]
    text = render_remeasured(slow, "A", "B", th, 8)
    assert "### Regressions" in text and "paired by round" in text and "8 trials per side" in text


def test_a_cell_that_could_not_be_remeasured_is_inconclusive() -> None:
    broken = SimpleNamespace(label="x", baseline_p50_ms=(), candidate_p50_ms=(),
                             baseline_energy_mj=(), candidate_energy_mj=(),
                             error="candidate: ModelError: bad manifest")  # fmt: skip
    result = compare_remeasured([broken], Thresholds())
    assert result.exit_code == 3 and "bad manifest" in result.findings[0].detail


def test_paired_interval_needs_six_rounds_and_covers() -> None:
    assert paired_shift_interval(np.array([0.1, 0.2, 0.3, 0.1, 0.2])) is None  # 2/32 > 5%
    rng = np.random.default_rng(0)
    hits = sum(
        (iv := paired_shift_interval(rng.standard_t(3, 8) + 1.0)).lo <= 1.0 <= iv.hi
        for _ in range(500)
    )
    assert hits / 500 >= 0.94


def test_trials_without_interleave_is_refused(tmp_path, capsys) -> None:
    code = main(["check", "--baseline", str(tmp_path), "--candidate", str(tmp_path),
                 "--trials", "8"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--trials applies only with --interleave" in err[0]


@pytest.mark.parametrize("flag", [["--interleave"]])
def test_interleave_on_a_directory_without_a_store_is_one_line(tmp_path, capsys, flag) -> None:
    code = main(["check", *flag, "--baseline", str(tmp_path), "--candidate", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no results.sqlite here" in err[0]
