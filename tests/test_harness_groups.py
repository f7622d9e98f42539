"""Cell groups through the real suite on a tiny synthetic profile (real CPU target, SQLite)."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from profile_helpers import tiny_profile

from harness import registry
from harness.cellgroup import plan_groups, run_cell_group
from harness.cells import expand
from harness.profile import load_profile
from harness.store import STORE_NAME, Store
from harness.suite import preflight, run_suite
from targets.cpu import CpuTarget

GRID = {
    "methods": ["sentrygate", "magnitude"],
    "conditions": ["all", "drop:a"],
    "power_modes": ["current"],  # no thread change: 2 threads on 2 loaded shared cores stall
}
MEASURE = {"min_duration_s": 0.02, "trials": 3, "max_trial_spread": 0.5}
PROFILE = tiny_profile("groups", grid=GRID, measure=MEASURE)


class SlowRunner:
    """A real runner plus a planted 2 ms busy-wait per call (a candidate's regression)."""

    def __init__(self, inner) -> None:
        self.inner, self.runtime, self.weights_bytes = inner, inner.runtime, inner.weights_bytes

    def prepare(self, batch):
        return self.inner.prepare(batch)

    def __call__(self, batch):
        out = self.inner(batch)
        end = time.perf_counter() + 0.002  # 2 ms on top of the real call, not a floor
        while time.perf_counter() < end:
            pass
        return out

    def synchronize(self) -> None:
        self.inner.synchronize()

    def close(self) -> None:
        self.inner.close()


class SlowCpu(CpuTarget):
    def export(self, model, example_inputs, runtime, workdir):
        return SlowRunner(super().export(model, example_inputs, runtime, workdir))


@pytest.fixture()
def profile(tmp_path):
    path = tmp_path / "groups.toml"
    path.write_text(PROFILE)
    return load_profile(path)


def test_plan_groups_bounds_and_balances(profile, tmp_path):
    grid = {**GRID, "sparsities": [0.2, 0.3, 0.4, 0.5, 0.6], "power_modes": ["max", "single"]}
    path = tmp_path / "big.toml"
    path.write_text(tiny_profile("groups", grid=grid, measure=MEASURE))
    cells = expand(load_profile(path))  # 2 conditions x 2 modes x (dense + 2 x 5) = 44
    groups = plan_groups(cells)
    assert sorted(c.key for g in groups for c in g) == sorted(c.key for c in cells)
    assert all(len({(c.power_mode, c.runtime, c.target) for c in g}) == 1 for g in groups)
    sizes = sorted(len(g) for g in groups)
    assert max(sizes) <= 12 and sizes == [11, 11, 11, 11]  # 22 per mode -> 11 + 11
    assert [len(g) for g in plan_groups(cells[:5], max_cells=2)] == [2, 2, 1]


def test_group_interrupted_after_some_commits_resumes_the_rest(profile, tmp_path):
    out = tmp_path / "out"
    cells, targets, art = preflight(
        profile, out, resume=False, target_factory=registry.default_target_factory
    )
    (group,) = plan_groups(cells)
    assert len(group) == 6
    results = run_cell_group(group, art, targets["cpu"], out)
    assert [r.status for r in results] == ["ok"] * 6, [r.error for r in results]
    # the suite commits each cell in its own transaction; a kill after two of them:
    with Store(out / STORE_NAME) as store:
        run_id = store.begin_run(profile.name, profile.profile_hash(), profile.to_json(), {})
        for cell, result in zip(group[:2], results[:2], strict=True):
            store.commit_cell(run_id, cell.key, cell.kind, cell.definition, result)
    db = sqlite3.connect(out / STORE_NAME)
    before = db.execute("SELECT cell_key, started_at, latency_ms_p50 FROM cells").fetchall()

    summary = run_suite(profile, out, resume=True, progress=False)
    assert (summary.skipped, summary.ok, summary.failed) == (2, 4, 0)
    rows = db.execute(
        "SELECT cell_key, status, trials, latency_ms_p50, latency_ms_p50_ci_lo,"
        " latency_ms_p50_ci_hi, latency_trial_spread, stable, unstable_reason, accuracy,"
        " accuracy_ci_lo, accuracy_ci_hi, energy_source, extra_json, started_at FROM cells"
    ).fetchall()
    assert {r[0] for r in rows} == {c.key for c in cells}
    for key, started, p50 in before:  # the committed cells were not redone
        assert (key, started, p50) in {(r[0], r[14], r[3]) for r in rows}
    for r in rows:
        assert r[1] == "ok" and r[2] == 3
        assert r[4] <= r[3] <= r[5] and r[6] >= 0.0
        # stable iff the trials agree and (CPU target) they got their cores: on a loaded
        # machine the CPU share check may mark a cell unstable whatever its spread
        starved = bool(json.loads(r[13]).get("cpu_starved"))
        assert r[7] == int(r[6] <= 0.5 and not starved) and (r[8] is None) == bool(r[7])
        assert r[10] <= r[9] <= r[11]
        assert r[12] == "estimated"
    resumed = [json.loads(r[13]) for r in rows if r[0] not in {b[0] for b in before}]
    assert all(x["interleave_group_size"] == 4 for x in resumed)  # the 4 left, together
    assert all(len(set(x["trial_positions"])) == 3 for x in resumed)  # rotated each round
    # every resumed cell ran once per round, in a rotated position
    for key in {r[0] for r in rows} - {b[0] for b in before}:
        trials = db.execute(
            "SELECT trial, round, n FROM trials WHERE cell_key=? ORDER BY trial", (key,)
        ).fetchall()
        assert [t[1] for t in trials] == [0, 1, 2]
        n_samples = db.execute(
            "SELECT trial, count(*) FROM latency_samples WHERE cell_key=? GROUP BY trial", (key,)
        ).fetchall()
        assert n_samples == [(t[0], t[2]) for t in trials]


def test_remeasure_interleaved_two_runs_and_missing_artefacts(profile, tmp_path):
    import shutil

    from harness.remeasure import remeasure_interleaved
    from sentryfuse.errors import HarnessError

    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run_suite(profile, out, progress=False).ok == 6
    got = remeasure_interleaved(a, b, trials=4)
    assert len(got) == 6 and all(r.error is None for r in got)
    db = sqlite3.connect(b / STORE_NAME)
    keys_b = {k for (k,) in db.execute("SELECT cell_key FROM cells")}
    for r in got:
        assert r.baseline_key == r.candidate_key and r.candidate_key in keys_b  # same definition
        assert len(r.baseline_p50_ms) == len(r.candidate_p50_ms) == 4
        assert all(x > 0 for x in r.baseline_p50_ms + r.candidate_p50_ms)
        assert all(e is not None and e > 0 for e in r.baseline_energy_mj + r.candidate_energy_mj)
    first = [(got[0].baseline_key, got[0].candidate_key)]
    one = remeasure_interleaved(a, b, pairs=first, candidate_target_factory=lambda n: SlowCpu())
    assert len(one) == 1 and len(one[0].baseline_p50_ms) == 3  # the cells' own trials
    paired = [c - b for b, c in zip(one[0].baseline_p50_ms, one[0].candidate_p50_ms, strict=True)]
    assert sorted(paired)[1] > 1.0  # the planted 2 ms shows in the paired (same-round) median
    shutil.rmtree(b / "checkpoints")
    with pytest.raises(HarnessError, match="is not on disk") as exc:
        remeasure_interleaved(a, b)
    assert "\n" not in str(exc.value)
    with pytest.raises(HarnessError, match="no results.sqlite"):
        remeasure_interleaved(a, tmp_path / "nowhere")
