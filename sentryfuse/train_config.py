"""The training recipe: every knob of ``sentryfuse.train.train`` in one frozen dataclass.

Stored verbatim in a checkpoint's ``config.json["train"]``, so a checkpoint says how it
was trained; validated on construction (one-line ``ModelError``s), and the derived
schedule points (where the ranking freezes, the pass weight at an epoch) live here so
the loop and the tests read one definition. ``sentryfuse.train`` re-exports it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sentryfuse.curriculum import DropoutCurriculum
from sentryfuse.errors import ModelError

SUBNET_GRADS: tuple[str, ...] = ("sum", "project", "project_tensor", "separate")


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe; stored verbatim in ``config.json["train"]``."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    lr_warmup_frac: float = 0.05  # fraction of steps with a linear LR warm-up
    grad_clip: float = 1.0
    label_smoothing: float = 0.0
    seed: int = 0
    threads: int | None = None  # torch.set_num_threads; None leaves torch's default
    # modality-dropout curriculum (MAESTRO: warm-up, then ramp to 0.4)
    warmup_epochs: float = 2.0
    ramp_epochs: float = 3.0
    p_drop_max: float = 0.4
    # SentryGate saliency supervision
    saliency_every: int = 2  # steps between saliency/scorer updates (0 disables the scorer)
    saliency_weight: float = 1.0  # scale of the alignment loss (the scorer's own objective)
    saliency_groups: int = 4  # chunks per batch whose |ξ·∂L/∂ξ| are averaged
    scorer_hidden: int = 64
    scorer_lr: float = 3e-3
    scorer_final_steps: int = 60
    max_train: int | None = None  # train on a seeded random subset (quick runs)
    eval_batch_size: int = 256
    # Prunability-aware training (sentryfuse.subnet_train): sub-network passes with the
    # units the pruner would remove, sandwich rule, in-place distillation. Runs only when
    # the checkpoint trains a scorer (saliency_every > 0) or with the random control.
    subnet: bool = True  # False: the pre-prunability recipe, bit-identical
    subnet_ranking: str = "scorer"  # "scorer" | "random" (structured-dropout control)
    distill: bool = True  # KL to the full model's logits (False: cross-entropy ablation)
    distill_temperature: float = 2.0
    distill_weight: float = 0.5  # w in w·T²·KL + (1 − w)·CE
    subnet_every: int = 2  # steps between sub-network steps
    subnet_start_epoch: float = 1.0  # the scorer needs some saliency before it can rank
    subnet_sparsity_min: float = 0.2  # configured sparsity range of the sandwich
    subnet_sparsity_max: float = 0.7  # the smallest sub-network, trained every time
    subnet_sampled: int = 1  # budgets drawn in the range besides the smallest
    subnet_budget: str = "units"  # "units" | "flops", as pruning counts them
    subnet_max_groups: int = 4  # modality-pattern groups per step (largest first)
    # When SentryGate's ranking stops moving. The last ``subnet_freeze_epochs`` epochs
    # train with the scorer frozen: its final fit (``scorer_final_steps``) runs where that
    # phase starts instead of after the last epoch, so the sub-networks trained from then
    # on are exactly the ones SentryGate deploys. None (the default): freeze where the
    # sub-network passes start (``subnet_start_epoch``), so every pass trains a deployed
    # sub-network. 0: the scorer learns to the end and is refit after training, and the
    # deployed ranking drifts from the trained one (the recipe before this default;
    # BENCHMARKS.md "Prunability-aware training" measures both).
    subnet_freeze_epochs: float | None = None
    # Freeze the missing-sensor rankings later than the all-present one. The curriculum
    # drops no sensor during its warm-up, so at an early freeze the backbone has never run
    # without one and the scorer's missing-sensor ranking rests on saliency of a regime the
    # model has not learned. With a number L, only the all-present ranking is frozen (pinned)
    # at the freeze; the rest keep learning until the curriculum has dropped sensors for L
    # epochs (``warmup_epochs + L``), get their own final fit and freeze there (or after the
    # last epoch). None: every pattern freezes at once (the default). Until its ranking
    # freezes a pattern's sub-networks train with the live ranking ("live") or not at all
    # ("frozen": every pass trains a sub-network SentryGate deploys).
    subnet_pattern_lag_epochs: float | None = None
    subnet_pattern_passes: str = "frozen"  # "frozen" | "live"
    # The passes' weight against the full pass: with "separate" (the default) the second
    # update's learning rate as a fraction of the schedule's; with the other modes the
    # scale of the summed sub-network losses. 0.5 with "separate" measured closest to the
    # old recipe's full model at the same pruned gains (BENCHMARKS.md, eighth session).
    subnet_weight: float = 0.5
    # Where the pass weight ends: linear from ``subnet_weight`` where the passes start to
    # this at the last step (None: constant). Early passes at full weight teach the
    # sub-networks; lighter late ones, at the low end of the cosine learning rate, leave
    # the full model's last updates mostly to its own loss.
    subnet_weight_end: float | None = None
    # How the passes' gradient joins the full pass's. "sum": added (the sandwich rule's
    # single update). "project": where the two conflict (negative inner product), the
    # component of the sub-network gradient along the full model's is removed first
    # (PCGrad, Yu et al. 2020), so to first order the passes cannot undo the full
    # model's own step; the part that teaches the sub-networks without hurting it stays.
    # "project_tensor": the same test and projection per parameter tensor (finer: a
    # layer whose pass gradient opposes the full one is projected even when the whole
    # vector agrees). "separate": the passes' gradient is not added at all but applied
    # as a second update with its own AdamW moments and its own clip (learning rate: the
    # schedule's times the pass weight; no weight decay, which the main update already
    # applies). Summed, the passes' gradient inflates Adam's second moment and shares the
    # clip, so the full model's own gradient moves the weights less than in the old
    # recipe (a learning-speed cost); kept apart, the full model's step is the old one's.
    # The default since the eighth build; "sum" with subnet_weight 1.0 is the one before.
    subnet_grad: str = "separate"

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ModelError("epochs and batch_size must be at least 1")
        if not 0.0 <= self.p_drop_max < 1.0:
            raise ModelError(f"p_drop_max must be in [0, 1), got {self.p_drop_max}")
        if self.max_train is not None and self.max_train < 1:
            raise ModelError("max_train must be at least 1 (or unset for the full split)")
        if self.subnet_ranking not in ("scorer", "random"):
            raise ModelError(
                f"subnet_ranking must be 'scorer' or 'random', got '{self.subnet_ranking}'"
            )
        if self.subnet_budget not in ("units", "flops"):
            raise ModelError(
                f"subnet_budget must be 'units' or 'flops', got '{self.subnet_budget}'"
            )
        if not 0.0 <= self.subnet_sparsity_min <= self.subnet_sparsity_max < 1.0:
            raise ModelError(
                "subnet sparsity range must satisfy 0 <= min <= max < 1, got "
                f"{self.subnet_sparsity_min}..{self.subnet_sparsity_max}"
            )
        if self.subnet_every < 1 or self.subnet_sampled < 0 or self.subnet_max_groups < 1:
            raise ModelError("subnet_every and subnet_max_groups >= 1, subnet_sampled >= 0")
        if not self.subnet_weight > 0:
            raise ModelError(f"subnet_weight must be > 0, got {self.subnet_weight}")
        if self.subnet_weight_end is not None and not self.subnet_weight_end >= 0:
            raise ModelError(f"subnet_weight_end must be >= 0, got {self.subnet_weight_end}")
        freeze = self.subnet_freeze_epochs
        if freeze is not None and not 0.0 <= freeze <= self.epochs:
            raise ModelError(
                f"subnet_freeze_epochs must be in [0, {self.epochs}] (the epochs), got {freeze}"
            )
        lag = self.subnet_pattern_lag_epochs
        if lag is not None and not lag >= 0.0:
            raise ModelError(f"subnet_pattern_lag_epochs must be >= 0, got {lag}")
        if self.subnet_pattern_passes not in ("frozen", "live"):
            raise ModelError(
                "subnet_pattern_passes must be 'frozen' or 'live', "
                f"got '{self.subnet_pattern_passes}'"
            )
        if self.subnet_grad not in SUBNET_GRADS:
            raise ModelError(
                f"subnet_grad must be one of {', '.join(SUBNET_GRADS)}, got '{self.subnet_grad}'"
            )
        if not self.distill_temperature > 0 or not 0.0 <= self.distill_weight <= 1.0:
            raise ModelError("distill_temperature must be > 0 and distill_weight in [0, 1]")

    @property
    def subnet_active(self) -> bool:
        """Whether sub-network passes run (the scorer ranking needs a trained scorer)."""
        return self.subnet and (self.saliency_every > 0 or self.subnet_ranking == "random")

    @property
    def subnet_freeze_at(self) -> float:
        """The epoch where the scorer's ranking is fit and frozen (inf: never frozen)."""
        if not self.subnet_active:
            return math.inf
        freeze = self.subnet_freeze_epochs
        if freeze is None:
            freeze = self.epochs - self.subnet_start_epoch
        return self.epochs - freeze if freeze > 0 else math.inf

    def subnet_weight_at(self, epoch: float) -> float:
        """The sub-network passes' loss weight at ``epoch`` (fractional)."""
        end = self.subnet_weight_end
        if end is None:
            return self.subnet_weight
        span = self.epochs - self.subnet_start_epoch
        t = 1.0 if span <= 0 else min(1.0, max(0.0, (epoch - self.subnet_start_epoch) / span))
        return self.subnet_weight + (end - self.subnet_weight) * t

    @property
    def pattern_freeze_at(self) -> float:
        """Where the missing-sensor rankings freeze (== ``subnet_freeze_at`` without a lag)."""
        freeze = self.subnet_freeze_at
        lag = self.subnet_pattern_lag_epochs
        if lag is None or math.isinf(freeze):
            return freeze
        return max(freeze, self.warmup_epochs + lag)

    @property
    def curriculum(self) -> DropoutCurriculum:
        return DropoutCurriculum(self.warmup_epochs, self.ramp_epochs, self.p_drop_max)
