"""Budget policies: the least pruning that meets a power mode's deadline or energy budget.

A profile gives, per power mode, either a fixed sparsity (``[replay] policy``) or a
target (``[replay.budgets]``: ``deadline_ms`` on p99 batch-1 latency, or ``energy_mj``
per inference). For a target, SentryGate re-prunes on a mode change to the smallest
sparsity of the measured latency model that meets it; when none does, the largest one
(the closest it can get), reported as not met.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.latency_model import LatencyModel, LatencyPoint
from harness.reader import Section, fail

BUDGET_KINDS = ("deadline_ms", "energy_mj")


@dataclass(frozen=True)
class Budget:
    """One power mode's target: ``kind`` is 'deadline_ms' (p99) or 'energy_mj'."""

    kind: str
    value: float

    def label(self) -> str:
        return f"p99 ≤ {self.value:g} ms" if self.kind == "deadline_ms" else (
            f"≤ {self.value:g} mJ/inference"
        )  # fmt: skip

    def predicted(self, point: LatencyPoint) -> float | None:
        """The point's figure this budget bounds (None: not measured, e.g. no energy)."""
        return point.latency_ms_p99 if self.kind == "deadline_ms" else point.energy_mj


@dataclass(frozen=True)
class Choice:
    """What the policy picked for a segment, and what the model predicted for it."""

    sparsity: float
    predicted: float | None
    feasible: bool  # False: no measured sparsity meets the budget; the largest is used


def least_pruning(model: LatencyModel, budget: Budget) -> Choice:
    """The smallest measured sparsity whose predicted figure meets ``budget``."""
    if not model.points:
        raise ValueError("a latency model needs at least one measured point")
    points = sorted(model.points, key=lambda p: p.sparsity)
    for p in points:
        v = budget.predicted(p)
        if v is not None and v <= budget.value:
            return Choice(p.sparsity, v, True)
    last = points[-1]
    return Choice(last.sparsity, budget.predicted(last), False)


def met(budget: Budget, latencies_ms: list[float], energy_mj: float | None) -> bool | None:
    """Whether a segment met its budget as measured (None when it cannot be told)."""
    if budget.kind == "deadline_ms":
        if not latencies_ms:
            return None
        return sum(x > budget.value for x in latencies_ms) <= 0.01 * len(latencies_ms)
    if energy_mj is None:
        return None
    return energy_mj <= budget.value


def read_budgets(
    sec: Section, policy: tuple[tuple[str, float], ...]
) -> tuple[tuple[str, str, float], ...]:
    """``[replay.budgets]``: ``mode = { deadline_ms = x }`` or ``{ energy_mj = x }``."""
    out = []
    for mode in sec.unread():
        if mode in dict(policy):
            fail(file=sec.file, key=sec.key(mode), problem="this mode already has a fixed "
                 "sparsity in [replay] policy; give it one or the other")  # fmt: skip
        table = sec.section(mode, required=True)
        given = [k for k in BUDGET_KINDS if k in table.unread()]
        if len(given) != 1:
            fail(file=sec.file, key=sec.key(mode), problem="give exactly one of "
                 + " or ".join(BUDGET_KINDS) + " (a number > 0)")  # fmt: skip
        value = table.float(given[0], minimum=0.0)
        if value <= 0:
            fail(file=sec.file, key=table.key(given[0]), problem="must be > 0")
        table.done()
        out.append((mode, given[0], float(value)))
    sec.done()
    return tuple(out)
