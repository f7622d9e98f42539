"""Desktop NVIDIA GPU power modes and energy through NVML.

The NVML module is a parameter (``nvml=pynvml`` by default), so tests pass an object
with the same functions and recorded values. Power modes are power limits (mW, within
the device's constraints) and, for ``*-locked`` modes, graphics clocks locked to the
default application clock; both need root. Energy is the difference of the
total-energy counter (mJ, Volta+); ``nvmlDeviceGetPowerUsage`` is a 1 s average on
Ampere+ and is never integrated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sentryfuse.errors import PowerModeError, SensorError
from targets.base import (
    Availability,
    EnergyReading,
    EnergySensor,
    EnergyWindow,
    PowerMode,
    PowerModes,
)
from targets.gpu_select import CudaIds, GpuRef, locate_gpu, runtime_cuda_ids
from targets.hw import MONOTONIC, Clock

LIMIT_FRACTIONS = {"tdp": 1.0, "tdp-75": 0.75, "tdp-50": 0.5}


def load_nvml(nvml: Any | None = None) -> Any:
    """The NVML module (``pynvml`` from nvidia-ml-py), initialised; raises ``SensorError``."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as exc:
            raise SensorError(
                "NVML is not installed: pip install 'sentryfuse-bench[cuda]'"
            ) from exc
    try:
        nvml.nvmlInit()
    except Exception as exc:
        raise SensorError(f"NVML could not initialise: {exc}") from exc
    return nvml


def nvml_reason(nvml: Any, exc: Exception) -> str:
    """One-line reason for an NVML error, naming permission and support problems."""
    code = getattr(exc, "value", None)
    if code == getattr(nvml, "NVML_ERROR_NO_PERMISSION", object()):
        return "no permission (needs root)"
    if code == getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", object()):
        return "not supported on this GPU/driver"
    return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class GpuState:
    power_limit_mw: int
    clocks_locked: bool


class NvmlGpu:
    """NVML opened on the GPU the runner uses (``cuda:index`` of this process), found by
    UUID or PCI bus id (``targets.gpu_select``), never by NVML's own index."""

    def __init__(
        self,
        nvml: Any | None = None,
        index: int = 0,
        env: Mapping[str, str] | None = None,
        cuda_ids: CudaIds | None = runtime_cuda_ids,
    ) -> None:
        self._nvml_arg = nvml
        self.index = index
        self.env = env
        self.cuda_ids = cuda_ids
        self._nvml: Any = None
        self._ref: GpuRef | None = None

    @property
    def nvml(self) -> Any:
        if self._nvml is None:
            self._nvml = load_nvml(self._nvml_arg)
        return self._nvml

    def ref(self) -> GpuRef:
        if self._ref is None:
            self._ref = locate_gpu(self.nvml, self.index, env=self.env, cuda_ids=self.cuda_ids)
        return self._ref

    def handle(self) -> Any:
        return self.ref().handle


