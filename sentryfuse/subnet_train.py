"""Prunability-aware training: teach the backbone the sub-networks SentryGate will deploy.

An ordinary backbone never runs with heads or FFN channels missing, so zero-shot pruning
asks it to do something it has never done. Following DynaBERT (width-adaptive BERT,
distilled from the full model) and once-for-all's sandwich rule, some training steps add
*sub-network passes*:

- **which units go**: the ones the pruner would remove for the batch's modality pattern:
  the SentryGate scorer's prediction for that pattern (``ranking="scorer"``), ranked by
  the same budget rule as deployment pruning (``sentryfuse.prune.budget``, units or
  FLOPs). ``ranking="random"`` draws a fresh random ranking per pass instead: plain
  structured dropout, the control that separates generic robustness from the scorer's
  modality-conditioned ranking;
- **how**: the removed units' gates are set to 0 through the existing ``head_gate`` /
  ``ffn_gate`` parameters and restored in a ``finally`` with ``copy_`` (which bumps the
  tensor version, so cached derived copies such as the repeated head gate refresh);
- **which budgets (sandwich rule)**: the smallest sub-network of the configured sparsity
  range (``sparsity_max``) on every pass step plus ``sampled`` budgets drawn uniformly in
  the range; the largest network is the ordinary full pass that already ran;
- **per-sample modality patterns**: the curriculum drops sensors per sample, so the batch
  is grouped by pattern and every group runs its own sub-network, fed only its present
  modalities (as deployment pruning feeds them);
- **what it learns from**: the full model's logits of the same step (detached, in-place
  distillation as in BigNAS/DynaBERT): ``w·T²·KL(teacher_T ‖ student_T) + (1−w)·CE``;
  ``distill=False`` is the ablation with cross-entropy alone.

Gradients of all sub-network passes accumulate onto the full pass's, then the one
optimizer step of the training loop runs (the sandwich rule's single update). With
``subnet_grad="project"`` the passes' summed gradient first loses its component along
the full pass's gradient wherever the two point against each other (PCGrad); with
``subnet_grad="separate"`` it is kept apart and applied as a second update with its own
optimizer state (``SeparateUpdate``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentryfuse.gate.saliency import gate_params, modality_names, restrict_inputs
from sentryfuse.prune import budget as bud

RANKINGS: tuple[str, ...] = ("scorer", "random")
Keep = dict[str, tuple[list[int], list[int]]]  # block -> (kept heads, kept channels)


def group_by_pattern(present: Tensor | np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(pattern (M,) bool, row indices)]`` of a ``(B, M)`` mask, largest group first.

    Ties are broken by the pattern's bits (all-present first), so the order is
    deterministic for a given mask.
    """
    mask = np.asarray(torch.as_tensor(present, dtype=torch.bool))
    patterns, inverse = np.unique(mask, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    groups = [
        (patterns[i].astype(bool), np.flatnonzero(inverse == i)) for i in range(len(patterns))
    ]
    groups.sort(key=lambda g: (-len(g[1]), tuple(~g[0])))
    return groups


def sandwich_budgets(
    sparsity_min: float, sparsity_max: float, sampled: int, rng: np.random.Generator
) -> list[float]:
    """The smallest sub-network (``sparsity_max``) first, then ``sampled`` uniform draws."""
    draws = rng.uniform(sparsity_min, sparsity_max, size=sampled) if sampled else []
    return [float(sparsity_max), *(float(s) for s in draws)]


def active_blocks(model: nn.Module, pattern: np.ndarray) -> list[str]:
    """Blocks that run for ``pattern`` (an absent modality's encoder is skipped whole)."""
    mods = modality_names(model)
    present = [m for m, p in zip(mods, pattern.tolist(), strict=True) if p]
    return bud.active_blocks([n for n, _ in model.blocks()], mods, present)


def keep_for(
    scores: Mapping[str, tuple[Tensor, Tensor]],
    sparsity: float,
    budget: str,
    costs: Mapping[str, tuple[float, float]] | None = None,
) -> Keep:
    """What deployment pruning keeps for ``scores`` (same rule as ``prune()``)."""
    if budget == "flops":
        return bud.select_flops(scores, costs or {}, sparsity)
    return bud.select_units(scores, sparsity)


@contextmanager
def units_removed(model: nn.Module, keep: Keep) -> Iterator[None]:
    """Zero the gates of every unit of the blocks in ``keep`` that ``keep`` does not keep.

    Blocks not named in ``keep`` are untouched. The gates' values are restored on exit,
    also when the body raises; writes use ``copy_`` so version-keyed caches refresh.
    Run forward *and* backward inside the block: autograd saved the zeroed gates.
    """
    gates = gate_params(model)
    saved = {n: (gates[n][0].detach().clone(), gates[n][1].detach().clone()) for n in keep}
    try:
        with torch.no_grad():
            for name, (heads, chans) in keep.items():
                for gate, kept, old in zip(gates[name], (heads, chans), saved[name], strict=True):
                    m = torch.zeros_like(old)
                    m[torch.as_tensor(list(kept), dtype=torch.long)] = 1.0
                    gate.copy_(old * m)
        yield
    finally:
        with torch.no_grad():
            for name, (h, c) in saved.items():
                gates[name][0].copy_(h)
                gates[name][1].copy_(c)


def distill_loss(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """``T² · KL(softmax(teacher/T) ‖ softmax(student/T))``, mean over the batch.

    The T² factor keeps the gradient scale independent of T (Hinton et al., 2015).
    """
    t = temperature
    target = F.log_softmax(teacher.detach() / t, dim=-1)
    pred = F.log_softmax(student / t, dim=-1)
    return F.kl_div(pred, target, reduction="batchmean", log_target=True) * (t * t)


class SubnetTrainer:
    """Adds the sub-network passes of one training step (gradients only, no step)."""

    def __init__(self, model: nn.Module, scorer: nn.Module | None, cfg) -> None:
        if cfg.subnet_ranking not in RANKINGS:
            raise ValueError(f"subnet_ranking must be one of {RANKINGS}")
        if cfg.subnet_ranking == "scorer" and scorer is None:
            raise ValueError("subnet_ranking='scorer' needs a scorer")
        self.model, self.scorer, self.cfg = model, scorer, cfg
        self.rng = np.random.default_rng([cfg.seed, 2])  # never the task's stream
        self.gen = torch.Generator().manual_seed(int(cfg.seed) * 7919 + 3)
        self.costs = None
        if cfg.subnet_budget == "flops":
            from sentryfuse.models.prune import unit_costs

            self.costs = {n: (c.head_flops, c.channel_flops) for n, c in unit_costs(model).items()}
        self.passes = 0
        self.conflicts = 0  # steps whose pass gradient opposed the full one ("project")
        self.pass_grads: dict[int, Tensor | None] | None = None  # "separate": id(p) -> grad
        # Which patterns get passes (None: all). With a pattern lag and frozen-only passes
        # the training loop sets it to "this pattern's ranking is frozen", so every pass
        # trains a sub-network SentryGate deploys.
        self.ready: Callable[[np.ndarray], bool] | None = None

    def due(self, step: int, epoch: float) -> bool:
        c = self.cfg
        return epoch >= c.subnet_start_epoch and step % c.subnet_every == 0

    def ranking(self, pattern: np.ndarray) -> dict[str, tuple[Tensor, Tensor]]:
        """Per-unit scores for the pattern's active blocks (higher = keep)."""
        active = active_blocks(self.model, pattern)
        if self.cfg.subnet_ranking == "random":
            return {
                n: (
                    torch.rand(h.numel(), generator=self.gen),
                    torch.rand(c.numel(), generator=self.gen),
                )
                for n, (h, c) in gate_params(self.model).items()
                if n in active
            }
        with torch.no_grad():
            raw = self.scorer(torch.from_numpy(pattern))
        return {
            n: (torch.softmax(raw[n][0].float(), -1), torch.softmax(raw[n][1].float(), -1))
            for n in active
        }

    def step(
        self,
        inputs: Mapping[str, Tensor],
        labels: Tensor,
        present: Tensor,
        teacher: Tensor,
        weight: float | None = None,
    ) -> float:
        """Backward every sub-network pass of this step; returns the summed loss.
        ``weight``: the passes' loss weight now (None: ``cfg.subnet_weight``)."""
        c = self.cfg
        w_pass = c.subnet_weight if weight is None else weight
        if c.subnet_grad == "separate":
            w_pass = 1.0  # the weight scales the second update's learning rate instead
        groups = group_by_pattern(present)
        if self.ready is not None:
            groups = [g for g in groups if self.ready(g[0])]
        groups = groups[: c.subnet_max_groups]
        budgets = sandwich_budgets(
            c.subnet_sparsity_min, c.subnet_sparsity_max, c.subnet_sampled, self.rng
        )
        n = int(labels.shape[0])
        scores = (
            {}
            if c.subnet_ranking == "random"
            else {g[0].tobytes(): self.ranking(g[0]) for g in groups}
        )
        params = [p for p in self.model.parameters() if p.requires_grad]
        full = None
        if c.subnet_grad != "sum":
            full = [p.grad for p in params]  # the full pass's; the passes accumulate anew
            for p in params:
                p.grad = None
        total = 0.0
        for sparsity in budgets:
            for pattern, rows in groups:
                rank = scores.get(pattern.tobytes()) or self.ranking(pattern)
                keep = keep_for(rank, sparsity, c.subnet_budget, self.costs)
                sel = torch.from_numpy(rows)
                feed, _ = restrict_inputs(
                    self.model, {k: v[sel] for k, v in inputs.items()}, pattern
                )
                with units_removed(self.model, keep):
                    out = self.model(feed, None)
                    loss = F.cross_entropy(out, labels[sel], label_smoothing=c.label_smoothing)
                    if c.distill:
                        w = c.distill_weight
                        loss = (
                            w * distill_loss(out, teacher[sel], c.distill_temperature)
                            + (1 - w) * loss
                        )
                    loss = loss * (w_pass * len(rows) / (n * len(budgets)))
                    loss.backward()
                total += float(loss.detach())
                self.passes += 1
        if full is not None and c.subnet_grad == "separate":
            self.pass_grads = {id(p): p.grad for p in params}  # SeparateUpdate.step applies
            for p, f in zip(params, full, strict=True):
                p.grad = f
        elif full is not None and c.subnet_grad == "project":
            self.conflicts += project_conflict(params, full)
        elif full is not None:  # "project_tensor": each parameter tensor on its own
            pairs = zip(params, full, strict=True)
            self.conflicts += sum(project_conflict([p], [f]) for p, f in pairs)
        return total


def project_conflict(params: list[nn.Parameter], full: list[Tensor | None]) -> bool:
    """Set every ``p.grad`` to ``full + g'``, where ``g`` (the current ``p.grad``) loses
    its component along ``full`` if ``<g, full> < 0`` (one inner product over all of
    ``params``, as PCGrad; one tensor a call for the per-tensor variant). Returns
    whether it projected."""
    pairs = [(p, f, p.grad) for p, f in zip(params, full, strict=True)]
    dot = sum(float((g * f).sum()) for _, f, g in pairs if f is not None and g is not None)
    norm2 = sum(float((f * f).sum()) for _, f, _ in pairs if f is not None)
    conflict = dot < 0.0 and norm2 > 0.0
    coef = dot / norm2 if conflict else 0.0
    for p, f, g in pairs:
        if g is None:
            p.grad = f
        elif f is not None:
            p.grad = g.add_(f, alpha=1.0 - coef)
    return conflict


class SeparateUpdate:
    """The passes' gradient as a second update with its own AdamW moments and clip.

    Summed into the full pass's gradient, the passes' gradient inflates Adam's second
    moment and shares the gradient clip, so the full model's own gradient moves the
    weights less than it does without passes. Here the main optimizer sees the full
    pass's gradient alone (its step is the old recipe's), and this one applies the
    passes' at ``lr`` (the schedule's rate times the pass weight; Adam is scale-invariant,
    so a loss weight would not change it). No weight decay: the main step applies it.
    """

    def __init__(self, params: list[nn.Parameter], grad_clip: float) -> None:
        self.params, self.grad_clip = params, grad_clip
        self.opt = torch.optim.AdamW(params, lr=0.0, weight_decay=0.0)

    def step(self, pass_grads: Mapping[int, Tensor | None], lr: float) -> None:
        """Apply ``pass_grads`` (``id(parameter)`` -> gradient) at ``lr``."""
        saved = [p.grad for p in self.params]
        try:
            for p in self.params:
                p.grad = pass_grads.get(id(p))
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_(
                    [p for p in self.params if p.grad is not None], self.grad_clip
                )
            for group in self.opt.param_groups:
                group["lr"] = lr
            self.opt.step()
        finally:
            for p, g in zip(self.params, saved, strict=True):
                p.grad = g
