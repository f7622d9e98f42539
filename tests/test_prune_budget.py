"""The budget rules: requested unit / FLOPs fractions, the per-block floor, bad sparsity."""

from __future__ import annotations

import math

import pytest
import torch

from sentryfuse.errors import PruneError
from sentryfuse.prune.budget import achieved, check_sparsity, select_flops, select_units


def _scores(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return {
        f"b{i}": (torch.rand(h, generator=gen) * (i + 1), torch.rand(f, generator=gen) * 10**i)
        for i, (h, f) in enumerate([(4, 64), (8, 32), (4, 128)])
    }


@pytest.mark.parametrize("sparsity", [0.0, 0.2, 0.3, 0.5, 0.6, 0.9])
def test_units_budget_hits_fraction_of_heads_and_channels(sparsity: float) -> None:
    scores = _scores()
    keep = select_units(scores, sparsity)
    n_heads = sum(h.numel() for h, _ in scores.values())
    n_chans = sum(c.numel() for _, c in scores.values())
    kept_h = sum(len(h) for h, _ in keep.values())
    kept_c = sum(len(c) for _, c in keep.values())
    assert kept_h == max(round((1 - sparsity) * n_heads), len(scores))
    assert kept_c == max(round((1 - sparsity) * n_chans), len(scores))
    sizes = {n: (h.numel(), c.numel()) for n, (h, c) in scores.items()}
    assert achieved(keep, sizes) == pytest.approx(sparsity, abs=0.02)


def test_units_budget_keeps_floor_and_top_units() -> None:
    scores = _scores()
    keep = select_units(scores, 0.99)
    for name, (h, c) in keep.items():
        assert len(h) >= 1 and len(c) >= 1  # the documented per-block minimum
        assert h[0] == int(scores[name][0].argmax()) or len(h) > 1
    # per-block normalisation: block b2's channels are 100x larger but must not take all
    keep = select_units(scores, 0.5)
    assert 0 < len(keep["b2"][1]) < 128 and len(keep["b0"][1]) > 1


@pytest.mark.parametrize("sparsity", [0.2, 0.4, 0.6])
def test_flops_budget_hits_fraction(sparsity: float) -> None:
    scores = _scores(1)
    costs = {"b0": (100.0, 3.0), "b1": (50.0, 5.0), "b2": (200.0, 1.0)}
    keep = select_flops(scores, costs, sparsity)
    sizes = {n: (h.numel(), c.numel()) for n, (h, c) in scores.items()}
    got = achieved(keep, sizes, costs)
    assert got >= sparsity - 1e-9  # never over budget
    assert got <= sparsity + 0.02  # and filled closely (greedy knapsack)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, "x"])
def test_sparsity_outside_unit_interval_is_rejected(bad) -> None:
    with pytest.raises(PruneError):
        check_sparsity(bad)
    with pytest.raises(PruneError):
        select_units(_scores(), bad)
