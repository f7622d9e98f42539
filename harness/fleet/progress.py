"""Progress of a fleet run, per device: done / failed, queued per kind, and an ETA.

A unit is queued on a device *kind* until Ray places it, so "queued" is counted per kind
and "done"/"failed" per device. The driver trains each checkpoint before it submits the
first unit that needs it, while the devices measure what was submitted before, so the
work left is of two kinds:

- the driver's training for units not submitted yet, priced per sample-epoch by
  ``harness.eta.EtaModel`` (from the checkpoints it trained in this run, those a resumed
  OUT already holds, else the priors);
- each kind's cells, queued or still to be submitted, at the mean cell time seen on that
  kind, divided by the devices of that kind alive now.

A kind is done when its cells drain and, at the earliest, when the driver has trained up
to its last unit and that unit has run; the fleet finishes when its slowest kind does.
Counting only the queued cells said "2m" with hours of training ahead on the driver.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from harness.eta import EtaModel


@dataclass
class DeviceCounts:
    done: int = 0
    failed: int = 0
    busy_s: float = 0.0


@dataclass(frozen=True)
class PlannedUnit:
    """A unit the driver has not submitted yet: its kind, cells and training first."""

    kind: str
    n_cells: int
    train_units: float = 0.0  # sample-epochs the driver trains before submitting it


@dataclass
class FleetProgress:
    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    devices: dict[str, DeviceCounts] = field(default_factory=lambda: defaultdict(DeviceCounts))
    queued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    train: EtaModel = field(default_factory=EtaModel)  # prices the driver's training
    pending: list[PlannedUnit] = field(default_factory=list)  # not submitted yet, in order
    _kind_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def plan(self, units: list[PlannedUnit]) -> None:
        """The units the driver will submit, in its order (``enqueue`` takes them off)."""
        self.pending = list(units)

    def enqueue(self, kind: str, n_cells: int, train_s: float = 0.0) -> None:
        """The next planned unit was submitted; its training took ``train_s``."""
        if self.pending:
            unit = self.pending.pop(0)
            if unit.train_units > 0 and train_s > 0:
                self.train.trained(unit.train_units, train_s)
        self.queued[kind] += n_cells

    def finished(self, kind: str, device: str, ok: bool, cell_s: float | None) -> None:
        """One cell stored; ``cell_s`` is its share of its unit's wall time (None: it
        never ran, e.g. its device was lost)."""
        self.queued[kind] -= 1
        d = self.devices[f"{kind}:{device}"]
        if ok:
            d.done += 1
        else:
            d.failed += 1
        if cell_s is not None:
            d.busy_s += cell_s
            self._kind_s[kind].append(cell_s)

    def eta_s(self, alive: dict[str, int]) -> float | None:
        """Seconds until the slowest kind is done (module docstring); None until every
        kind with cells left has a measured cell time and a device alive."""
        left = defaultdict(int, {k: n for k, n in self.queued.items() if n > 0})
        ready_s: dict[str, tuple[float, int]] = {}  # kind -> (driver s to its last unit, cells)
        driver_s = 0.0
        for unit in self.pending:
            driver_s += unit.train_units * self.train.rate("train_unit")
            left[unit.kind] += unit.n_cells
            ready_s[unit.kind] = (driver_s, unit.n_cells)
        worst = driver_s
        for kind, n in left.items():
            times = self._kind_s.get(kind)
            if not times or not alive.get(kind):
                return None
            cell_s = sum(times) / len(times)
            finish = n * cell_s / alive[kind]
            if kind in ready_s:
                last_ready, last_cells = ready_s[kind]
                finish = max(finish, last_ready + last_cells * cell_s)
            worst = max(worst, finish)
        return worst

    def line(self, alive: dict[str, int]) -> str:
        done = sum(d.done + d.failed for d in self.devices.values())
        per_device = ", ".join(
            f"{name} {d.done} done/{d.failed} failed" for name, d in sorted(self.devices.items())
        )
        queued = ", ".join(f"{k} {n}" for k, n in sorted(self.queued.items()) if n > 0) or "none"
        eta = self.eta_s(alive)
        eta_s = "?" if eta is None else _duration(eta)
        return f"fleet {done}/{self.total} cells | {per_device} | queued: {queued} | ETA {eta_s}"

    def report(self, alive: dict[str, int], note: str = "") -> None:
        print(self.line(alive) + (f" | {note}" if note else ""), file=self.stream, flush=True)


def _duration(s: float) -> str:
    m, sec = divmod(int(round(s)), 60)
    return f"{m}m{sec:02d}s" if m else f"{sec}s"
