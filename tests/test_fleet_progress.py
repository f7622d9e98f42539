"""The fleet's ETA: the driver's training still ahead, then each kind's cells."""

from __future__ import annotations

import io

import pytest

from harness.eta import PRIORS_S, EtaModel
from harness.fleet.progress import FleetProgress, PlannedUnit


def _progress(units: list[PlannedUnit]) -> FleetProgress:
    p = FleetProgress(sum(u.n_cells for u in units), io.StringIO(),
                      train=EtaModel({**PRIORS_S, "train_unit": 0.05}))  # fmt: skip
    p.plan(units)
    return p


def test_units_the_driver_has_not_trained_for_yet_are_in_the_eta():
    p = _progress([PlannedUnit("cpu", 4, 1000.0), PlannedUnit("cpu", 4, 1000.0),
                   PlannedUnit("cpu", 4, 0.0)])  # fmt: skip
    assert p.eta_s({"cpu": 1}) is None  # no cell time yet
    p.enqueue("cpu", 4, train_s=10.0)  # 1000 sample-epochs in 10 s: 0.01 s each
    assert p.train.measured("train_unit") == pytest.approx(0.01)
    for _ in range(4):
        p.finished("cpu", "d0", True, 2.0)
    # 8 cells left at 2 s on one device = 16 s; but the driver trains 10 s more before
    # the second unit exists, and the third unit (4 × 2 s) can only start after that
    assert p.eta_s({"cpu": 1}) == pytest.approx(10.0 + 4 * 2.0)
    assert p.eta_s({"cpu": 2}) == pytest.approx(10.0 + 4 * 2.0)  # one device runs a unit
    p.enqueue("cpu", 4, train_s=10.0)
    p.enqueue("cpu", 4)
    assert p.eta_s({"cpu": 2}) == pytest.approx(8 * 2.0 / 2)  # all queued: drain only
    assert "queued: cpu 8" in p.line({"cpu": 2}) and "ETA 8s" in p.line({"cpu": 2})


def test_the_slowest_kind_sets_the_eta_and_priors_price_untrained_checkpoints():
    p = _progress([PlannedUnit("cpu", 2, 0.0), PlannedUnit("cuda", 2, 0.0),
                   PlannedUnit("cuda", 2, 200.0)])  # fmt: skip
    p.enqueue("cpu", 2)
    p.enqueue("cuda", 2)
    for kind, s in (("cpu", 5.0), ("cuda", 1.0)):
        p.finished(kind, "d0", True, s)
    # cuda: its last unit waits for 200 × 0.05 s of training (the prior) then runs 2 s
    assert p.eta_s({"cpu": 1, "cuda": 1}) == pytest.approx(max(1 * 5.0, 200 * 0.05 + 2 * 1.0))
    assert p.eta_s({"cpu": 1}) is None  # cuda cells left and no cuda device alive
