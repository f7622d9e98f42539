"""The run's ETA prices the remaining phases from measured phase durations (harness.eta),
and the progress lines carry it (harness.progress). Fake durations only: no timing here."""

from __future__ import annotations

import io

import pytest

from harness.eta import PRIORS_S, EtaModel, Timing, Work
from harness.progress import Progress

PRIORS = {k: 1.0 for k in PRIORS_S}  # every prior 1 s a unit, to read the sums easily


def static(n: int, *, train_units: float = 0.0, trials: int = 5, n_ft: int = 0) -> Work:
    labels = tuple(f"c{i}" for i in range(n))
    return Work("static", labels, train_units, n_ft, 10 if n_ft else 0, trials)


def replay(*, samples: int = 300, segments: int = 3, points: int = 0) -> Work:
    return Work("replay", ("r",), segments=segments, samples=samples,
                budget_points=points, budget_calls=210 if points else 0)  # fmt: skip


def measured_group(n: int, *, prepare_s: float, trial_s: float, trials: int = 5,
                   query_s: float = 0.001, overhead_s: float = 0.0) -> Timing:  # fmt: skip
    """The Timing of a group of ``n`` cells that took exactly these durations."""
    measure_s = n * trials * trial_s
    queries = int(n * trials * 100)
    return Timing(
        wall_s=n * prepare_s + measure_s + n * overhead_s,
        prepare_s=[prepare_s] * n,
        finetuned=[False] * n,
        export_s=[prepare_s / 4] * n,
        measure_s=measure_s,
        cell_trials=n * trials,
        queries=queries,
        window_s=queries * query_s,
    )


def test_before_anything_is_measured_the_priors_price_each_phase():
    m = EtaModel(PRIORS)
    # 11 cells: prepare + overhead each, and 11 × 5 trial windows; 600 units of training
    assert m.work_s(static(11, train_units=600)) == pytest.approx(600 + 11 * 2 + 55)
    # 3 segments (export + switch each) and 300 queries
    assert m.work_s(replay()) == pytest.approx(3 * 2 + 300)


def test_a_measured_group_prices_the_next_by_its_rounds_and_preparations():
    m = EtaModel(PRIORS)
    m.group_done(static(11), measured_group(11, prepare_s=3.0, trial_s=0.2, overhead_s=0.1))
    # the next group has 10 cells: 10 × (3 + 0.1) + 10 × 5 × 0.2 s
    assert m.work_s(static(10)) == pytest.approx(10 * 3.1 + 10.0)
    # more trial rounds cost proportionally more measuring, not more preparing
    assert m.work_s(static(10, trials=10)) == pytest.approx(10 * 3.1 + 20.0)


def test_the_latest_group_counts_most_since_load_moves_during_a_run():
    m = EtaModel(PRIORS)
    m.group_done(static(10), measured_group(10, prepare_s=4.0, trial_s=0.2))
    m.group_done(static(10), measured_group(10, prepare_s=1.0, trial_s=0.2))
    # (4 × 10 × 0.5 + 1 × 10) / (10 × 0.5 + 10): the earlier group weighs half
    assert m.rate("prepare") == pytest.approx(2.0)


def test_training_is_priced_per_sample_epoch_and_does_not_scale_the_rest():
    m = EtaModel(PRIORS)
    m.trained(6000, 240.0)  # 0.04 s a sample-epoch
    assert m.rate("train_unit") == pytest.approx(0.04)
    assert m.work_s(static(1, train_units=3000, trials=0)) == pytest.approx(120 + 2)
    assert m.speed() == 1.0  # a loaded machine's training says little about inference


def test_rates_not_measured_yet_follow_the_machines_measured_speed():
    m = EtaModel(PRIORS)
    m.group_done(static(4), measured_group(4, prepare_s=2.0, trial_s=2.0, query_s=2.0))
    assert m.speed() == pytest.approx(2.0)  # every measured rate is 2x (or 0.5x) its prior
    assert m.rate("finetune_step") == pytest.approx(2.0)  # not measured: prior × speed
    assert m.rate("switch") == pytest.approx(2.0)


