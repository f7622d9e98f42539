"""write_report on recorded (generated) stores: tables, summary, HTML, atomic output."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from reports.tables import pareto_mask
from reports.write import MARKER, write_report
from sentryfuse.errors import StoreError

STORES = Path(__file__).parent / "data" / "stores"
REPORT_STORE = STORES / "generated_report.sqlite"
MINIMAL_STORE = STORES / "generated_minimal.sqlite"
TABLES = ("runs", "cells", "accuracy_vs_sparsity", "accuracy_by_condition", "power_modes",
          "pareto", "finetune_accuracy_gap", "finetune_energy_break_even", "claims",
          "replay_segments", "failed_cells")  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return write_report(REPORT_STORE, tmp_path_factory.mktemp("w") / "report")


def test_writes_every_table_as_csv_and_parquet(report: Path) -> None:
    for name in TABLES:
        csv = pd.read_csv(report / "tables" / f"{name}.csv")
        pq = pd.read_parquet(report / "tables" / f"{name}.parquet")
        assert list(csv.columns) == list(pq.columns) and len(csv) == len(pq), name
    assert sorted(p.name for p in report.iterdir()) == [
        MARKER,
        "report.html",
        "summary.md",
        "tables",
    ]


def test_break_even_matches_the_store(report: Path) -> None:
    """Independent path: recompute one break-even straight from SQL."""
    be = pd.read_csv(report / "tables" / "finetune_energy_break_even.csv")
    row = be.iloc[0]
    with sqlite3.connect(REPORT_STORE) as conn:
        (sg_energy,) = conn.execute(
            "SELECT energy_mj_per_inference FROM cells WHERE method='sentrygate' AND dataset=?"
            " AND backbone=? AND attention=? AND sparsity=? AND condition=? AND power_mode=?",
            (row.dataset, row.backbone, row.attention, row.sparsity, row.condition,
             row.power_mode),
        ).fetchone()  # fmt: skip
    assert row.energy_per_inference_of == "sentrygate"
    assert row.break_even_inferences == pytest.approx(row.finetune_energy_mj / sg_energy, abs=1)
    assert set(be["energy_source"]) == {"estimated"}
    assert set(be["energy_sensor"]) == {"cpu-time-estimate"}


def test_accuracy_gap_sign_follows_the_process_model(report: Path) -> None:
    gap = pd.read_csv(report / "tables" / "finetune_accuracy_gap.csv")
    assert set(gap["ft_method"]) == {"fisher+ft", "taylor+ft"}
    # In the fixture SentryGate is modality-aware and the fine-tuned baselines are not.
    dropped = gap[gap["condition"].str.startswith("drop:")]
    assert (dropped["gap_points"] > 2).all()


def test_claims_table_measured_and_na(report: Path, tmp_path: Path) -> None:
    claims = pd.read_csv(report / "tables" / "claims.csv", keep_default_na=False)
    claims = claims.set_index("claim")
    # The fixture's SentryAttend costs 0.85× dense GFLOPs: the pipeline must say −15.0%.
    assert claims.loc["SentryAttend GFLOPs vs dense attention", "measured"].startswith("-15.0%")
    assert "n/a" not in set(claims["measured"])
    assert claims.loc["accuracy over the strongest zero-shot pruning baseline", "protocol"] == (
        "same checkpoint: every method prunes this run's checkpoint"
    )
    minimal = write_report(MINIMAL_STORE, tmp_path / "min")
    small = pd.read_csv(minimal / "tables" / "claims.csv", keep_default_na=False)
    small = small.set_index("claim")
    assert small.loc["SentryAttend GFLOPs vs dense attention", "measured"] == "n/a"
    assert small.loc["fine-tuning energy vs deployment energy", "measured"] == "n/a"
    assert "no deployment replay" in (minimal / "summary.md").read_text()


def test_summary_and_html_are_self_contained(report: Path) -> None:
    md = (report / "summary.md").read_text()
    assert "| claim | paper | measured | definition |" in md
    assert "estimated (cpu-time-estimate)" in md and "measured (ina3221-sysfs)" in md
    html = (report / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 6
    assert not re.search(r"<script|<link|@import|url\(|https?://", html, re.I)


def test_store_text_is_html_escaped(tmp_path: Path) -> None:
    nasty = tmp_path / "nasty.sqlite"
    shutil.copy(MINIMAL_STORE, nasty)
    with sqlite3.connect(nasty) as conn:
        conn.execute("UPDATE runs SET profile_name = '<script>alert(1)</script>'")
        conn.execute("UPDATE cells SET status='failed', error='<img src=x onerror=alert(2)>' "
                     "WHERE method='fisher'")  # fmt: skip
    html = (write_report(nasty, tmp_path / "r") / "report.html").read_text()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_output_is_replaced_atomically(tmp_path: Path) -> None:
    out = write_report(MINIMAL_STORE, tmp_path / "report")
    before = (out / "report.html").read_text()
    bad = tmp_path / "bad.sqlite"
    shutil.copy(REPORT_STORE, bad)
    with sqlite3.connect(bad) as conn:  # fails late: after the tables were written
        conn.execute("UPDATE replay_segments SET present_json = 'not json' WHERE seq = 2")
    with pytest.raises(StoreError, match="present_json"):
        write_report(bad, out)
    assert (out / "report.html").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite", "report"]
    renamed = tmp_path / "renamed.sqlite"
    shutil.copy(MINIMAL_STORE, renamed)
    with sqlite3.connect(renamed) as conn:
        conn.execute("UPDATE runs SET profile_name = 'second-run'")
    write_report(renamed, out)  # a good run replaces the old report
    assert "second-run" in (out / "report.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.sqlite", "renamed.sqlite", "report"]


def test_report_command(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(MINIMAL_STORE, run_dir / "results.sqlite")
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report" / "report.html").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert not (tmp_path / "missing").exists()


def test_pareto_mask() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, np.nan, 0.5])
    acc = np.array([80.0, 85.0, 84.0, 85.0, 99.0, 70.0])
    assert pareto_mask(cost, acc).tolist() == [True, True, False, False, False, True]
