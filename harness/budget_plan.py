"""Deployment replay with budgets: measure (or reuse) a latency model on a power-mode
change, then let the method re-prune to the least sparsity that meets the mode's target.

One latency model per target × runtime × power mode × present sensors (× the method and
checkpoint whose variants it measured), built from the exact variants the method would
deploy at each sparsity of ``BUDGET_SPARSITIES``, under the mode being entered, and
cached in the results store with the device fingerprint (``LatencyModelCache``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.latency_model import (
    BUDGET_SPARSITIES,
    CALLS_PER_POINT,
    LatencyModel,
    LatencyModelCache,
    build_latency_model,
    model_key,
)
from harness.policy import Budget, Choice, least_pruning, met

SETTLE_SAMPLES = 5  # a segment's first samples run while caches refill after the switch


@dataclass(frozen=True)
class SegmentBudget:
    """What one segment was asked for, what was chosen, and how it went."""

    seq: int
    power_mode: str
    budget: Budget
    choice: Choice
    model_key: str
    model_cached: bool

    def report(self, latencies_ms: list[float], energy_mj_per_inference: float | None) -> dict:
        settled = latencies_ms[SETTLE_SAMPLES:]
        out = {
            "seq": self.seq,
            "power_mode": self.power_mode,
            "target": self.budget.label(),
            "kind": self.budget.kind,
            "value": self.budget.value,
            "chosen_sparsity": self.choice.sparsity,
            "predicted": self.choice.predicted,
            "feasible": self.choice.feasible,
            "met": met(self.budget, settled, energy_mj_per_inference),
            "latency_model": self.model_key[:16],
            "latency_model_cached": self.model_cached,
        }
        if self.budget.kind == "deadline_ms":
            misses = sum(x > self.budget.value for x in settled)
            out["misses_after_settle"] = misses
            out["miss_pct_after_settle"] = 100.0 * misses / len(settled) if settled else None
        return out


class BudgetPlanner:
    """Chooses each budgeted segment's sparsity from a measured latency model."""

    def __init__(
        self,
        target: Any,
        runtime: str,
        store_path: Path,
        workdir: Path,
        variant_at: Callable[[tuple[str, ...], float], Any],
        source: Mapping[str, Any],
        sparsities: Sequence[float] = BUDGET_SPARSITIES,
        calls: int = CALLS_PER_POINT,
    ) -> None:
        self.target, self.runtime = target, runtime
        self.cache = LatencyModelCache(store_path)
        self.workdir = workdir
        self.variant_at = variant_at
        self.source = dict(source)  # what the variants come from (method, checkpoint, ...)
        self.sparsities, self.calls = tuple(sparsities), calls
        self._models: dict[tuple, LatencyModel] = {}

    def latency_model(
        self, power_mode: str, present: tuple[str, ...], inputs: list[dict[str, np.ndarray]]
    ) -> LatencyModel:
        """Call with ``power_mode`` active: the model is measured under it."""
        memo = (power_mode, present)
        if memo in self._models:
            return self._models[memo]
        definition = {
            **self.source,
            "target": self.target.name,
            "runtime": self.runtime,
            "power_mode": power_mode,
            "present": list(present),
            "sparsities": list(self.sparsities),
            "calls": self.calls,
            # points cached before a modelled estimate was charged at the p50
            # (EnergyReading.charged_mj) held the whole window: not reused
            "energy_rule": "median-v1",
        }
        fingerprint = self.target.fingerprint()
        key = model_key(definition, fingerprint)
        lm = self.cache.get(key)
        if lm is None:
            lm = build_latency_model(
                lambda s: self.variant_at(present, s),
                inputs,
                self.target,
                self.runtime,
                self.workdir / f"latency-{power_mode}-{'+'.join(present)}",
                key,
                self.sparsities,
                self.calls,
            )
            self.cache.put(lm, definition, fingerprint)
        self._models[memo] = lm
        return lm

    def plan(
        self,
        seq: int,
        power_mode: str,
        budget: Budget,
        present: tuple[str, ...],
        inputs: list[dict[str, np.ndarray]],
    ) -> SegmentBudget:
        lm = self.latency_model(power_mode, present, inputs)
        return SegmentBudget(seq, power_mode, budget, least_pruning(lm, budget), lm.key, lm.cached)
