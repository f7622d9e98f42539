"""``prune()``: one entry point for SentryGate and every zero-shot baseline.

All methods produce per-unit scores (Fisher also tunes mask values), the shared budget
rule in ``budget.py`` picks the units, and ``prune_model`` rebuilds a physically smaller
model — so accuracy differences come from the scores alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sentryfuse.data.base import Split
from sentryfuse.errors import PruneError, unknown_name
from sentryfuse.prune import budget as bud
from sentryfuse.prune import scores as sc

METHODS: tuple[str, ...] = ("random", "magnitude", "taylor", "fisher", "taylor-calib", "sentrygate")
DATA_METHODS: tuple[str, ...] = ("taylor", "fisher", "taylor-calib")  # need calibration data


@dataclass
class PrunedVariant:
    """A physically pruned model and how it was made."""

    model: nn.Module
    keep: dict  # block -> KeepSet
    method: str
    sparsity: float
    present: tuple[str, ...] | None
    prune_ms: float
    budget: str = "units"
    achieved_sparsity: float = 0.0  # of units (units budget) or unit FLOPs (flops budget)
    details: dict = field(default_factory=dict)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise PruneError(unknown_name("pruning method", method, METHODS))
    return method


def check_present(modalities: Sequence[str], present: Sequence[str] | None) -> tuple | None:
    """Validate present modality names (unknown name / nothing left → PruneError)."""
    if present is None:
        return None
    for name in present:
        if name not in modalities:
            raise PruneError(unknown_name("modality", name, modalities))
    kept = tuple(m for m in modalities if m in set(present))
    if not kept:
        raise PruneError(
            f"cannot drop every modality; keep at least one of {', '.join(modalities)}"
        )
    return kept


def _load(checkpoint):
    from sentryfuse.checkpoint import Checkpoint, load_checkpoint

    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if isinstance(checkpoint, str | Path):
        return load_checkpoint(checkpoint)
    raise PruneError(
        f"expected a checkpoint directory or Checkpoint, got {type(checkpoint).__name__}"
    )


def active_names(model: nn.Module, modalities: Sequence[str], present) -> list[str]:
    """Blocks that survive the present set (an absent modality's encoder is dropped whole)."""
    from sentryfuse.models.prune import block_modality

    absent = [m for m in modalities if present is not None and m not in present]
    return [n for n, _ in model.blocks() if block_modality(n, absent) is None]


def flop_costs(model: nn.Module) -> dict[str, tuple[float, float]]:
    from sentryfuse.models.prune import unit_costs

    return {n: (c.head_flops, c.channel_flops) for n, c in unit_costs(model).items()}


def select(
    model: nn.Module, scores: sc.Scores, sparsity: float, budget: str
) -> tuple[dict[str, tuple[list[int], list[int]]], float]:
    """Apply the budget to ``scores`` (active blocks only); return keep and achieved fraction."""
    sizes = sc.block_sizes(model)
    if budget == "flops":
        costs = flop_costs(model)
        keep = bud.select_flops(scores, costs, sparsity)
        return keep, bud.achieved(keep, sizes, costs)
    keep = bud.select_units(scores, sparsity)
    return keep, bud.achieved(keep, sizes)


def to_keepsets(keep: dict[str, tuple[list[int], list[int]]]) -> dict:
    from sentryfuse.models.prune import KeepSet

    return {n: KeepSet(list(h), list(c)) for n, (h, c) in keep.items()}


def prune(
    checkpoint,
    method: str,
    sparsity: float,
    *,
    present: Sequence[str] | None = None,
    calib: Split | None = None,
    budget: str = "units",
    seed: int = 0,
    calib_batch_size: int = 64,
    cache: dict | None = None,
) -> PrunedVariant:
    """Prune a checkpoint (``Checkpoint`` or directory) zero-shot with ``method``.

    ``present``: the modalities available at deployment (None = all). ``calib``: the
    labelled calibration split that ``taylor``, ``taylor-calib`` and ``fisher`` need;
    ``sentrygate``, ``magnitude`` and ``random`` use no data. ``prune_ms`` covers scoring,
    selection and the physical rebuild (not checkpoint loading).

    ``cache``: an optional dict the caller keeps per (checkpoint, calibration split);
    scores and Fisher gradients do not depend on the sparsity, so a sweep over
    sparsities computes them once. ``prune_ms`` of a cached call excludes that work.
    """
    check_method(method)
    sparsity = bud.check_sparsity(sparsity)
    bud.check_budget(budget)
    ckpt = _load(checkpoint)
    model, mods = ckpt.model.eval(), ckpt.modalities
    present = check_present(mods, present)
    if method == "sentrygate" and ckpt.scorer is None:
        sc.sentrygate_scores(None, mods, present)  # raises the one-line PruneError
    if method in DATA_METHODS and (calib is None or len(calib) == 0):
        raise PruneError(
            f"method '{method}' needs calibration data; pass calib= (--calib-samples N)"
        )
    start = time.perf_counter()
    active = active_names(model, mods, present)
    details: dict = {}
    source = model
    if method == "fisher":
        from sentryfuse.prune.fisher_pipeline import fisher_prune

        keep, source, details = fisher_prune(
            model, calib, mods, present, sparsity, budget, active,
            batch_size=calib_batch_size, cache=cache,
        )  # fmt: skip
        sizes = sc.block_sizes(model)
        costs = flop_costs(model) if budget == "flops" else None
        achieved = bud.achieved(keep, sizes, costs)
    else:
        torch.manual_seed(seed)
        key = (method, present, seed if method == "random" else None)
        if cache is not None and key in cache:
            scores = cache[key]
        elif method == "random":
            scores = sc.random_scores(model, seed)
        elif method == "magnitude":
            scores = sc.magnitude_scores(model)
        elif method == "taylor":
            scores = sc.taylor_scores(model, calib, mods, None, batch_size=calib_batch_size)
        elif method == "taylor-calib":
            scores = sc.taylor_scores(model, calib, mods, present, batch_size=calib_batch_size)
        else:
            scores = sc.sentrygate_scores(ckpt.scorer, mods, present)
        if cache is not None:
            cache[key] = scores
        keep, achieved = select(model, {n: scores[n] for n in active}, sparsity, budget)
    from sentryfuse.models.prune import prune_model

    pruned = prune_model(source, to_keepsets(keep), present).eval()
    prune_ms = (time.perf_counter() - start) * 1e3
    return PrunedVariant(
        pruned, to_keepsets(keep), method, sparsity, present, prune_ms, budget, achieved, details
    )


class Repruner:
    """Zero-shot SentryGate re-pruning from an already loaded checkpoint.

    The scorer's output depends only on the presence mask, so it is computed once per
    mask and cached; a call then only ranks scores and slices weights (``prune_model``
    builds on the meta device), which takes milliseconds — fast enough to run on every
    sensor or power-mode change.
    """

    def __init__(self, checkpoint, *, budget: str = "units") -> None:
        self.ckpt = _load(checkpoint)
        if self.ckpt.scorer is None:
            sc.sentrygate_scores(None, self.ckpt.modalities, None)
        self.budget = bud.check_budget(budget)
        self.model = self.ckpt.model.eval()
        self._scores: dict[tuple | None, sc.Scores] = {}
        self._keep: dict[tuple, dict] = {}
        # The first meta-device build imports torch's reference ops (~2 s once per
        # process); pay it here, at load time, not on the first sensor change.
        self.reprune(None, 0.0)
        self._keep.clear()

    def scores(self, present: Sequence[str] | None) -> sc.Scores:
        key = check_present(self.ckpt.modalities, present)
        if key not in self._scores:
            raw = sc.sentrygate_scores(self.ckpt.scorer, self.ckpt.modalities, key)
            active = active_names(self.model, self.ckpt.modalities, key)
            self._scores[key] = {n: raw[n] for n in active}
        return self._scores[key]

    def reprune(self, present: Sequence[str] | None, sparsity: float) -> PrunedVariant:
        from sentryfuse.models.prune import prune_model

        start = time.perf_counter()
        sparsity = bud.check_sparsity(sparsity)
        key = check_present(self.ckpt.modalities, present)
        memo = (key, sparsity)
        if memo not in self._keep:
            keep, achieved = select(self.model, self.scores(key), sparsity, self.budget)
            self._keep[memo] = (to_keepsets(keep), achieved)
        keepsets, achieved = self._keep[memo]
        pruned = prune_model(self.model, keepsets, key).eval()
        ms = (time.perf_counter() - start) * 1e3
        return PrunedVariant(
            pruned, keepsets, "sentrygate", sparsity, key, ms, self.budget, achieved
        )
