"""Latency/energy budgets: least-pruning selection on fake and real latency models, the
store cache, profile validation, and a deployment replay with budgets through a run."""

from __future__ import annotations

import argparse
import json
import sqlite3

import numpy as np
import pytest
import torch
from profile_helpers import tiny_profile

from harness.commands import run as run_cmd
from harness.latency_model import (
    LatencyModel,
    LatencyModelCache,
    LatencyPoint,
    build_latency_model,
    model_key,
)
from harness.policy import Budget, least_pruning, met
from harness.profile import load_profile
from reports.budgets import budget_table
from reports.store import load_store
from sentryfuse.errors import ProfileError
from sentryfuse.models import KeepSet, ModalityInput, build_model, model_config_for, prune_model
from targets.cpu import CpuTarget


def fake(points: list[tuple[float, float, float | None]]) -> LatencyModel:
    return LatencyModel("k", tuple(LatencyPoint(s, p99 * 0.8, p99, e) for s, p99, e in points))


def test_least_pruning_meets_the_budget_or_says_it_cannot():
    lm = fake([(0.0, 4.0, 2.0), (0.3, 3.0, 1.5), (0.5, 2.2, 1.1), (0.7, 1.6, None)])
    assert least_pruning(lm, Budget("deadline_ms", 10.0)).sparsity == 0.0
    c = least_pruning(lm, Budget("deadline_ms", 2.5))
    assert (c.sparsity, c.predicted, c.feasible) == (0.5, 2.2, True)
    assert least_pruning(lm, Budget("deadline_ms", 3.0)).sparsity == 0.3  # ≤ is met
    assert least_pruning(lm, Budget("energy_mj", 1.2)).sparsity == 0.5
    worst = least_pruning(lm, Budget("deadline_ms", 1.0))
    assert (worst.sparsity, worst.feasible) == (0.7, False)
    assert not least_pruning(lm, Budget("energy_mj", 0.5)).feasible  # 0.7 has no energy
    assert met(Budget("deadline_ms", 2.0), [1.0] * 99 + [3.0], None)  # 1% misses: met
    assert not met(Budget("deadline_ms", 2.0), [1.0] * 98 + [3.0] * 2, None)
    assert met(Budget("energy_mj", 1.0), [], None) is None


SPECS = [ModalityInput("acc", 32, 3), ModalityInput("gyro", 32, 3)]


def test_a_real_latency_model_is_measured_cached_and_chosen_from(tmp_path):
    torch.manual_seed(0)
    dense = build_model(model_config_for(SPECS, "early", "dense", "tiny", num_classes=4)).eval()

    def variant_at(s: float):
        keep = {n: KeepSet(list(range(max(1, round(b.attn.n_head * (1 - s))))),
                           list(range(max(1, round(b.mlp.d_ff * (1 - s))))))
                for n, b in dense.blocks()}  # fmt: skip
        return prune_model(dense, keep)

    rng = np.random.default_rng(0)
    inputs = [{s.name: rng.standard_normal((1, s.steps, s.features), dtype=np.float32)
               for s in SPECS} for _ in range(4)]  # fmt: skip
    target = CpuTarget()
    definition = {"runtime": "onnxruntime", "power_mode": "current", "what": "test"}
    key = model_key(definition, target.fingerprint())
    lm = build_latency_model(
        variant_at, inputs, target, "onnxruntime", tmp_path, key, (0.0, 0.5), 30
    )
    assert [p.sparsity for p in lm.points] == [0.0, 0.5]
    assert all(0 < p.latency_ms_p50 <= p.latency_ms_p99 for p in lm.points)
    assert all(p.energy_mj is not None and p.energy_mj > 0 for p in lm.points)  # estimated
    cache = LatencyModelCache(tmp_path / "results.sqlite")
    assert cache.get(key) is None
    cache.put(lm, definition, target.fingerprint())
    back = cache.get(key)
    assert back is not None and back.cached and back.points == lm.points
    slowest = max(p.latency_ms_p99 for p in lm.points)
    assert least_pruning(back, Budget("deadline_ms", slowest)).feasible
    row = (
        sqlite3.connect(tmp_path / "results.sqlite")
        .execute("SELECT runtime, power_mode, fingerprint_json FROM latency_models")
        .fetchone()
    )
    assert row[:2] == ("onnxruntime", "current") and json.loads(row[2])["target"] == "cpu"


REPLAY = {
    "methods": ["sentrygate"],
    "duration_s": 4.0,
    "rate_hz": 10.0,
    "budgets": {"max": {"deadline_ms": 1000.0}, "single": {"deadline_ms": 0.00001}},
    "events": [
        {"t_s": 0.0, "present": ["a", "b", "c"], "power_mode": "max"},
        {"t_s": 2.0, "power_mode": "single"},
    ],
}


def _profile(**replay: object) -> str:
    return tiny_profile(
        "budgets",
        grid={"methods": ["sentrygate"], "runtimes": ["onnxruntime"]},
        eval={"calib_samples": None},
        replay={**REPLAY, **replay},
    )


PROFILE = _profile()


def test_budget_profiles_are_validated(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    r = load_profile(path).replay
    assert r.budgets == (("max", "deadline_ms", 1000.0), ("single", "deadline_ms", 1e-05))
    assert r.budget_for("single") == ("deadline_ms", 1e-05) and r.policy == ()
    for bad in ({"deadline_ms": 1.0, "energy_mj": 2.0}, {"latency": 3}):
        path.write_text(_profile(budgets={**REPLAY["budgets"], "max": bad}))
        with pytest.raises(ProfileError, match="replay.budgets.max: give exactly one of"):
            load_profile(path)
    path.write_text(_profile(policy={"max": 0.3}))
    with pytest.raises(ProfileError, match="already has a fixed sparsity"):
        load_profile(path)


@pytest.mark.slow
def test_a_replay_with_budgets_reports_target_choice_and_whether_it_was_met(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    out = tmp_path / "out"
    args = argparse.Namespace(profile=path, out=out, resume=False, dry_run=False)
    assert run_cmd.run(args, target_factory=lambda name: CpuTarget()) == 0
    db = sqlite3.connect(out / "results.sqlite")
    (extra,) = db.execute("SELECT extra_json FROM cells WHERE kind = 'replay'").fetchone()
    segs = db.execute("SELECT seq, sparsity, deadline_misses, n_samples FROM replay_segments "
                      "ORDER BY seq").fetchall()  # fmt: skip
    n_models = db.execute("SELECT count(*) FROM latency_models").fetchone()[0]
    rows = json.loads(extra)["budgets"]
    assert [r["chosen_sparsity"] for r in rows] == [0.0, 0.8]
    assert [r["feasible"] for r in rows] == [True, False]
    assert [r["met"] for r in rows] == [True, False]
    assert rows[0]["target"] == "p99 ≤ 1000 ms" and rows[1]["misses_after_settle"] > 0
    assert [s[1] for s in segs] == [0.0, 0.8]  # SentryGate deployed what was chosen
    assert segs[1][2] == segs[1][3]  # every sample misses an impossible deadline
    assert n_models == 2  # one per power mode (same sensors)
    table = budget_table(load_store(out).cells)
    assert list(table["chosen_sparsity"]) == [0.0, 0.8] and list(table["met"]) == [True, False]
