"""``benchmarks/grid_accuracy.py``: a grid's accuracy cells without latency, checked
against what ``sentryfuse run`` stores for the same cells on the same checkpoint."""

from __future__ import annotations

import json
import sqlite3

import pytest

from benchmarks import grid_accuracy, paper_grid_summary
from harness.cli import main as cli
from tests.profile_helpers import tiny_profile


def test_accuracy_equals_the_stores_and_a_rerun_skips_finished_jobs(tmp_path, capsys) -> None:
    profile = tmp_path / "ga.toml"
    profile.write_text(
        tiny_profile(
            "ga",
            grid={
                "methods": ["magnitude", "sentrygate", "magnitude+ft"],
                "conditions": ["all", "random:0.3"],
            },
            finetune={"steps": 2},
        )
    )
    assert cli(["run", str(profile), "--out", str(tmp_path / "ga")]) == 0
    # --work is the folder above the run's, so the job reuses the checkpoint it trained
    argv = [str(profile), "--out", str(tmp_path / "json"), "--work", str(tmp_path)]
    assert grid_accuracy.main(argv) == 0
    record = json.loads(
        (tmp_path / "json" / "ga" / "synthetic-early-sentryattend-s0.json").read_text()
    )
    with sqlite3.connect(tmp_path / "ga" / "results.sqlite") as db:
        stored = dict(db.execute("SELECT cell_key, accuracy FROM cells WHERE kind = 'static'"))
    rows = record["cells"]
    # dense + 2 zero-shot methods, 2 conditions each; the fine-tuned cells are left out
    assert sorted((r["method"], r["condition"]) for r in rows) == sorted(
        (m, c) for m in ("dense", "magnitude", "sentrygate") for c in ("all", "random:0.3")
    )
    assert all(r["accuracy"] == stored[r["cell_key"]] for r in rows)
    routed = [r for r in rows if r["condition"] == "random:0.3" and r["method"] != "dense"]
    assert all(r["extra"]["accuracy_routing"] == "per-pattern" for r in routed)

    capsys.readouterr()
    assert grid_accuracy.main(argv) == 0
    assert "0 checkpoint jobs to run" in capsys.readouterr().out

    paper_grid_summary.main(str(tmp_path / "json" / "ga"))
    out = capsys.readouterr().out
    assert "6 cells from" in out and "| overall | 2 |" in out
    assert "speedup" not in out  # no latency in these records, so no latency table
    assert "behind the best baseline of the cell" in out

    folder = str(tmp_path / "json" / "ga")
    assert paper_grid_summary.cli([folder, "--backbone", "early"]) == 0
    assert "6 cells from" in capsys.readouterr().out
    for argv in ([folder, "--backbone", "late"], [str(tmp_path / "missing")], [str(profile)]):
        assert paper_grid_summary.cli(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("paper_grid_summary: ") and "\n" not in err


def test_a_bad_profile_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_profile("bad", grid={"sparsities": [1.5]}))
    assert grid_accuracy.main([str(bad), "--out", str(tmp_path / "json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grid_accuracy: ") and "\n" not in err
    assert not (tmp_path / "json").exists()


def test_seeds_replace_the_profiles_and_nothing_else(tmp_path, capsys) -> None:
    profile = tmp_path / "gs.toml"
    profile.write_text(tiny_profile("gs", grid={"methods": ["magnitude"], "seeds": [0]}))
    out = tmp_path / "json"
    base = [str(profile), "--out", str(out), "--work", str(tmp_path / "work")]
    assert grid_accuracy.main(base) == 0
    assert grid_accuracy.main([*base, "--seeds", "2"]) == 0
    first, more = (
        json.loads((out / "gs" / f"synthetic-early-sentryattend-s{s}.json").read_text())
        for s in (0, 2)
    )
    assert more["group"][-1] == 2 and {r["seed"] for r in more["cells"]} == {2}
    assert more["settings"] == first["settings"]  # so the summary pairs them with seed 0
    assert [r["accuracy"] for r in more["cells"]] != [r["accuracy"] for r in first["cells"]]
    capsys.readouterr()
    assert grid_accuracy.main([*base, "--seeds", "0,2", "--dry-run"]) == 0
    assert "0 checkpoint jobs to run" in capsys.readouterr().out
    for bad in ("2,x", "2,2", "-1", ""):
        with pytest.raises(SystemExit) as exc:
            grid_accuracy.main([*base, "--seeds", bad])
        assert exc.value.code == 2
        assert "--seeds" in capsys.readouterr().err
