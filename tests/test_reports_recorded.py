"""The report writer and the check on a store recorded from a real quickstart run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from harness.cli import main as cli
from reports.write import write_report

STORE = Path(__file__).parent / "data" / "stores" / "quickstart_recorded.sqlite"


def test_report_from_a_real_run(tmp_path: Path) -> None:
    out = write_report(STORE, tmp_path / "report")
    summary = (out / "summary.md").read_text()
    with sqlite3.connect(f"file:{STORE}?mode=ro", uri=True) as db:
        n_cells = db.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
        n_replay = db.execute("SELECT COUNT(DISTINCT cell_key) FROM replay_segments").fetchone()[0]
    assert f"{n_cells} cells" in summary
    assert f"{n_replay} deployment replays" in summary
    assert "estimated (cpu-time-estimate)" in summary  # never presented as measured
    assert "measured (" not in summary
    html = (out / "report.html").read_text()
    assert "<script src=" not in html and "http://" not in html and "https://" not in html
    assert (out / "tables").is_dir()


def test_check_on_a_schema_1_store_is_inconclusive_in_one_line(capsys) -> None:
    """This recorded store predates trials: one window per cell, so no trial-level test
    exists (the old gate compared its per-query samples and called drift significant)."""
    assert cli(["check", "--baseline", str(STORE), "--candidate", str(STORE)]) == 3
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("sentryfuse check: inconclusive: ")
    assert "schema v1 (one trial per cell)" in out and "at least 4 trials per run" in out


def test_report_marks_the_unstable_cells_of_a_real_run(tmp_path: Path) -> None:
    out = write_report(STORE, tmp_path / "report")
    with sqlite3.connect(f"file:{STORE}?mode=ro", uri=True) as db:
        unstable = db.execute(
            "SELECT COUNT(*) FROM cells WHERE stable = 0 AND kind = 'static'"
        ).fetchone()[0]
    assert unstable > 0
    summary = (out / "summary.md").read_text()
    assert summary.index("## Verdict") < summary.index("## Accuracy vs sparsity")
    assert summary.index("## Accuracy vs sparsity") < summary.index("## Raw tables")
    assert summary.count("⚠ unstable: latency CV") >= unstable  # raw cells table, at least
    html = (out / "report.html").read_text()
    assert html.count('<span class="badge">⚠ unstable</span>') >= unstable
