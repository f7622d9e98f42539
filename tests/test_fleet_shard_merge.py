"""``run --shard I/N`` and ``merge``: the fleet without Ray, for labs that only have cron."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from profile_helpers import tiny_profile

from harness import cli
from harness.cellgroup import group_key
from harness.cells import expand
from harness.merge import merge_stores
from harness.profile import load_profile
from harness.shard import parse_shard, shard_filter, shard_of
from harness.suite import run_suite
from sentryfuse.errors import HarnessError


def _profile(tmp: Path, name: str, min_count: int = 10) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        tiny_profile(
            "shards",
            grid={
                "conditions": ["all", "drop:a", "drop:b", "drop:c"],
                "power_modes": ["max", "single"],
            },
            train={"scorer_final_steps": 4},
            eval={"max_train": 256, "max_test": 128, "calib_samples": 32},
            measure={"min_count": min_count, "trials": 2},
        )
    )
    return path


def _rows(store: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Both shards of a 16-cell suite of two cell groups, run for real (the checkpoint
    trained once); the two groups fall in different shards of 2."""
    tmp = tmp_path_factory.mktemp("shards")
    profile = load_profile(_profile(tmp, "p"))
    outs = []
    for i in (1, 2):
        out = tmp / f"shard{i}"
        if i == 2:
            (out / "checkpoints").mkdir(parents=True)
            for ck in (tmp / "shard1" / "checkpoints").iterdir():
                os.symlink(ck, out / "checkpoints" / ck.name)
        summary = run_suite(profile, out, select=shard_filter(f"{i}/2"))
        assert summary.failed == 0
        outs.append(out)
    return tmp, profile, outs


def test_shards_partition_the_suite_by_cell_group(tmp_path):
    cells = expand(load_profile(_profile(tmp_path, "p")))
    parts = [shard_filter(f"{i}/3")(cells) for i in (1, 2, 3)]
    keys = [c.key for part in parts for c in part]
    assert sorted(keys) == sorted(c.key for c in cells)  # disjoint and complete
    # a group's cells (compared with each other, interleaved) stay on one machine
    for n in (2, 3, 5):
        shard_by_group: dict[tuple, set[int]] = {}
        for c in cells:
            shard_by_group.setdefault(group_key(c), set()).add(shard_of(c, n))
        assert len(shard_by_group) == 2 and all(len(v) == 1 for v in shard_by_group.values())
    # a cell's shard depends on the cell alone: a bigger suite keeps it in its shard
    assert [c.key for c in shard_filter("2/3")(cells[:3])] == [
        c.key for c in parts[1] if c in cells[:3]
    ]
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(HarnessError, match="I/N"):
            parse_shard(bad)


def test_merge_of_the_shards_is_the_whole_suite(shards, capsys):
    tmp, profile, outs = shards
    n = [len(_rows(o / "results.sqlite", "SELECT cell_key FROM cells")) for o in outs]
    assert all(n) and sum(n) == len(expand(profile))
    out = tmp / "merged"
    # the same shard twice: identical duplicates are kept once
    rc = cli.main(["merge", str(outs[0]), str(outs[1]), str(outs[0]), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert f"{n[0]} identical duplicates kept once" in capsys.readouterr().out
    store = out / "results.sqlite"
    got = dict(_rows(store, "SELECT cell_key, status FROM cells"))
    assert got == {c.key: "ok" for c in expand(profile)}
    assert _rows(store, "SELECT count(*) FROM runs")[0][0] == 2
    samples = _rows(store, "SELECT cell_key, count(*) FROM latency_samples GROUP BY cell_key")
    latency_n = dict(_rows(store, "SELECT cell_key, latency_n FROM cells"))
    assert dict(samples) == latency_n  # raw samples travelled with their cells
    assert _rows(store, "SELECT count(*) FROM trials")[0][0] == 2 * len(got)  # and trials
    assert (out / "report").is_dir()


def test_merge_refuses_runs_of_different_profiles(shards, tmp_path, capsys):
    tmp, _, outs = shards
    other = load_profile(_profile(tmp_path, "other", min_count=11))  # another measurement
    out_b = tmp_path / "other"
    (out_b / "checkpoints").mkdir(parents=True)
    for ck in (outs[0] / "checkpoints").iterdir():
        os.symlink(ck, out_b / "checkpoints" / ck.name)
    run_suite(other, out_b, select=lambda cells: cells[:1])
    capsys.readouterr()  # the run's own progress lines
    rc = cli.main(["merge", str(outs[0]), str(out_b), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "different profiles" in err[0]
    assert not (tmp_path / "m" / "results.sqlite").exists()


def test_merge_refuses_a_cell_with_two_different_results(shards, tmp_path):
    _, _, outs = shards
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(outs[0] / "results.sqlite", copy / "results.sqlite")
    db = sqlite3.connect(copy / "results.sqlite")
    db.execute("UPDATE cells SET latency_ms_p50 = latency_ms_p50 * 2 WHERE rowid = 1")
    db.commit()
    db.close()
    with pytest.raises(HarnessError, match="different results"):
        merge_stores([outs[0], copy], tmp_path / "m")
    assert not (tmp_path / "m" / "results.sqlite").exists()
