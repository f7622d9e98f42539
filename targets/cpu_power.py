"""CPU "power modes": thread count and CPU affinity, plus cpufreq where it is writable.

These are *emulated* power modes (a laptop or server has no nvpmodel): fewer cores and a
lower frequency cap stand in for a smaller power budget. Every mode change records the
exact previous state (threads, affinity, per-CPU governor and max frequency) and
``restore`` writes that state back, whatever happened in between.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sentryfuse.errors import PowerModeError
from targets.base import Availability, PowerMode, PowerModes
from targets.hw import DEFAULT_ROOT, read_text, under


@dataclass(frozen=True)
class CpuState:
    """Everything a CPU mode touches; ``restore`` writes it back verbatim."""

    threads: int
    affinity: frozenset[int]
    cpufreq: tuple[tuple[str, str, str], ...] = ()  # (cpu dir, governor, scaling_max_freq)


@dataclass(frozen=True)
class CpuModeSpec:
    name: str
    cores: int
    freq_fraction: float | None = None  # of cpuinfo_max_freq; None leaves cpufreq alone
    description: str = ""


class CpuPowerModes(PowerModes):
    """``max`` (every allowed core), ``half``, ``single``; ``half-lowfreq`` when cpufreq is writable."""

    def __init__(self, sysfs_root: Path = DEFAULT_ROOT) -> None:
        self.root = sysfs_root
        self._all = frozenset(_get_affinity())

    # -- state -------------------------------------------------------------------------
    def _cpufreq_dirs(self) -> list[Path]:
        base = under(self.root, "/sys/devices/system/cpu")
        return sorted(
            (d / "cpufreq" for d in base.glob("cpu[0-9]*") if (d / "cpufreq").is_dir()),
            key=lambda p: int(p.parent.name[3:]),
        )

    def cpufreq_writable(self) -> bool:
        dirs = self._cpufreq_dirs()
        return bool(dirs) and all(
            os.access(d / "scaling_max_freq", os.W_OK)
            and os.access(d / "scaling_governor", os.W_OK)
            for d in dirs
        )

    def governor(self) -> str | None:
        dirs = self._cpufreq_dirs()
        text = read_text(dirs[0] / "scaling_governor") if dirs else None
        return text.strip() if text else None

    def snapshot(self) -> CpuState:
        import torch

        freq = (
            tuple(
                (
                    str(d),
                    (read_text(d / "scaling_governor") or "").strip(),
                    (read_text(d / "scaling_max_freq") or "").strip(),
                )
                for d in self._cpufreq_dirs()
            )
            if self.cpufreq_writable()
            else ()
        )
        return CpuState(torch.get_num_threads(), frozenset(_get_affinity()), freq)

    def restore(self, snapshot: CpuState) -> None:
        import torch

        errors = []
        for d, governor, max_freq in snapshot.cpufreq:
            for name, value in (("scaling_governor", governor), ("scaling_max_freq", max_freq)):
                try:
                    Path(d, name).write_text(value + "\n")
                except OSError as exc:
                    errors.append(f"{d}/{name}: {exc.strerror}")
        _set_affinity(snapshot.affinity)
        torch.set_num_threads(snapshot.threads)
        if errors:
            raise PowerModeError(
                f"could not restore cpufreq ({errors[0]}); check permissions on cpufreq"
            )

    # -- modes -------------------------------------------------------------------------
    def specs(self) -> list[CpuModeSpec]:
        n = len(self._all)
        specs = [CpuModeSpec("max", n, None, f"all {n} allowed cores")]
        if n >= 4:
            specs.append(CpuModeSpec("half", n // 2, None, f"{n // 2} cores"))
        if n >= 2:
            specs.append(CpuModeSpec("single", 1, None, "1 core"))
        if self.cpufreq_writable() and n >= 2:
            specs.append(
                CpuModeSpec(
                    "half-lowfreq", max(1, n // 2), 0.5, "half the cores at ≤50% of max frequency"
                )
            )
        return specs

    def available(self) -> Availability:
        return Availability(True, "emulated: thread count and CPU affinity")

    def list(self) -> list[PowerMode]:
        return [PowerMode(s.name, s.description, emulated=True) for s in self.specs()]

    def current(self) -> str:
        import torch

        threads, affinity = torch.get_num_threads(), frozenset(_get_affinity())
        for s in self.specs():
            if (
                s.freq_fraction is None
                and threads == s.cores
                and affinity == frozenset(sorted(self._all)[: s.cores])
            ):
                return s.name
        return f"custom({threads} threads, {len(affinity)} cpus)"

    def set(self, name: str) -> None:
        import torch

        self.mode(name)
        spec = next(s for s in self.specs() if s.name == name)
        cpus = frozenset(sorted(self._all)[: spec.cores])
        _set_affinity(cpus)
        torch.set_num_threads(spec.cores)
        if not self.cpufreq_writable():
            return
        for d in self._cpufreq_dirs():  # modes without a cap run uncapped
            top = read_text(d / "cpuinfo_max_freq")
            low = read_text(d / "cpuinfo_min_freq")
            if not top:
                continue
            cap = int(top)
            if spec.freq_fraction is not None:
                cap = int(int(top) * spec.freq_fraction)
                if low:
                    cap = max(cap, int(low))
            try:
                (d / "scaling_max_freq").write_text(f"{cap}\n")
            except OSError as exc:
                raise PowerModeError(
                    f"cannot write {d}/scaling_max_freq ({exc.strerror}); run as root or pick another mode"
                ) from exc


def _get_affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _set_affinity(cpus: frozenset[int]) -> None:
    if hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            raise PowerModeError(
                f"cannot set CPU affinity to {sorted(cpus)} ({exc.strerror})"
            ) from exc
