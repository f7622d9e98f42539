"""The Fisher baseline end to end: gradients → search → rearrangement → LS tuning."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from sentryfuse.data.base import Split
from sentryfuse.prune import budget as bud
from sentryfuse.prune import fisher as fi
from sentryfuse.prune import masktune as mt
from sentryfuse.prune.scores import calib_batches


def fisher_prune(
    model: nn.Module,
    calib: Split,
    modalities: Sequence[str],
    present: Sequence[str] | None,
    sparsity: float,
    budget: str,
    active: Sequence[str],
    *,
    batch_size: int = 64,
    tune: bool = True,
    cache: dict | None = None,
) -> tuple[dict, nn.Module, dict]:
    """Return ``(keep, model with tuned masks folded into o/fc2, details)``.

    Under a ``flops`` budget the mask search is Kwon's; under ``units`` the shared
    unit-fraction rule ranks the Fisher importances (the paper has no unit budget).
    """
    from sentryfuse.prune.api import flop_costs

    key = ("fisher-grads", None if present is None else tuple(present))
    if cache is not None and key in cache:
        grads = cache[key]
    else:
        grads = fi.collect_mask_grads(model, calib, modalities, present)
        if cache is not None:
            cache[key] = grads
    grads = {n: grads[n] for n in active}
    importance = fi.fisher_importance(grads)
    if budget == "flops":
        costs = flop_costs(model)
        keep = fi.search_flops(importance, {n: costs[n] for n in active}, sparsity)
    else:
        keep = bud.select_units(importance, sparsity)
    keep = fi.rearrange(keep, grads)
    details: dict = {"calib_samples": len(calib)}
    if not tune:
        return keep, model, details
    batches = [
        inp for inp, _, _ in calib_batches(calib, modalities, present, batch_size=batch_size)
    ]
    tuned, solved = mt.tune_masks(model, keep, batches)
    details.update(solved)
    return keep, mt.fold_gates(tuned), details
