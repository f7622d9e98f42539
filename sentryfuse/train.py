"""Train a backbone with the modality-dropout curriculum and the SentryGate scorer.

One loop does two jobs that must not interfere:

1. the **backbone** learns the task with AdamW, a cosine learning rate (short linear
   warm-up) and per-sample modality dropout from the curriculum;
2. every ``saliency_every`` steps, one modality pattern is drawn from the curriculum for
   the whole batch, the first-order saliency of every head and FFN channel is measured
   under it, and the **scorer** (own optimizer) takes a step on the alignment loss. The
   saliency pass uses ``torch.autograd.grad`` on the gates only, so the backbone's task
   gradients are never touched by the scorer.

3. with the prunability-aware recipe (``subnet=True``, the default when a scorer is
   trained), every ``subnet_every`` steps after ``subnet_start_epoch`` the sub-networks
   pruning would deploy for the batch's modality patterns run too, distilled from the
   full pass's logits, and their gradients join the full pass's before the one optimizer
   step (``sentryfuse.subnet_train``). ``subnet=False`` is the recipe before it, bit for
   bit.

The scorer then gets ``scorer_final_steps`` more steps, cycling over every non-empty
modality subset (sampled when there are too many), because deployment prunes under any
condition. With the prunability-aware recipe this fit runs where the sub-network passes
start and the scorer is frozen from there (``subnet_freeze_epochs``): the backbone then
learns exactly the sub-networks SentryGate will deploy, which measured better than
refitting the ranking to the final weights afterwards. Otherwise it runs after the last
epoch, against the final backbone. Then the model is evaluated (all present, each
modality missing, random 30% dropout) and the checkpoint is written atomically.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sentryfuse.checkpoint import check_out_dir, save_checkpoint
from sentryfuse.data.base import MultimodalDataset, Split
from sentryfuse.errors import ModelError
from sentryfuse.evaluate import evaluate_conditions
from sentryfuse.gate.saliency import gate_params, unit_saliency
from sentryfuse.gate.scorer import ImportanceScorer, alignment_loss
from sentryfuse.train_config import TrainConfig


def _batch(x: dict[str, torch.Tensor], idx: np.ndarray) -> dict[str, torch.Tensor]:
    sel = torch.from_numpy(idx)
    return {k: v[sel] for k, v in x.items()}


def _subset_masks(m: int) -> list[np.ndarray]:
    """Every non-empty modality subset as an ``(m,)`` mask (all-present first)."""
    masks = [np.array(bits, dtype=bool) for bits in itertools.product([True, False], repeat=m)]
    return [mk for mk in masks if mk.any()]


def _lr_lambda(total_steps: int, warmup_frac: float):
    warm = max(1, int(total_steps * warmup_frac))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


def _check_compatible(dataset: MultimodalDataset, model_config) -> None:
    model_mods = [(m.name, m.steps, m.features) for m in model_config.modalities]
    data_mods = [(m.name, m.steps, m.features) for m in dataset.modalities]
    if model_mods != data_mods or model_config.num_classes != dataset.num_classes:
        raise ModelError(
            f"model config does not match dataset '{dataset.name}' (modalities/classes); "
            "build it with model_config_for(dataset, ...)"
        )


class _ScorerTrainer:
    """Saliency under a shared mask → one alignment step of the scorer."""

    def __init__(self, model, scorer: ImportanceScorer, cfg: TrainConfig) -> None:
        self.model, self.scorer, self.cfg = model, scorer, cfg
        self.opt = torch.optim.Adam(scorer.parameters(), lr=cfg.scorer_lr)
        self.losses: list[float] = []

    def step(self, inputs, labels, mask: np.ndarray) -> float:
        sal = unit_saliency(self.model, inputs, labels, mask, groups=self.cfg.saliency_groups)
        loss = self.cfg.saliency_weight * alignment_loss(self.scorer(torch.from_numpy(mask)), sal)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.losses.append(loss.detach().item())
        return self.losses[-1]


def train(
    dataset: MultimodalDataset,
    model_config,
    train_config: TrainConfig,
    out_dir: Path | str,
    progress: bool = True,
) -> Path:
    """Train, evaluate and write ``model.safetensors``, ``config.json``, ``metrics.json``."""
    from sentryfuse.models import build_model, count_params

    cfg = train_config
    _check_compatible(dataset, model_config)
    check_out_dir(out_dir)  # fail before minutes of training, not after
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    # A separate stream for saliency masks: enabling the scorer never changes the task's.
    gate_rng = np.random.default_rng([cfg.seed, 1])
    split: Split = dataset.train
    if cfg.max_train is not None and cfg.max_train < len(split):
        split = split.take(np.sort(rng.choice(len(split), cfg.max_train, replace=False)))
    names = list(dataset.modality_names)
    x = {m: torch.from_numpy(np.ascontiguousarray(split.x[m])) for m in names}
    y = torch.from_numpy(split.y)

    model = build_model(model_config)
    scorer = ImportanceScorer.for_model(model, cfg.scorer_hidden)
    gate_ids = {id(p) for pair in gate_params(model).values() for p in pair}
    params = [p for p in model.parameters() if id(p) not in gate_ids and p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]  # biases, norms, gates: no weight decay
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    steps_per_epoch = math.ceil(len(split) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, cfg.lr_warmup_frac))
    curriculum = cfg.curriculum
    gate = _ScorerTrainer(model, scorer, cfg) if cfg.saliency_every > 0 else None
    subnet = None
    if cfg.subnet_active:
        from sentryfuse.subnet_train import SubnetTrainer

        subnet = SubnetTrainer(model, scorer if gate else None, cfg)
        lagged = gate is not None and cfg.pattern_freeze_at > cfg.subnet_freeze_at
        if lagged and cfg.subnet_pattern_passes == "frozen":
            # the all-present pattern trains as without a lag; the rest once they froze
            subnet.ready = lambda pattern: bool(pattern.all()) or frozen
    separate = None
    if subnet is not None and cfg.subnet_grad == "separate":
        from sentryfuse.subnet_train import SeparateUpdate

        separate = SeparateUpdate(params, cfg.grad_clip)

    t0 = time.perf_counter()
    bar = tqdm(
        total=total, disable=not progress, desc=f"train {dataset.name}", unit="step", leave=False
    )

    def final_fit() -> None:
        """The scorer's last steps against the current backbone, over every subset not
        pinned (``scorer.pin``: the all-present one once it froze ahead of the rest)."""
        if cfg.scorer_final_steps <= 0:
            return
        masks = _subset_masks(len(names)) if len(names) <= 6 else None
        if masks:
            masks = [m for m in masks if not scorer.is_pinned(m)]
        order = gate_rng.permutation(len(split))
        for i in range(cfg.scorer_final_steps):
            idx = np.take(order, range(i * cfg.batch_size, (i + 1) * cfg.batch_size), mode="wrap")
            mask = (
                masks[i % len(masks)]
                if masks
                else curriculum.sample_shared(len(names), 1e9, gate_rng)
            )
            if not scorer.is_pinned(mask):
                gate.step(_batch(x, idx), y[torch.from_numpy(idx)], mask)

    freeze_at = cfg.subnet_freeze_at  # inf unless sub-network passes run (subnet_active)
    pattern_freeze_at = cfg.pattern_freeze_at  # == freeze_at unless a pattern lag is set
    all_present = np.ones(len(names), dtype=bool)
    frozen = False
    step, loss_ema = 0, None
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(split))
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            inputs, labels = _batch(x, idx), y[torch.from_numpy(idx)]
            ep = epoch + b / steps_per_epoch
            present = torch.from_numpy(curriculum.sample(len(idx), len(names), ep, rng))
            logits = model(inputs, present)
            loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            passed = subnet is not None and subnet.due(step, ep)
            if passed:
                subnet.step(inputs, labels, present, logits.detach(), cfg.subnet_weight_at(ep))
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            if passed and separate is not None:  # the passes' own update, after the full one
                lr_now = opt.param_groups[0]["lr"] * cfg.subnet_weight_at(ep)
                separate.step(subnet.pass_grads, lr_now)
            sched.step()
            li = loss.item()
            loss_ema = li if loss_ema is None else 0.95 * loss_ema + 0.05 * li
            if gate is not None and not frozen and ep >= freeze_at and not scorer.pinned:
                final_fit()  # the scorer's last fit, then the deployed ranking trains
                if pattern_freeze_at > freeze_at:
                    scorer.pin(all_present)  # the rest learn on until pattern_freeze_at
                else:
                    frozen = True
            if gate is not None and not frozen and ep >= pattern_freeze_at:
                final_fit()  # the missing-sensor rankings' own last fit
                frozen = True
            if gate is not None and not frozen and step % cfg.saliency_every == 0:
                mask = curriculum.sample_shared(len(names), ep, gate_rng)
                if not scorer.is_pinned(mask):
                    gate.step(inputs, labels, mask)
            step += 1
            bar.update(1)
            bar.set_postfix(
                epoch=epoch, loss=f"{loss_ema:.3f}", p_drop=f"{curriculum.p_drop(ep):.2f}"
            )
    bar.close()
    if gate is not None and not frozen:
        final_fit()
    train_s = time.perf_counter() - t0

    model.eval()
    scorer.eval()
    accuracy = evaluate_conditions(
        model, dataset.test, seed=cfg.seed, batch_size=cfg.eval_batch_size
    )
    tail = gate.losses[-max(cfg.scorer_final_steps, 20) :] if gate and gate.losses else []
    metrics = {
        "dataset": dataset.name,
        "backbone": model_config.backbone,
        "attention": model_config.attention,
        "accuracy": accuracy,
        "params": int(count_params(model)),
        "scorer_params": int(sum(p.numel() for p in scorer.parameters())),
        "train_samples": len(split),
        "test_samples": len(dataset.test),
        "epochs": cfg.epochs,
        "steps": step,
        "train_s": round(train_s, 3),
        "final_train_loss": None if loss_ema is None else round(loss_ema, 5),
        "scorer_alignment_loss": round(float(np.mean(tail)), 6) if tail else None,
        "subnet_passes": 0 if subnet is None else subnet.passes,
        "scorer_frozen_epoch": round(freeze_at, 3) if frozen or scorer.pinned else None,
        "scorer_patterns_frozen_epoch": round(pattern_freeze_at, 3) if frozen else None,
    }
    if subnet is not None and cfg.subnet_grad != "sum":
        metrics["subnet_conflicts"] = subnet.conflicts  # projections made (steps or tensors)
    meta = {
        "train": asdict(cfg),
        "dataset": {
            "name": dataset.name,
            "modalities": [asdict(m) for m in dataset.modalities],
            "classes": list(dataset.classes),
            "normalisation": dataset.meta.get("standardized", dataset.meta.get("normalisation")),
            "path": dataset.meta.get("path"),  # a user's .npz: where to load it again
        },
    }
    return save_checkpoint(Path(out_dir), model, scorer if gate else None, meta, metrics)


__all__ = ["TrainConfig", "train"]  # TrainConfig lives in sentryfuse.train_config
