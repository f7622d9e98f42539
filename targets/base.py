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
from typing import Any, Literal

import numpy as np

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
    sensor: str  # e.g. "rapl", "nvml-total-energy", "ina3221-sysfs", "cpu-time-estimate"
    samples: int
    elapsed_s: float
    update_interval_ms: float | None = None


@dataclass(frozen=True)
class MemoryReading:
    peak_rss_mb: float
    cuda_peak_mb: float | None = None
    weights_mb: float | None = None


class Runner(ABC):
    """An exported model: call it with present-modality inputs, get logits back."""

    runtime: str
    weights_bytes: int = 0

    @abstractmethod
    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch; inputs are ``{modality: (B, T, C) float32}``; returns (B, classes)."""

    def synchronize(self) -> None:  # noqa: B027 - optional hook, no-op on synchronous runtimes
        """Wait for queued device work (window edges)."""

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

    @contextlib.contextmanager
    def apply(self, name: str) -> Iterator[PowerMode]:
        """Set ``name`` for the duration of the block, restoring the previous mode always."""
        previous = self.current()
        try:
            self.set(name)
            yield next(m for m in self.list() if m.name == name)
        finally:
            self.set(previous)


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

    @abstractmethod
    def availability(self) -> Availability: ...

    @abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """Device, driver, library versions, current power mode, clock lock state."""

    @abstractmethod
    def runtimes(self) -> tuple[str, ...]: ...

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

    @abstractmethod
    def memory(self) -> MemoryReading: ...


@dataclass(frozen=True)
class TargetInfo:
    """What ``sentryfuse targets`` prints for one target."""

    name: str
    availability: Availability
    runtimes: tuple[str, ...] = ()
    power_modes: tuple[str, ...] = ()
    sensors: tuple[str, ...] = field(default_factory=tuple)
