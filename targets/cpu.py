"""The CPU target: always available; torch, torch.compile and ONNX Runtime."""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError, unknown_name
from targets.base import Availability, EnergySensor, MemoryReading, Runner, Target
from targets.cpu_energy import DEFAULT_CPU_WATTS_PER_CORE, active_threads, cpu_energy_sensor
from targets.cpu_power import CpuPowerModes
from targets.export import PARITY_ATOL, PARITY_RTOL
from targets.hw import DEFAULT_ROOT, MONOTONIC, Clock, read_text, under
from targets.memory import peak_rss_mb, reset_peak_rss

CPU_RUNTIMES = ("torch", "torch-compiled", "onnxruntime")


def cpu_model(root: Path = DEFAULT_ROOT) -> str:
    """CPU model name from /proc/cpuinfo (``model name`` on x86, ``Model``/``CPU part`` on Arm)."""
    text = read_text(under(root, "/proc/cpuinfo")) or ""
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in text.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == key and v.strip():
                return v.strip()
    return platform.processor() or platform.machine() or "unknown"


class CpuTarget(Target):
    name = "cpu"

    def __init__(
        self,
        sysfs_root: Path = DEFAULT_ROOT,
        clock: Clock = MONOTONIC,
        cpu_watts_per_core: float = DEFAULT_CPU_WATTS_PER_CORE,
        parity_atol: float = PARITY_ATOL,
        parity_rtol: float = PARITY_RTOL,
    ) -> None:
        self.root = Path(sysfs_root)
        # How far an exported runtime may stray from eager torch before it is refused
        # (as Polygraphy's --atol/--rtol); tighter values are for strict deployments.
        self.parity_atol, self.parity_rtol = parity_atol, parity_rtol
        self.clock = clock
        self.cpu_watts_per_core = cpu_watts_per_core
        self._power = CpuPowerModes(self.root)

    def availability(self) -> Availability:
        return Availability(True)

    def cpu_threads(self) -> int | None:
        return active_threads()

    def runtimes(self) -> tuple[str, ...]:
        return CPU_RUNTIMES

    def runtime_availability(self) -> dict[str, Availability]:
        ort = importlib.util.find_spec("onnxruntime") is not None
        return {
            "torch": Availability(True),
            "torch-compiled": Availability(True, "needs a C compiler for inductor"),
            "onnxruntime": Availability(ort, "" if ort else "onnxruntime is not installed"),
        }

    def fingerprint(self) -> dict[str, Any]:
        import torch

        ort_version = None
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            ort_version = onnxruntime.__version__
        sensor = self.energy_sensor()
        return {
            "target": self.name,
            "cpu_model": cpu_model(self.root),
            "cpu_count": os.cpu_count(),
            "cpus_allowed": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "machine": platform.machine(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "onnxruntime": ort_version,
            "power_mode": self._power.current(),
            "power_mode_emulated": True,
            "governor": self._power.governor(),
            "clocks_locked": False,
            "energy_sensor": sensor.name,
        }

    def export(
        self, model: Any, example_inputs: Mapping[str, np.ndarray], runtime: str, workdir: Path
    ) -> Runner:
        if runtime not in CPU_RUNTIMES:
            raise TargetError(unknown_name("cpu runtime", runtime, CPU_RUNTIMES))
        from targets.cpu_runners import export_cpu

        return export_cpu(
            model, example_inputs, runtime, Path(workdir), self.parity_atol, self.parity_rtol
        )

    def power_modes(self) -> CpuPowerModes:
        return self._power

    def energy_sensor(self) -> EnergySensor:
        return cpu_energy_sensor(self.root, self.clock, self.cpu_watts_per_core)

    def reset_memory_peak(self) -> None:
        reset_peak_rss(self.root)

    def memory(self, runner: Runner | None = None) -> MemoryReading:
        weights = runner.weights_bytes / (1024.0 * 1024.0) if runner is not None else None
        return MemoryReading(peak_rss_mb(self.root), None, weights)
