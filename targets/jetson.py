"""The Jetson target: detection, fingerprint, TensorRT/torch runners, nvpmodel, INA3221.

Detection reads ``/proc/device-tree/model`` and ``/etc/nv_tegra_release`` under an
injectable root, so it is decided before NVML is ever asked (NVML loads on a Jetson but
answers NOT_SUPPORTED for power and energy).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError, unknown_name
from targets.base import Availability, EnergySensor, MemoryReading, Runner, Target
from targets.hw import (
    DEFAULT_ROOT,
    MONOTONIC,
    Clock,
    CommandRunner,
    SubprocessRunner,
    read_text,
    under,
)
from targets.ina3221 import Ina3221Sensor, discover_rails
from targets.jtop_control import JtopFactory, JtopPowerModes
from targets.memory import cuda_peak_mb, peak_rss_mb, reset_cuda_peak, reset_peak_rss
from targets.nvpmodel import NvpmodelPowerModes
from targets.tegrastats import TegrastatsSensor

JETSON_RUNTIMES = ("tensorrt", "torch")
POWER_CONTROLLERS = ("auto", "jtop", "nvpmodel")
# L4T major release → JetPack major (NVIDIA's JetPack archive); the device's own
# nv_tegra_release is recorded verbatim next to it.
L4T_TO_JETPACK = {32: "4", 34: "5", 35: "5", 36: "6", 38: "7", 39: "7"}


def board_model(root: Path = DEFAULT_ROOT) -> str | None:
    text = read_text(under(root, "/proc/device-tree/model"))
    return text.replace("\x00", "").strip() if text else None


def l4t_release(root: Path = DEFAULT_ROOT) -> str | None:
    """``# R36 (release), REVISION: 4.3, ...`` → ``36.4.3``."""
    text = read_text(under(root, "/etc/nv_tegra_release")) or ""
    major = re.search(r"R(\d+)\s*\(release\)", text)
    if not major:
        return None
    rev = re.search(r"REVISION:\s*([\d.]+)", text)
    return f"{major.group(1)}.{rev.group(1)}" if rev else major.group(1)


def detect_jetson(root: Path = DEFAULT_ROOT) -> Availability:
    model = board_model(root)
    if l4t_release(root) or (model and "jetson" in model.lower()):
        return Availability(True)
    return Availability(
        False, "not a Jetson (no /etc/nv_tegra_release, device-tree model is not a Jetson)"
    )


class JetsonTarget(Target):
    name = "jetson"

    def __init__(
        self,
        sysfs_root: Path = DEFAULT_ROOT,
        runner: CommandRunner | None = None,
        clock: Clock = MONOTONIC,
        sample_interval_s: float | None = None,
        power_controller: str = "auto",
        jtop_factory: JtopFactory | None = None,
    ) -> None:
        """``power_controller``: ``auto`` uses jtop when its service answers, else the
        ``nvpmodel``/``jetson_clocks`` commands; ``jtop`` or ``nvpmodel`` forces one."""
        if power_controller not in POWER_CONTROLLERS:
            raise TargetError(unknown_name("power controller", power_controller, POWER_CONTROLLERS))
        self.root = Path(sysfs_root)
        self.runner = runner or SubprocessRunner()
        self.clock = clock
        self.sample_interval_s = sample_interval_s
        self.power_controller = power_controller
        self._nvpmodel = NvpmodelPowerModes(self.runner, self.root)
        self._jtop = JtopPowerModes(jtop_factory)
        self._power: NvpmodelPowerModes | JtopPowerModes | None = None
        self._jtop_reason = ""

    @property
    def controller(self) -> str:
        """Which controller sets power modes: 'jtop' or 'nvpmodel' (decided on first use)."""
        return "jtop" if isinstance(self.power_modes(), JtopPowerModes) else "nvpmodel"

    def availability(self) -> Availability:
        return detect_jetson(self.root)

    def runtimes(self) -> tuple[str, ...]:
        return JETSON_RUNTIMES

    def runtime_availability(self) -> dict[str, Availability]:
        trt = importlib.util.find_spec("tensorrt") is not None
        return {
            "tensorrt": Availability(
                trt, "" if trt else "TensorRT is not installed (ships with JetPack)"
            ),
            "torch": Availability(True),
        }

    def fingerprint(self) -> dict[str, Any]:
        from targets.cuda import library_versions

        release = l4t_release(self.root)
        pm = self.power_modes()
        power = pm.available()
        _, update_ms = discover_rails(self.root)
        extra: dict[str, Any] = {"power_controller": self.controller}
        if self._jtop_reason:
            extra["jtop"] = self._jtop_reason
        if isinstance(pm, JtopPowerModes) and power.ok:
            extra["jtop_board"] = pm.board()
        current = pm.current() if power.ok else None
        return {
            "target": self.name,
            "board": board_model(self.root),
            "l4t": release,
            "jetpack": L4T_TO_JETPACK.get(int(release.split(".")[0])) if release else None,
            **library_versions(),
            "power_mode": current,
            "clocks_locked": current.endswith("+jetson_clocks") if current else None,
            "energy_sensor": self.energy_sensor().name,
            "ina3221_update_interval_ms": update_ms,
            **extra,
        }

    def export(
        self, model: Any, example_inputs: Mapping[str, np.ndarray], runtime: str, workdir: Path
    ) -> Runner:
        if runtime not in JETSON_RUNTIMES:
            raise TargetError(unknown_name("jetson runtime", runtime, JETSON_RUNTIMES))
        avail = self.availability()
        if not avail.ok:
            raise TargetError(f"target 'jetson' is not available here: {avail.reason}")
        from targets.cuda import export_cuda

        engines = self.engines() if runtime == "tensorrt" else None
        return export_cuda(model, example_inputs, runtime, Path(workdir), engines=engines)

    def power_modes(self) -> NvpmodelPowerModes | JtopPowerModes:
        """One controller per target (it tracks the clocks it locked), chosen once."""
        if self._power is None:
            if self.power_controller == "nvpmodel":
                self._power = self._nvpmodel
            elif self.power_controller == "jtop":
                self._power = self._jtop
            else:
                avail = self._jtop.available()
                self._power = self._jtop if avail.ok else self._nvpmodel
                self._jtop_reason = "" if avail.ok else f"not used: {avail.reason}"
        return self._power

    def energy_sensor(self) -> EnergySensor:
        ina = Ina3221Sensor(self.root, self.clock, self.sample_interval_s)
        if ina.available().ok:
            return ina
        return TegrastatsSensor(clock=self.clock)

    def reset_memory_peak(self) -> None:
        reset_peak_rss(self.root)
        reset_cuda_peak()

    def memory(self, runner: Runner | None = None) -> MemoryReading:
        weights = runner.weights_bytes / (1024.0 * 1024.0) if runner is not None else None
        return MemoryReading(peak_rss_mb(self.root), cuda_peak_mb(), weights)
