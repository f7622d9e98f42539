"""``sentryfuse report RUN --ordinary ORDINARY``: the paper's protocol beside the
same-checkpoint claims, and the full model's cost, from two real stores of one grid."""

from __future__ import annotations

import csv

import pytest

from harness.cli import main
from tests.grid_stores import ORDINARY, PRUNABLE, TRAIN, grid_store


def _claims(run) -> dict[str, dict]:
    with open(run / "report" / "tables" / "claims.csv") as f:
        return {r["claim"]: r for r in csv.DictReader(f)}


@pytest.fixture
def runs(tmp_path):
    prunable = grid_store(tmp_path / "prunable" / "results.sqlite", PRUNABLE, subnet=True)
    ordinary = grid_store(tmp_path / "ordinary" / "results.sqlite", ORDINARY, subnet=False)
    return prunable.parent, ordinary.parent


def test_report_adds_the_paper_protocol_and_the_full_model(runs, capsys) -> None:
    prunable, ordinary = runs
    assert main(["report", str(prunable), "--ordinary", str(ordinary)]) == 0
    summary = (prunable / "report" / "summary.md").read_text()
    claims = _claims(prunable)
    # same checkpoint: magnitude prunes the prunable checkpoint (80 / 60)
    same = claims["accuracy over the strongest zero-shot pruning baseline"]
    assert same["measured"].startswith("+6.0 points [+3.5, +8.5] vs magnitude")
    assert same["protocol"].startswith("same checkpoint")
    # paper protocol: magnitude on the ordinary checkpoints (75 / 50)
    paper = claims["accuracy over the strongest zero-shot pruning baseline (paper protocol)"]
    assert paper["measured"].startswith("+11.0 points [+8.5, +13.5] vs magnitude")
    assert paper["protocol"].startswith("paper protocol: SentryGate prunes this run's")
    dropout = claims["accuracy over the strongest baseline under modality dropout (paper protocol)"]
    assert dropout["measured"].startswith("up to +22.0 points [+17.0, +27.0] vs magnitude")
    assert "1 of 2 means within 0.5 points" in summary
    with open(prunable / "report" / "tables" / "full_model_vs_ordinary.csv") as f:
        rows = {r["condition"]: r for r in csv.DictReader(f)}
    assert float(rows["drop:gyro"]["difference_points"]) == pytest.approx(-1.0)
    assert rows["drop:gyro"]["within_0.5"] == "False" and rows["all"]["within_0.5"] == "True"
    # without --ordinary: the same-checkpoint claims only, no full-model section
    assert main(["report", str(prunable)]) == 0
    summary = (prunable / "report" / "summary.md").read_text()
    assert "paper protocol" not in summary and "The full model" not in summary
    assert len(_claims(prunable)) == 6
    assert not (prunable / "report" / "tables" / "full_model_vs_ordinary.csv").exists()


def _refused(capsys, argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_unpairable_stores_are_refused_in_one_line_and_nothing_is_written(
    runs, tmp_path, capsys
) -> None:
    prunable, ordinary = runs
    # the two the wrong way round
    _refused(
        capsys, ["report", str(ordinary), "--ordinary", str(prunable)], "holds prunability-trained"
    )
    # an "ordinary" run that is not: both prunability-trained
    twin = grid_store(tmp_path / "twin" / "results.sqlite", ORDINARY, subnet=True).parent
    _refused(capsys, ["report", str(prunable), "--ordinary", str(twin)], "subnet = true")
    # this run itself ordinary: no prunability-trained SentryGate to put beside them
    plain = grid_store(tmp_path / "plain" / "results.sqlite", PRUNABLE, subnet=False).parent
    _refused(
        capsys,
        ["report", str(plain), "--ordinary", str(ordinary)],
        "this run's checkpoints are ordinary",
    )
    # trained for another length
    longer = grid_store(tmp_path / "longer" / "results.sqlite", ORDINARY, subnet=False,
                        train={**TRAIN, "epochs": 10}).parent  # fmt: skip
    _refused(
        capsys,
        ["report", str(prunable), "--ordinary", str(longer)],
        "[train] epochs (6 here, 10 there)",
    )
    # no cell in common with SentryGate's (another sparsity)
    other = {("magnitude", "all", 0.3): [0.8, 0.8, 0.8]}
    apart = grid_store(tmp_path / "apart" / "results.sqlite", other, subnet=False).parent
    _refused(
        capsys, ["report", str(prunable), "--ordinary", str(apart)], "no cell and seed in common"
    )
    _refused(capsys, ["report", str(prunable), "--ordinary", str(tmp_path / "nowhere")], "nowhere")
    assert not (prunable / "report").exists() and not (ordinary / "report").exists()


def test_without_unpruned_cells_the_full_model_section_says_so(runs, tmp_path) -> None:
    prunable, _ = runs
    pruned_only = {k: v for k, v in ORDINARY.items() if k[0] != "dense"}
    ordinary = grid_store(tmp_path / "nodense" / "results.sqlite", pruned_only, subnet=False)
    assert main(["report", str(prunable), "--ordinary", str(ordinary.parent)]) == 0
    summary = (prunable / "report" / "summary.md").read_text()
    assert "no unpruned (dense) cell is in both runs" in summary
    assert (
        "+11.0 points"
        in _claims(prunable)[
            "accuracy over the strongest zero-shot pruning baseline (paper protocol)"
        ]["measured"]
    )
