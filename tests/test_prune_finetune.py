"""Fine-tuning baselines: a pruned model trains under the condition, cost is recorded."""

from __future__ import annotations

import pytest
import torch

from sentryfuse.checkpoint import load_checkpoint, save_checkpoint
from sentryfuse.conditions import parse_condition
from sentryfuse.data import load_dataset
from sentryfuse.errors import PruneError
from sentryfuse.finetune import finetune, prune_and_finetune
from sentryfuse.gate import ImportanceScorer
from sentryfuse.models import build_model, model_config_for
from targets.base import EnergyReading
from targets.cpu_energy import ActiveCoresEstimateSensor


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = load_dataset("synthetic", max_train=128, max_test=32, seed=0)
    torch.manual_seed(0)
    model = build_model(model_config_for(data, "late", "dense", "tiny")).eval()
    out = tmp_path_factory.mktemp("ft") / "ck"
    save_checkpoint(
        out, model, ImportanceScorer.for_model(model, 16), {"dataset": {"name": "synthetic"}}, {}
    )
    return load_checkpoint(out), data


def test_finetune_trains_a_copy_and_reports_no_energy_without_meter(setup):
    ckpt, data = setup
    before = {k: v.clone() for k, v in ckpt.model.state_dict().items()}
    res = finetune(ckpt.model, data.train, parse_condition("all"), steps=5, lr=1e-3, seed=0)
    assert res.energy_mj is None and res.energy_source is None
    assert res.wall_s > 0 and res.steps == 5 and res.final_loss == res.final_loss
    changed = any(
        not torch.equal(v, res.model.state_dict()[k]) for k, v in before.items() if "gate" not in k
    )
    assert changed
    for k, v in ckpt.model.state_dict().items():
        assert torch.equal(v, before[k])  # the input model is untouched
    for k, v in res.model.state_dict().items():
        if k.endswith("_gate"):
            assert torch.equal(v, before[k])  # gates are not trained


def test_prune_then_finetune_under_dropout_with_estimated_meter(setup):
    ckpt, data = setup
    sensor = ActiveCoresEstimateSensor()
    variant, res = prune_and_finetune(
        ckpt, "magnitude", 0.5, data.train, parse_condition("drop:c"),
        steps=4, lr=1e-3, present=["a", "b"], meter=sensor.window,
    )  # fmt: skip
    assert res.energy_source == "estimated" and res.energy_mj is not None and res.energy_mj >= 0
    x = {m: torch.from_numpy(data.test.x[m][:4]) for m in ("a", "b")}
    assert res.model(x).shape == (4, data.num_classes)
    assert res.model.config.present == variant.model.config.present == ["a", "b"]
    res2 = finetune(variant.model, data.train, parse_condition("random:0.3"), steps=3, lr=1e-3)
    assert torch.isfinite(res2.model(x)).all()


def test_finetune_rejects_conditions_the_pruned_model_cannot_serve(setup):
    ckpt, data = setup
    variant, _ = prune_and_finetune(
        ckpt, "random", 0.3, data.train, parse_condition("drop:c"), steps=1, lr=1e-3,
        present=["a", "b"],
    )  # fmt: skip
    with pytest.raises(PruneError):
        finetune(variant.model, data.train, parse_condition("drop:a"), steps=1, lr=1e-3)


class _StallingClock:
    """A fake clock: each call advances 10 ms; the 5th step's end also sees a 30 s stall
    (another tenant held the cores)."""

    def __init__(self) -> None:
        self.t, self.calls = 0.0, 0

    def __call__(self) -> float:
        self.calls += 1
        self.t += 0.01
        if self.calls == 12:  # start, then 2 calls per step: the end of step 5
            self.t += 30.0
        return self.t


def test_a_modelled_estimate_charges_the_median_step_not_a_neighbours_stall(setup):
    ckpt, data = setup
    clock = _StallingClock()
    sensor = ActiveCoresEstimateSensor(cpu_watts_per_core=10.0, clock=clock, threads=lambda: 1)
    res = finetune(
        ckpt.model, data.train, parse_condition("all"), steps=8, lr=1e-3,
        meter=sensor.window, clock=clock,
    )  # fmt: skip
    assert res.wall_s > 30  # the stall is in the wall time ...
    assert res.step_ms_p50 == pytest.approx(10.0)
    # ... but not in the energy: 10 W x 8 steps x 10 ms = 800 mJ
    assert res.energy_mj == pytest.approx(800.0)
    assert res.energy_source == "estimated"


def test_a_measured_reading_is_charged_whole(setup):
    ckpt, data = setup
    clock = _StallingClock()
    reading = EnergyReading(5000.0, {"pkg": 5000.0}, "measured", "rapl", 2, 30.2)

    class Window:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.reading = reading

    res = finetune(
        ckpt.model, data.train, parse_condition("all"), steps=8, lr=1e-3,
        meter=Window, clock=clock,
    )  # fmt: skip
    assert res.energy_mj == 5000.0 and res.energy_source == "measured"