class NvmlPowerModes(PowerModes):
    """``tdp``, ``tdp-75``, ``tdp-50`` power limits, each also as ``*-locked`` (clocks locked)."""

    def __init__(self, nvml: Any | None = None, index: int = 0, gpu: NvmlGpu | None = None) -> None:
        self.gpu = gpu or NvmlGpu(nvml, index)
        self._locked = False

    @property
    def nvml(self) -> Any:
        return self.gpu.nvml

    def _handle(self) -> Any:
        return self.gpu.handle()

    def _limits(self) -> dict[str, int]:
        h = self._handle()
        low, high = self.nvml.nvmlDeviceGetPowerManagementLimitConstraints(h)
        default = self.nvml.nvmlDeviceGetPowerManagementDefaultLimit(h)
        return {n: int(min(high, max(low, default * f))) for n, f in LIMIT_FRACTIONS.items()}

    def available(self) -> Availability:
        """Probe permission by writing the current limit back (a no-op when allowed)."""
        try:
            h = self._handle()
            self._limits()
            current = self.nvml.nvmlDeviceGetPowerManagementLimit(h)
            self.nvml.nvmlDeviceSetPowerManagementLimit(h, current)
        except SensorError as exc:
            return Availability(False, str(exc))
        except Exception as exc:
            return Availability(False, f"GPU power limits: {nvml_reason(self.nvml, exc)}")
        return Availability(True)

    def list(self) -> list[PowerMode]:
        limits = self._limits()
        modes = [PowerMode(n, f"power limit {mw / 1000:g} W") for n, mw in limits.items()]
        modes += [
            PowerMode(n + "-locked", f"power limit {mw / 1000:g} W, clocks locked")
            for n, mw in limits.items()
        ]
        return modes

    def current(self) -> str:
        mw = self.nvml.nvmlDeviceGetPowerManagementLimit(self._handle())
        suffix = "-locked" if self._locked else ""
        for name, limit in self._limits().items():
            if limit == mw:
                return name + suffix
        return f"custom({mw / 1000:g} W){suffix}"

    def snapshot(self) -> GpuState:
        return GpuState(
            int(self.nvml.nvmlDeviceGetPowerManagementLimit(self._handle())), self._locked
        )

    def restore(self, snapshot: GpuState) -> None:
        h = self._handle()
        try:
            if self._locked and not snapshot.clocks_locked:
                self.nvml.nvmlDeviceResetGpuLockedClocks(h)
                self._locked = False
            self.nvml.nvmlDeviceSetPowerManagementLimit(h, snapshot.power_limit_mw)
        except Exception as exc:
            raise PowerModeError(
                f"could not restore the GPU power state: {nvml_reason(self.nvml, exc)}"
            ) from exc

    def set(self, name: str) -> None:
        self.mode(name)
        lock = name.endswith("-locked")
        limit = self._limits()[name.removesuffix("-locked")]
        h = self._handle()
        try:
            self.nvml.nvmlDeviceSetPowerManagementLimit(h, limit)
            if lock and not self._locked:
                clock_mhz = self.nvml.nvmlDeviceGetDefaultApplicationsClock(
                    h, self.nvml.NVML_CLOCK_GRAPHICS
                )
                self.nvml.nvmlDeviceSetGpuLockedClocks(h, clock_mhz, clock_mhz)
                self._locked = True
            elif not lock and self._locked:
                self.nvml.nvmlDeviceResetGpuLockedClocks(h)
                self._locked = False
        except Exception as exc:
            raise PowerModeError(
                f"cannot set GPU power mode '{name}': {nvml_reason(self.nvml, exc)}"
            ) from exc


class NvmlEnergySensor(EnergySensor):
    """Difference of ``nvmlDeviceGetTotalEnergyConsumption`` (mJ) over the window."""

    name = "nvml-total-energy"

    def __init__(
        self,
        nvml: Any | None = None,
        index: int = 0,
        clock: Clock = MONOTONIC,
        gpu: NvmlGpu | None = None,
    ) -> None:
        self.gpu = gpu or NvmlGpu(nvml, index)
        self.clock = clock

    def available(self) -> Availability:
        nvml = None
        try:
            nvml = self.gpu.nvml
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.gpu.handle())
        except SensorError as exc:
            return Availability(False, str(exc))
        except Exception as exc:
            return Availability(False, f"NVML total energy: {nvml_reason(nvml, exc)}")
        return Availability(True)

    @contextlib.contextmanager
    def window(self) -> Iterator[EnergyWindow]:
        nvml = self.gpu.nvml
        h = self.gpu.handle()

        def read() -> float:
            try:
                return float(nvml.nvmlDeviceGetTotalEnergyConsumption(h))
            except Exception as exc:
                raise SensorError(f"NVML total energy: {nvml_reason(nvml, exc)}") from exc

        w = EnergyWindow()
        e0, t0 = read(), self.clock()
        yield w
        e1, t1 = read(), self.clock()
        energy = e1 - e0
        w.reading = EnergyReading(energy, {"gpu": energy}, "measured", self.name, 2, t1 - t0)