def test_fine_tuning_is_learned_from_the_difference_to_plain_cells():
    m = EtaModel(PRIORS)
    t = measured_group(4, prepare_s=2.0, trial_s=0.1)
    t.prepare_s[-1], t.finetuned[-1] = 2.0 + 10 * 0.5, True  # 10 steps of 0.5 s on top
    t.wall_s += 10 * 0.5
    m.group_done(static(4, n_ft=1), t)
    assert m.rate("finetune_step") == pytest.approx(0.5)


def test_a_replay_is_priced_from_measured_queries_then_from_the_replay_itself():
    m = EtaModel(PRIORS)
    m.group_done(static(10), measured_group(10, prepare_s=1.0, trial_s=0.2, query_s=0.002))
    export, switch = m.rate("export"), m.rate("switch")
    before = m.work_s(replay(points=18))
    assert before == pytest.approx(3 * (export + switch) + 300 * 0.002
                                   + 18 * (export + switch + 210 * 0.002))  # fmt: skip
    m.group_done(replay(points=18), Timing(wall_s=before * 3, prepare_s=[before * 3]))
    assert m.work_s(replay(points=18)) == pytest.approx(before * 3)  # learned: 3x slower


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_progress_lines_carry_the_eta_of_the_phases_left():
    plan = [static(3, train_units=100), static(2), replay()]
    clock = FakeClock()
    stream = io.StringIO()
    p = Progress.start(plan, priors=PRIORS, stream=stream, bar=False, clock=clock)
    assert p.eta_s() == pytest.approx(EtaModel(PRIORS).remaining_s(plan))
    clock.t += 50.0
    p.trained("ds/early/dense s0", 100, 50.0)
    assert p.eta_s() == pytest.approx(p.model.remaining_s(plan) - 100 * 0.5)  # training done
    first = measured_group(3, prepare_s=1.0, trial_s=0.1)
    clock.t += first.wall_s
    p.group_done(plan[0], first, ["ok", "ok", "failed"])
    assert p.eta_s() == pytest.approx(p.model.remaining_s(plan[1:]))
    p.group_done(plan[1], measured_group(2, prepare_s=1.0, trial_s=0.1), ["ok", "ok"])
    p.group_done(plan[2], Timing(wall_s=4.0, prepare_s=[4.0]), ["ok"])
    assert p.eta_s() == 0.0
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("6 cells to run in 3 groups") and "(rough" in lines[0]
    assert lines[1].startswith("trained ds/early/dense s0  50.0 s  elapsed 0:50  ETA ")
    group = lines[2:5]  # a group's cells finish together: one ETA for all of them
    assert [ln.split("]")[0] for ln in group] == ["[1/6", "[2/6", "[3/6"]
    assert len({ln.rsplit("ETA ", 1)[1] for ln in group}) == 1
    assert "failed" in group[2] and "1.5 s" in group[0]  # 1 s prepare + 5 × 0.1 s rounds
    assert lines[-1].startswith("[6/6] ok") and lines[-1].endswith("ETA 0:00")


def test_a_resumed_run_prices_training_from_the_checkpoints_it_already_trained():
    plan = [static(2, train_units=1000), static(2)]
    stream = io.StringIO()
    p = Progress.start(plan, priors=PRIORS, trained=[(500, 100.0), (500, 100.0)],
                       stream=stream, bar=False, clock=FakeClock())  # fmt: skip
    assert p.model.measured("train_unit") == pytest.approx(0.2)  # 200 s / 1000 sample-epochs
    assert p.eta_s() == pytest.approx(1000 * 0.2 + EtaModel(PRIORS).remaining_s([static(2)] * 2))
    first = stream.getvalue().splitlines()[0]
    assert "training priced from the 2 checkpoint(s) trained here before" in first
    fresh = io.StringIO()
    Progress.start(plan, priors=PRIORS, stream=fresh, bar=False, clock=FakeClock())
    assert "rough: nothing measured yet" in fresh.getvalue()
