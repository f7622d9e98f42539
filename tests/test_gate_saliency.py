"""First-order saliency: finite-difference agreement, masks, and no side effects."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sentryfuse.data import load_dataset
from sentryfuse.gate.saliency import gate_params, normalise_per_layer, unit_saliency
from sentryfuse.models import build_model, model_config_for


@pytest.fixture(scope="module")
def data():
    ds = load_dataset("synthetic", max_train=64, max_test=32, seed=3)
    return ds


def _batch(ds, n=24, dtype=torch.float64):
    x = {k: torch.from_numpy(v[:n]).to(dtype) for k, v in ds.train.x.items()}
    return x, torch.from_numpy(ds.train.y[:n])


@pytest.mark.parametrize("backbone", ["early", "late", "bottleneck"])
def test_saliency_matches_finite_differences(data, backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(model_config_for(data, backbone, "dense", size="tiny")).double()
    x, y = _batch(data)
    sal = unit_saliency(model, x, y)  # groups=1: exactly |ξ · ∂L̄/∂ξ|
    gates = gate_params(model)
    eps = 1e-5
    rng = np.random.default_rng(0)
    model.eval()
    for name in list(gates)[:2]:
        for kind in (0, 1):
            gate = gates[name][kind]
            for unit in rng.choice(gate.numel(), 3, replace=False):
                with torch.no_grad():
                    gate[unit] += eps
                    up = F.cross_entropy(model(x), y).item()
                    gate[unit] -= 2 * eps
                    down = F.cross_entropy(model(x), y).item()
                    gate[unit] += eps
                fd = abs(gate[unit].item() * (up - down) / (2 * eps))
                got = sal[name][kind][unit].item()
                assert got == pytest.approx(fd, rel=1e-4, abs=1e-9), (name, kind, unit)


def test_saliency_respects_masks_and_leaves_model_untouched(data) -> None:
    torch.manual_seed(0)
    model = build_model(model_config_for(data, "late", "dense", size="tiny"))
    model.train()
    x, y = _batch(data, dtype=torch.float32)
    sal = unit_saliency(model, x, y, np.array([True, False, True]), groups=4)
    assert float(sal["enc.b.0"][0].sum()) == 0.0  # b's encoder is off the path
    assert float(sal["enc.a.0"][0].sum()) > 0.0 and float(sal["fusion.0"][1].sum()) > 0.0
    per_sample = torch.ones(len(y), 3, dtype=torch.bool)
    per_sample[::2, 0] = False
    sal2 = unit_saliency(model, x, y, per_sample)
    assert float(sal2["enc.a.0"][0].sum()) > 0.0  # half the samples still have a
    assert model.training  # mode restored
    for head_gate, ffn_gate in gate_params(model).values():
        assert not head_gate.requires_grad and head_gate.grad is None
        assert not ffn_gate.requires_grad and torch.all(ffn_gate == 1)
    assert all(p.grad is None for p in model.parameters())


def test_normalise_per_layer_gives_distributions() -> None:
    sal = {"b0": (torch.tensor([1.0, 3.0]), torch.zeros(4))}
    norm = normalise_per_layer(sal)
    assert torch.allclose(norm["b0"][0], torch.tensor([0.25, 0.75]))
    assert torch.allclose(norm["b0"][1], torch.full((4,), 0.25))  # nothing to rank: uniform
