"""Turn per-unit scores into ``KeepSet``s under a budget.

Every method (SentryGate and the baselines) ends here, so they differ only in their
scores: the selection rule and the physical pruning are shared, which keeps the
comparison fair.

Two budgets:

* ``units``: remove ``sparsity`` of the attention heads *and* ``sparsity`` of the FFN
  channels of the blocks that stay in use. Heads compete with heads and channels with
  channels, each ranked globally across blocks on per-block normalised scores (a block's
  scores divided by their mean), so a layer whose saliency happens to be on a larger
  scale does not keep everything. Ranking heads and channels separately keeps a fixed
  head/channel mix: with d_ff ≫ n_head a single joint ranking would let a few channels
  decide the fate of every head.
* ``flops``: remove ``sparsity`` of the FLOPs spent in heads and channels (from
  ``unit_costs``), greedily by normalised score per FLOP — the knapsack relaxation that
  Kwon et al. (2022) use for their mask search.

Minimum: every block keeps at least one head and one FFN channel (its top-scored ones).
A block with zero heads or channels would give zero-sized matrices that TensorRT and
ONNX cannot build, and a transformer whose every unit is gone only passes its residual
through. The cost is at most two units per block, so the requested fraction is met
exactly except at sparsities so high that the floor binds (reported as
``achieved_sparsity``).

Blocks that belong to an absent modality (a name component equal to the modality, e.g.
``enc.acc.1``) are dropped with that modality's encoder by ``prune_model``; they are not
counted in the budget, because a budget over units that are gone anyway would be a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch

from sentryfuse.errors import PruneError

Budget = Literal["units", "flops"]
BUDGETS: tuple[str, ...] = ("units", "flops")
Scores = Mapping[str, tuple[torch.Tensor, torch.Tensor]]  # block -> (head (H,), channel (F,))

MIN_HEADS = 1  # per block, see module docstring
MIN_CHANNELS = 1


def check_sparsity(sparsity: float) -> float:
    """Reject a sparsity outside [0, 1): 1 would remove everything, <0 means nothing."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise PruneError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= value < 1.0 or value != value:
        raise PruneError(f"sparsity must be in [0, 1), got {sparsity}; e.g. --sparsity 0.5")
    return value


def check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        raise PruneError(f"unknown budget '{budget}'; valid: {', '.join(BUDGETS)}")
    return budget


def active_blocks(
    names: Sequence[str], modalities: Sequence[str], present: Sequence[str] | None
) -> list[str]:
    """Blocks still in use when only ``present`` modalities remain (encoders of absent ones go)."""
    if present is None:
        return list(names)
    absent = set(modalities) - set(present)
    return [n for n in names if not absent.intersection(n.split("."))]


def _normalise(x: torch.Tensor) -> torch.Tensor:
    """Per-block normalisation: divide by the block's mean (non-negative scores assumed)."""
    x = x.detach().double().clamp_min(0)
    return x / x.mean().clamp_min(1e-30)


def _floor_mask(norm: torch.Tensor, minimum: int) -> torch.Tensor:
    """Boolean mask of the ``minimum`` top-scored units of one block (the kept floor)."""
    mask = torch.zeros_like(norm, dtype=torch.bool)
    mask[torch.argsort(norm, descending=True, stable=True)[:minimum]] = True
    return mask


def _select_units(norms: dict[str, torch.Tensor], sparsity: float, minimum: int) -> dict:
    """Keep the globally top ``(1 - sparsity)`` of one unit kind, each block keeping a floor."""
    total = sum(int(v.numel()) for v in norms.values())
    n_keep = max(int(round((1.0 - sparsity) * total)), 0)
    keep = {name: _floor_mask(v, minimum) for name, v in norms.items()}
    n_keep -= sum(int(k.sum()) for k in keep.values())
    if n_keep > 0:
        names = list(norms)
        flat = torch.cat([torch.where(keep[n], torch.inf, norms[n]) for n in names])
        owner = torch.cat([torch.full((norms[n].numel(),), i) for i, n in enumerate(names)])
        local = torch.cat([torch.arange(norms[n].numel()) for n in names])
        free = torch.nonzero(~torch.isinf(flat)).flatten()
        order = free[torch.argsort(flat[free], descending=True, stable=True)][:n_keep]
        for i in order.tolist():
            keep[names[int(owner[i])]][int(local[i])] = True
    return keep


def select_units(scores: Scores, sparsity: float) -> dict[str, tuple[list[int], list[int]]]:
    """``units`` budget: per block, the (heads, channels) to keep."""
    sparsity = check_sparsity(sparsity)
    heads = _select_units({n: _normalise(h) for n, (h, _) in scores.items()}, sparsity, MIN_HEADS)
    chans = _select_units(
        {n: _normalise(c) for n, (_, c) in scores.items()}, sparsity, MIN_CHANNELS
    )
    return {n: (_indices(heads[n]), _indices(chans[n])) for n in scores}


def select_flops(
    scores: Scores, costs: Mapping[str, tuple[float, float]], sparsity: float
) -> dict[str, tuple[list[int], list[int]]]:
    """``flops`` budget: greedy by normalised score per FLOP until (1 - s) of unit FLOPs.

    ``costs[block] = (flops_per_head, flops_per_channel)``. Units that no longer fit are
    skipped and smaller ones still tried (greedy knapsack), so the budget is filled closely.
    """
    sparsity = check_sparsity(sparsity)
    names = list(scores)
    total = sum(
        costs[n][0] * scores[n][0].numel() + costs[n][1] * scores[n][1].numel() for n in names
    )
    left = (1.0 - sparsity) * total
    keep: dict[str, list[torch.Tensor]] = {}
    cand_val, cand_cost, cand_ref = [], [], []
    for n in names:
        parts = []
        for kind, minimum in ((0, MIN_HEADS), (1, MIN_CHANNELS)):
            norm = _normalise(scores[n][kind])
            floor = _floor_mask(norm, minimum)
            parts.append(floor)
            left -= costs[n][kind] * int(floor.sum())
            for j in torch.nonzero(~floor).flatten().tolist():
                cand_val.append(float(norm[j]) / max(costs[n][kind], 1e-30))
                cand_cost.append(costs[n][kind])
                cand_ref.append((n, kind, j))
        keep[n] = parts
    order = sorted(range(len(cand_val)), key=lambda i: -cand_val[i])
    for i in order:
        if cand_cost[i] <= left:
            n, kind, j = cand_ref[i]
            keep[n][kind][j] = True
            left -= cand_cost[i]
    return {n: (_indices(keep[n][0]), _indices(keep[n][1])) for n in names}


def achieved(
    keep: Mapping[str, tuple[Sequence[int], Sequence[int]]],
    sizes: Mapping[str, tuple[int, int]],
    costs: Mapping[str, tuple[float, float]] | None = None,
) -> float:
    """Fraction of units (or, with ``costs``, of unit FLOPs) removed by ``keep``."""
    removed = total = 0.0
    for n, (h, c) in keep.items():
        wh, wc = costs[n] if costs is not None else (1.0, 1.0)
        total += wh * sizes[n][0] + wc * sizes[n][1]
        removed += wh * (sizes[n][0] - len(h)) + wc * (sizes[n][1] - len(c))
    return removed / total if total else 0.0


def _indices(mask: torch.Tensor) -> list[int]:
    return torch.nonzero(mask).flatten().tolist()
