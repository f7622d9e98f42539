"""Modality-dropout curriculum (MAESTRO-like).

A model that always sees every sensor learns to lean on the strongest one and collapses
when it goes missing. Dropping modalities from the first step instead slows learning of the
joint representation. The compromise: no dropout during a warm-up, then a per-sample,
per-modality drop probability ramped linearly up to ``p_max`` (0.4 in MAESTRO), and held.
The same masks drive the SentryGate saliency batches, so the scorer sees the conditions the
backbone was trained for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentryfuse.conditions import bernoulli_present


@dataclass(frozen=True)
class DropoutCurriculum:
    """Schedule of the modality drop probability over (possibly fractional) epochs."""

    warmup_epochs: float = 2.0  # epochs with no modality dropout at all
    ramp_epochs: float = 3.0  # epochs over which p rises linearly from 0 to p_max
    p_max: float = 0.4  # held after the ramp

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_max < 1.0:
            raise ValueError(f"p_max must be in [0, 1), got {self.p_max}")
        if self.warmup_epochs < 0 or self.ramp_epochs < 0:
            raise ValueError("warmup_epochs and ramp_epochs must be >= 0")

    def p_drop(self, epoch: float) -> float:
        """Drop probability at ``epoch`` (0-based; fractions allowed for per-step ramps)."""
        if epoch < self.warmup_epochs:
            return 0.0
        if self.ramp_epochs == 0:
            return self.p_max
        frac = (epoch - self.warmup_epochs) / self.ramp_epochs
        return self.p_max * min(1.0, frac)

    def sample(self, n: int, m: int, epoch: float, rng: np.random.Generator) -> np.ndarray:
        """``(n, m)`` bool presence mask for a batch at ``epoch``; at least one kept per row."""
        return bernoulli_present(n, m, self.p_drop(epoch), rng)

    def sample_shared(self, m: int, epoch: float, rng: np.random.Generator) -> np.ndarray:
        """One ``(m,)`` mask for a whole batch (saliency is conditioned on one pattern)."""
        return self.sample(1, m, epoch, rng)[0]
