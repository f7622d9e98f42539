"""CPU energy: RAPL powercap counters where readable, else a labelled estimate.

RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``) is a real measurement of the
package (it wraps at ``max_energy_range_uj``). It is often root-only and absent in VMs
and containers; then the only honest figure is an *estimate* from the timed window and
a documented power model (``ActiveCoresEstimateSensor``), labelled ``estimated`` and
never presented as measured.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from sentryfuse.errors import SensorError
from targets.base import Availability, EnergyReading, EnergySensor, EnergyWindow
from targets.hw import DEFAULT_ROOT, MONOTONIC, Clock, read_number, read_text, under

# Per-core power used by the estimate, in watts per busy core. A mainstream desktop part
# spends roughly its TDP over its cores at full load (65 W / 8 cores ≈ 8 W; server parts
# 250 W / 32 cores ≈ 8 W). Override with ``cpu_watts_per_core`` when you know your part.
DEFAULT_CPU_WATTS_PER_CORE = 8.0

_PACKAGE = re.compile(r"intel-rapl:\d+$")  # packages only: sub-zones are inside them


class RaplSensor(EnergySensor):
    """Sum of the RAPL package counters, with per-package rails and wrap-around handling."""

    name = "rapl"

    def __init__(self, sysfs_root: Path = DEFAULT_ROOT, clock: Clock = MONOTONIC) -> None:
        self.root = sysfs_root
        self.clock = clock

    def zones(self) -> list[Path]:
        base = under(self.root, "/sys/class/powercap")
        return sorted(p for p in base.glob("intel-rapl:*") if _PACKAGE.search(p.name))

    def available(self) -> Availability:
        zones = self.zones()
        if not zones:
            return Availability(
                False, "no RAPL powercap zones (VM, container or non-Intel/AMD CPU)"
            )
        if read_number(zones[0] / "energy_uj") is None:
            return Availability(False, f"{zones[0] / 'energy_uj'} is not readable (root-only)")
        return Availability(True)

    def _read(self) -> dict[str, tuple[float, float]]:
        out = {}
        for z in self.zones():
            energy = read_number(z / "energy_uj")
            if energy is None:
                raise SensorError(f"cannot read {z / 'energy_uj'}; run as root or use the estimate")
            max_range = read_number(z / "max_energy_range_uj") or 0.0
            label = (read_text(z / "name") or z.name).strip()
            out[f"{label}:{z.name}" if label in out else label] = (energy, max_range)
        return out

    @contextlib.contextmanager
    def window(self) -> Iterator[EnergyWindow]:
        w = EnergyWindow()
        start, t0 = self._read(), self.clock()
        yield w
        end, t1 = self._read(), self.clock()
        rails = {}
        for rail, (e0, max_range) in start.items():
            e1 = end[rail][0]
            delta_uj = e1 - e0 if e1 >= e0 else e1 + max_range - e0  # counter wrapped once
            rails[rail] = delta_uj / 1000.0
        w.reading = EnergyReading(sum(rails.values()), rails, "measured", self.name, 2, t1 - t0)


class ActiveCoresEstimateSensor(EnergySensor):
    """Energy ≈ window wall time × (watts per active core × active threads + base watts).

    Model ``cpu-active-cores-v1``. Why not process CPU time (the previous estimate): it
    counts whatever the process's threads did, including OpenMP spin-waits that come and
    go with a neighbour's load, so two cells 8% apart in latency differed 6× in "energy".
    A batch-1 loop keeps the threads the power mode gave it busy while it runs, so the
    modelled power is constant for a (power mode, runtime) pair; the window's energy is
    its wall time × that power, and the harness charges one inference that power × the
    window's median query time (harness.measure: stalls while other tenants held the
    cores are not the model's), so the estimate is exactly as stable as the p50 latency
    and ranks variants by what they cost in time on the same cores.
    ``base_watts`` (default 0: uncore/idle power is not charged to the model) can add a
    platform floor. Labelled ``estimated`` with the model in ``EnergyReading.model``.
    """

    name = "cpu-active-cores-estimate"
    model_name = "cpu-active-cores-v1"

    def __init__(
        self,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
        base_watts: float = 0.0,
        clock: Clock = MONOTONIC,
        threads: Callable[[], int] | None = None,
    ) -> None:
        if cpu_watts_per_core <= 0 or base_watts < 0:
            raise SensorError(
                f"cpu_watts_per_core must be > 0 and base_watts >= 0, got "
                f"{cpu_watts_per_core} and {base_watts}"
            )
        self.watts = cpu_watts_per_core
        self.base_watts = base_watts
        self.clock = clock
        self.threads = threads or active_threads

    def describe(self, threads: int) -> str:
        """The model as stored in ``cells.energy_model``."""
        base = f" + {self.base_watts:g} W base" if self.base_watts else ""
        return f"{self.model_name}: {self.watts:g} W/core × {threads} threads{base}"

    def available(self) -> Availability:
        return Availability(True, f"estimate: window time × {self.watts:g} W per active core")

    @contextlib.contextmanager
    def window(self) -> Iterator[EnergyWindow]:
        w = EnergyWindow()
        threads = max(1, int(self.threads()))  # the power mode is already applied here
        t0 = self.clock()
        yield w
        t1 = self.clock()
        power_w = self.watts * threads + self.base_watts
        energy_mj = (t1 - t0) * power_w * 1000.0  # s × W = J → mJ
        model = self.describe(threads)
        w.reading = EnergyReading(
            energy_mj,
            {"cpu": energy_mj},
            "estimated",
            self.name,
            2,
            t1 - t0,
            warnings=(f"estimated ({model}), not measured",),
            model=model,
        )


def active_threads() -> int:
    """Threads a runner computes on: torch's intra-op count (the CPU power mode sets it,
    and the ONNX Runtime runner follows it), capped by the CPUs this process may use."""
    import os

    import torch

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    n = torch.get_num_threads()
    return min(n, allowed) if allowed else n


def cpu_energy_sensor(
    sysfs_root: Path = DEFAULT_ROOT,
    clock: Clock = MONOTONIC,
    cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
) -> EnergySensor:
    """RAPL when readable, otherwise the active-cores estimate."""
    rapl = RaplSensor(sysfs_root, clock)
    if rapl.available().ok:
        return rapl
    return ActiveCoresEstimateSensor(cpu_watts_per_core, clock=clock)
