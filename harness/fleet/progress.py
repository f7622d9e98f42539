"""Progress of a fleet run, per device: done / failed, queued per kind, and an ETA.

A unit is queued on a device *kind* until Ray places it, so "queued" is counted per kind
and "done"/"failed" per device. The ETA of a kind is its queued cells times the mean
cell time seen on that kind, divided by the devices of that kind alive now: the fleet
finishes when its slowest kind does.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class DeviceCounts:
    done: int = 0
    failed: int = 0
    busy_s: float = 0.0


@dataclass
class FleetProgress:
    total: int
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    devices: dict[str, DeviceCounts] = field(default_factory=lambda: defaultdict(DeviceCounts))
    queued: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _kind_s: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def enqueue(self, kind: str, n_cells: int) -> None:
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
        """Seconds until the slowest kind drains; None until every queued kind has a time."""
        worst = 0.0
        for kind, n in self.queued.items():
            if n <= 0:
                continue
            times = self._kind_s.get(kind)
            if not times or not alive.get(kind):
                return None
            worst = max(worst, n * (sum(times) / len(times)) / alive[kind])
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
