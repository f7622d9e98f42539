"""CPU energy: RAPL powercap counters where readable, else a labelled estimate.

RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``) is a real measurement of the
package (it wraps at ``max_energy_range_uj``). It is often root-only and absent in VMs
and containers; then the only honest figure is an *estimate* from the process's CPU
time, labelled ``estimated`` and never presented as measured.
"""

from __future__ import annotations

import contextlib
import re
import time
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


class CpuTimeEstimateSensor(EnergySensor):
    """Energy ≈ process CPU seconds × watts per busy core (labelled ``estimated``)."""

    name = "cpu-time-estimate"

    def __init__(
        self,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
        clock: Clock = MONOTONIC,
        cpu_time: Callable[[], float] = time.process_time,
    ) -> None:
        if cpu_watts_per_core <= 0:
            raise SensorError(f"cpu_watts_per_core must be > 0, got {cpu_watts_per_core}")
        self.watts = cpu_watts_per_core
        self.clock = clock
        self.cpu_time = cpu_time

    def available(self) -> Availability:
        return Availability(True, f"estimate: process CPU time × {self.watts:g} W per core")

    @contextlib.contextmanager
    def window(self) -> Iterator[EnergyWindow]:
        w = EnergyWindow()
        c0, t0 = self.cpu_time(), self.clock()
        yield w
        c1, t1 = self.cpu_time(), self.clock()
        energy_mj = (c1 - c0) * self.watts * 1000.0  # s × W = J → mJ
        w.reading = EnergyReading(
            energy_mj,
            {"cpu": energy_mj},
            "estimated",
            self.name,
            2,
            t1 - t0,
            warnings=(f"estimated from CPU time at {self.watts:g} W/core, not measured",),
        )


def cpu_energy_sensor(
    sysfs_root: Path = DEFAULT_ROOT,
    clock: Clock = MONOTONIC,
    cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
) -> EnergySensor:
    """RAPL when readable, otherwise the CPU-time estimate."""
    rapl = RaplSensor(sysfs_root, clock)
    if rapl.available().ok:
        return rapl
    return CpuTimeEstimateSensor(cpu_watts_per_core, clock)
