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


def test_check_passes_a_run_against_itself(tmp_path: Path, capsys) -> None:
    assert cli(["check", "--baseline", str(STORE), "--candidate", str(STORE)]) == 0
    assert "regression" in capsys.readouterr().out.lower()
