"""``benchmarks/grid_accuracy_aa.py`` on committed grid_accuracy JSONs: a copy with one
cell changed is found cell by cell, and two different grids are refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from benchmarks.grid_accuracy_aa import cli

COMMITTED = Path(__file__).resolve().parents[1] / "benchmarks" / "grid_accuracy" / "claims"
FILES = [f"hapt-early-dense-s{s}.json" for s in range(3)]


def _copy(folder: Path) -> Path:
    folder.mkdir()
    for name in FILES:
        shutil.copy(COMMITTED / name, folder / name)
    return folder


def test_one_changed_cell_is_counted_and_its_size_reported(tmp_path, capsys) -> None:
    a, b = _copy(tmp_path / "a"), _copy(tmp_path / "b")
    record = json.loads((b / FILES[0]).read_text())
    record["cells"][0]["accuracy"] -= 0.05
    (b / FILES[0]).write_text(json.dumps(record))
    n = sum(len(json.loads((a / f).read_text())["cells"]) for f in FILES)
    assert cli([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert f"{n} cells: {n - 1} identical;" in out
    assert "max 5.00 points" in out
    assert out.count("same checkpoint") == 2


def test_different_grids_are_one_line_and_exit_2(tmp_path, capsys) -> None:
    a, b = _copy(tmp_path / "a"), _copy(tmp_path / "b")
    (b / FILES[2]).unlink()
    assert cli([str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grid_accuracy_aa: the folders hold different cells") and "\n" not in err
    assert cli([str(a), str(tmp_path / "missing")]) == 2
