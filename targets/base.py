"""The interface every target implements (contract shared by targets/ and harness/).

A target only prepares, runs and synchronises; the harness's runner owns warm-up,
windows and statistics (MLPerf LoadGen's split between load generator and system under
test). Every hardware touch (sysfs root, command runner, clock) is a constructor
parameter so tests can replay recorded traces through the real code paths.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sentryfuse.errors import PowerModeError, unknown_name

if TYPE_CHECKING:
    from targets.engine_cache import EngineCache

EnergySource = Literal["measured", "estimated"]


@dataclass(frozen=True)
class Availability:
    """Whether a target/runtime/sensor can be used here, and why not."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class PowerMode:
    name: str
    description: str = ""
    emulated: bool = False  # True on CPU: thread count/affinity, not a real power cap


@dataclass(frozen=True)
class EnergyReading:
    """Energy over one measurement window."""

    total_mj: float
    rails_mj: Mapping[str, float]
    source: EnergySource
    sensor: str  # e.g. "rapl", "nvml-total-energy", "ina3221-sysfs", "cpu-active-cores-estimate"
    samples: int
    elapsed_s: float
    update_interval_ms: float | None = None
    warnings: tuple[str, ...] = ()  # e.g. window shorter than the sensor's update period
    model: str | None = None  # an estimate's power model, e.g. "cpu-active-cores-v1: ..."

    def charged_mj(self, median_s: float, units: int) -> float:
        """The energy charged to ``units`` queries (or optimizer steps) whose typical
        duration is ``median_s``. Measured (a sensor): the window whole, which holds what
        ran (MLPerf Power). Modelled (``model`` set): the model's power × ``median_s`` ×
        ``units``. On a shared machine the window also holds stalls while other tenants
        had the cores; a sensor would see the energy those tenants drew, a model would
        charge it to us, and the total then swings with the neighbours' load. The median
        unit is our own typical cost, so the estimate is as stable as the p50 it comes
        from. The one rule for a cell's window, a replay budget's points and fine-tuning."""
        if self.model is None or units <= 0 or self.elapsed_s <= 0:
            return self.total_mj
        return self.total_mj / self.elapsed_s * median_s * units


@dataclass(frozen=True)
class MemoryReading:
    peak_rss_mb: float
    cuda_peak_mb: float | None = None
    weights_mb: float | None = None


class Runner(ABC):
    """An exported model: call it with present-modality inputs, get logits back."""

    runtime: str
    weights_bytes: int = 0
    modalities: tuple[str, ...] = ()  # the inputs this runner was exported for, in order

    def prepare(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, Any]:
        """Move a batch where the runtime wants it (e.g. onto the GPU); call it *outside*
        the timed region. ``__call__`` accepts both raw and prepared batches."""
        return inputs

    @abstractmethod
    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        """Run one batch; inputs are ``{modality: (B, T, C) float32}``; returns (B, classes)."""

    def synchronize(self) -> None:  # noqa: B027 - optional hook, no-op on synchronous runtimes
        """Wait for queued device work (window edges)."""

    def mark_window(self) -> None:  # noqa: B027 - optional hook
        """The timed window starts now: per-query device timings count from here on."""

    def device_timings_ms(self) -> Mapping[str, list[float]]:
        """trtexec-style per-query times measured on the device (``h2d_ms`` from
        ``prepare``, ``compute_ms`` and ``d2h_ms`` since ``mark_window``); empty where the
        runtime has no device events (CPU)."""
        return {}

    def close(self) -> None:  # noqa: B027
        """Free engines/sessions."""


class PowerModes(ABC):
    """List/set/restore power modes; ``apply`` restores the previous mode on any exit."""

    @abstractmethod
    def available(self) -> Availability: ...

    @abstractmethod
    def list(self) -> list[PowerMode]: ...

    @abstractmethod
    def current(self) -> str: ...

    @abstractmethod
    def set(self, name: str) -> None: ...

    def snapshot(self) -> Any:
        """Everything ``restore`` needs to put the device back exactly (default: the mode
        name; adapters that change more, e.g. cpufreq or locked clocks, record more)."""
        return self.current()

    def restore(self, snapshot: Any) -> None:
        """Undo every change made since ``snapshot`` was taken."""
        self.set(snapshot)

    def mode(self, name: str) -> PowerMode:
        """The mode called ``name``; an unknown name lists the valid ones."""
        for m in self.list():
            if m.name == name:
                return m
        raise PowerModeError(unknown_name("power mode", name, [m.name for m in self.list()]))

    @contextlib.contextmanager
    def apply(self, name: str) -> Iterator[PowerMode]:
        """Set ``name`` for the duration of the block, restoring the previous state always
        (normal exit, exception, Ctrl-C, or a ``set`` that failed half-way)."""
        wanted = self.mode(name)  # unknown names fail before anything changes
        previous = self.snapshot()
        try:
            self.set(name)
            yield wanted
        finally:
            self.restore(previous)


class EnergySensor(ABC):
    """Opens a measurement window: ``with sensor.window() as w: ...; w.reading``."""

    name: str

    @abstractmethod
    def available(self) -> Availability: ...

    @abstractmethod
    def window(self) -> contextlib.AbstractContextManager[EnergyWindow]: ...


@dataclass
class EnergyWindow:
    """Filled in when the window closes."""

    reading: EnergyReading | None = None


class Target(ABC):
    name: str
    # Where engines built on this device are kept (``targets.engine_cache``); the harness
    # sets it (``OUT/engines`` on one machine, the node's cache in a fleet). None: no
    # cache, every export builds its own.
    engine_cache_dir: Path | None = None

    @abstractmethod
    def availability(self) -> Availability: ...

    def cpu_threads(self) -> int | None:
        """The threads its runners compute on in this process now (the power mode
        applied), when they compute on the CPU, so a timed window's CPU time says how
        much of those cores the process got (harness.trials: the CPU share check). None
        for accelerators: their host thread waits on the device."""
        return None

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Device, driver, library versions, current power mode, clock lock state."""

    @abstractmethod
    def runtimes(self) -> tuple[str, ...]: ...

    def runtime_availability(self) -> dict[str, Availability]:
        """Each runtime this target knows and whether it can run here (default: all ok)."""
        return {r: Availability(True) for r in self.runtimes()}

    @abstractmethod
    def export(
        self,
        model: Any,
        example_inputs: Mapping[str, np.ndarray],
        runtime: str,
        workdir: Path,
    ) -> Runner:
        """Export a torch model taking ``{modality: tensor}`` into a runner (parity-checked)."""

    @abstractmethod
    def power_modes(self) -> PowerModes: ...

    @abstractmethod
    def energy_sensor(self) -> EnergySensor: ...

    def engines(self) -> EngineCache | None:
        """This device's engine cache, keyed by its fingerprint (None without a dir)."""
        if self.engine_cache_dir is None:
            return None
        from targets.engine_cache import EngineCache

        return EngineCache(self.engine_cache_dir, self.fingerprint())

    def reset_memory_peak(self) -> None:  # noqa: B027 - optional hook
        """Start a new peak-memory window (no-op where the device cannot)."""

    @abstractmethod
    def memory(self, runner: Runner | None = None) -> MemoryReading:
        """Peak process memory now (and the runner's weights/engine size when given)."""


@dataclass(frozen=True)
class TargetInfo:
    """What ``sentryfuse targets`` prints for one target."""

    name: str
    availability: Availability
    runtimes: tuple[str, ...] = ()
    power_modes: tuple[str, ...] = ()
    sensors: tuple[str, ...] = field(default_factory=tuple)
