"""Target adapters: one per device kind (cpu, cuda, jetson) behind one interface.

Adapters are imported lazily by name (as MLPerf LoadGen picks backends), so listing
targets on a laptop never imports TensorRT or NVML.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from sentryfuse.errors import SentryFuseError, TargetError, unknown_name
from targets.base import Availability, Target, TargetInfo

TARGETS = ("cpu", "cuda", "jetson")
_CLASSES = {
    "cpu": ("targets.cpu", "CpuTarget"),
    "cuda": ("targets.cuda", "CudaTarget"),
    "jetson": ("targets.jetson", "JetsonTarget"),
}


def get_target(name: str, **hardware_params: Any) -> Target:
    """The adapter called ``name``; ``hardware_params`` (sysfs_root, runner, clock, ...) go
    to its constructor. Construction is cheap and never touches hardware state."""
    if name not in _CLASSES:
        raise TargetError(unknown_name("target", name, TARGETS))
    module_name, class_name = _CLASSES[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**hardware_params)
    except TypeError as exc:
        raise TargetError(f"bad hardware parameters for target '{name}': {exc}") from exc


def target_with(name: str, params: dict[str, Any]) -> Target:
    """``get_target`` with only the ``params`` that target's constructor accepts (the CLI
    passes one ``--sysfs-root`` to every target)."""
    if name not in _CLASSES:
        raise TargetError(unknown_name("target", name, TARGETS))
    module_name, class_name = _CLASSES[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    accepted = inspect.signature(cls).parameters
    return get_target(name, **{k: v for k, v in params.items() if k in accepted})


def require_available(target: Target) -> Target:
    """Raise a one-line ``TargetError`` saying why ``target`` cannot be used here."""
    avail = target.availability()
    if not avail.ok:
        raise TargetError(f"target '{target.name}' is not available here: {avail.reason}")
    return target


def describe_target(target: Target) -> TargetInfo:
    """What ``sentryfuse targets`` prints for one target (never raises for missing hardware)."""
    avail = target.availability()
    runtimes = tuple(
        r if a.ok else f"{r} ({a.reason})" for r, a in target.runtime_availability().items()
    )
    modes: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    if avail.ok:
        try:
            power = target.power_modes()
            pa = power.available()
            modes = tuple(m.name for m in power.list()) if pa.ok else (f"unavailable: {pa.reason}",)
        except SentryFuseError as exc:
            modes = (f"unavailable: {exc}",)
        try:
            sensor = target.energy_sensor()
            sa = sensor.available()
            sensors = (sensor.name + ("" if sa.ok else f" (unavailable: {sa.reason})"),)
        except SentryFuseError as exc:
            sensors = (f"unavailable: {exc}",)
    return TargetInfo(target.name, avail, runtimes, modes, sensors)


def describe_targets(**hardware_params: Any) -> list[TargetInfo]:
    """One ``TargetInfo`` per known target, available or not."""
    infos = []
    for name in TARGETS:
        try:
            infos.append(describe_target(target_with(name, hardware_params)))
        except SentryFuseError as exc:
            infos.append(TargetInfo(name, Availability(False, str(exc))))
    return infos
