"""tegrastats parsing: the fallback energy source when the INA3221 sysfs files are closed.

Rail fields come in three shapes: JetPack ≤4 ``VDD_IN 14025/14416`` (mW, no unit),
JetPack 5/6 ``VDD_IN 4915mW/4915mW`` (current/average) and JetPack 7
``VDD_GPU_SOC 5139mW/5139mW/5139mW``. Only the first (instantaneous) value is
integrated; tegrastats' own average is since start-up, not over our window.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sentryfuse.errors import SensorError
from targets.base import Availability, EnergySensor, EnergyWindow
from targets.hw import MONOTONIC, Clock
from targets.ina3221 import reading_from_samples

_RAIL = re.compile(
    r"(?<![\w@])([A-Z][A-Z0-9_]*)\s+(\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)"
)
_DATE = re.compile(r"^\s*(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s+")


@dataclass(frozen=True)
class TegrastatsLine:
    """The power part of one tegrastats line."""

    rails_mw: dict[str, float]  # instantaneous values
    average_mw: dict[str, float] = field(default_factory=dict)
    third_mw: dict[str, float] = field(default_factory=dict)  # JetPack 7's third value
    timestamp: str | None = None


def parse_line(line: str) -> TegrastatsLine:
    """Rails of one tegrastats line (empty when tegrastats ran without the right to read them)."""
    date = _DATE.match(line)
    body = line[date.end() :] if date else line
    rails, avg, third = {}, {}, {}
    for name, cur, mean, extra in _RAIL.findall(body):
        rails[name] = float(cur)
        avg[name] = float(mean)
        if extra:
            third[name] = float(extra)
    return TegrastatsLine(rails, avg, third, date.group(1) if date else None)


class _Process:
    """``tegrastats --interval N`` as a line stream."""

    def __init__(self, interval_ms: int) -> None:
        self.proc = subprocess.Popen(
            ["tegrastats", "--interval", str(interval_ms)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )

    def __iter__(self) -> Iterator[str]:
        assert self.proc.stdout is not None
        return iter(self.proc.stdout)

    def close(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)


Spawn = Callable[[int], Any]  # interval_ms → iterable of lines with .close()


class TegrastatsSensor(EnergySensor):
    """Energy from tegrastats lines, each stamped with the injectable clock on arrival."""

    name = "tegrastats"

    def __init__(
        self, interval_ms: int = 100, clock: Clock = MONOTONIC, spawn: Spawn | None = None
    ) -> None:
        self.interval_ms = interval_ms
        self.clock = clock
        self.spawn = spawn or _Process

    def available(self) -> Availability:
        import shutil

        if self.spawn is _Process and shutil.which("tegrastats") is None:
            return Availability(False, "tegrastats is not on PATH (not a Jetson?)")
        return Availability(True)

    @contextlib.contextmanager
    def window(self) -> Iterator[EnergyWindow]:
        try:
            stream = self.spawn(self.interval_ms)
        except OSError as exc:
            raise SensorError(f"cannot start tegrastats: {exc}") from exc
        samples: list[tuple[float, dict[str, float]]] = []
        stop = threading.Event()

        def loop(lines: Iterable[str]) -> None:
            for line in lines:
                if stop.is_set():
                    break
                parsed = parse_line(line)
                if parsed.rails_mw:
                    samples.append((self.clock(), parsed.rails_mw))

        thread = threading.Thread(
            target=loop, args=(stream,), name="tegrastats-reader", daemon=True
        )
        thread.start()
        w = EnergyWindow()
        try:
            yield w
        finally:
            stop.set()
            stream.close()
            thread.join(timeout=2)
        if len(samples) < 2:
            raise SensorError(
                f"tegrastats gave {len(samples)} power samples in the window; lengthen it "
                f"(interval {self.interval_ms} ms) or run as root so rails are printed"
            )
        w.reading = reading_from_samples(list(samples), self.name, float(self.interval_ms))
