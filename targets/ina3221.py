"""Jetson energy from the INA3221 power monitors in sysfs, integrated over a window.

The rails are sampled in a background thread (jtop's ``avg`` is an (old+new)/2 blend, not
a time average, so we integrate ourselves) and the trapezoid rule gives mJ per rail
(mW × s = mJ). The driver's ``update_interval`` (ms) bounds the real sampling rate and
is recorded; a window shorter than it cannot be measured and says so.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentryfuse.errors import SensorError
from targets.base import Availability, EnergyReading, EnergySensor, EnergyWindow
from targets.hw import DEFAULT_ROOT, MONOTONIC, Clock, read_number, read_text, under

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")  # board input: the total when present
SUM_OF_SHUNTS_CHANNEL = 7


@dataclass(frozen=True)
class Rail:
    """One power rail and how to read its power (mW) now."""

    name: str
    read_mw: Callable[[], float | None]


def _skip_label(channel: int, label: str) -> bool:
    tokens = re.split(r"[\s_]+", label.strip().upper())
    return channel == SUM_OF_SHUNTS_CHANNEL or "NC" in tokens or "sum of shunt" in label.lower()


def _hwmon_dirs(root: Path) -> list[Path]:
    """INA3221 hwmon dirs; the hwmon index changes between boots, so glob it."""
    found = list(under(root, "/sys/bus/i2c/drivers/ina3221").glob("*/hwmon/hwmon*"))
    for d in under(root, "/sys/class/hwmon").glob("hwmon*"):
        if (read_text(d / "name") or "").strip() == "ina3221":
            found.append(d)
    unique: dict[Path, Path] = {}
    for d in found:
        unique.setdefault(d.resolve(), d)
    return sorted(unique.values())


def discover_rails(root: Path = DEFAULT_ROOT) -> tuple[list[Rail], float | None]:
    """Rails from hwmon (JetPack ≥5) or iio ``ina3221x`` (JetPack ≤4), and the update interval (ms)."""
    rails: list[Rail] = []
    intervals: list[float] = []
    for d in _hwmon_dirs(root):
        interval = read_number(d / "update_interval")
        if interval is not None:
            intervals.append(interval)
        for label_file in sorted(d.glob("in*_label")):
            channel = int(re.sub(r"\D", "", label_file.name))
            label = (read_text(label_file) or "").strip()
            if not label or _skip_label(channel, label):
                continue
            mv, ma = d / f"in{channel}_input", d / f"curr{channel}_input"
            rails.append(Rail(label, _product_reader(mv, ma)))
    for d in sorted(under(root, "/sys/bus/i2c/drivers/ina3221x").glob("*/iio:device*")):
        for name_file in sorted(d.glob("rail_name_*")):
            channel = int(name_file.name.rsplit("_", 1)[1])
            label = (read_text(name_file) or "").strip()
            if label and not _skip_label(channel, label):
                rails.append(Rail(label, _number_reader(d / f"in_power{channel}_input")))
    return rails, (max(intervals) if intervals else None)


def _product_reader(mv_path: Path, ma_path: Path) -> Callable[[], float | None]:
    def read() -> float | None:
        mv, ma = read_number(mv_path), read_number(ma_path)
        return None if mv is None or ma is None else mv * ma / 1000.0  # mV × mA = µW → mW

    return read


def _number_reader(path: Path) -> Callable[[], float | None]:
    return lambda: read_number(path)


def total_rail(names: Sequence[str]) -> str | None:
    """The board-input rail when the board has one (its reading *is* the total)."""
    return next((n for n in TOTAL_RAILS if n in names), None)


def integrate(samples: Sequence[tuple[float, Mapping[str, float]]]) -> dict[str, float]:
    """Trapezoid rule over ``[(t_s, {rail: mW}), ...]`` → ``{rail: mJ}``."""
    energy: dict[str, float] = {}
    for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False):
        dt = t1 - t0
        for rail in p0.keys() & p1.keys():
            energy[rail] = energy.get(rail, 0.0) + 0.5 * (p0[rail] + p1[rail]) * dt
    return energy


def reading_from_samples(
    samples: Sequence[tuple[float, Mapping[str, float]]],
    sensor: str,
    update_interval_ms: float | None,
) -> EnergyReading:
    """Integrate samples and pick the total rail as HARDWARE.md says."""
    if len(samples) < 2:
        raise SensorError(f"{sensor}: a window needs at least 2 samples, got {len(samples)}")
    rails = integrate(samples)
    total_name = total_rail(list(rails))
    total = rails[total_name] if total_name else sum(rails.values())
    elapsed = samples[-1][0] - samples[0][0]
    warnings = []
    if update_interval_ms and elapsed * 1000.0 < update_interval_ms:
        warnings.append(
            f"window {elapsed * 1000:.1f} ms is shorter than the sensor update interval "
            f"{update_interval_ms:g} ms: lengthen it"
        )
    if not total_name:
        warnings.append("no VDD_IN/POM_5V_IN rail: total is the sum of module rails")
    return EnergyReading(
        total, rails, "measured", sensor, len(samples), elapsed, update_interval_ms, tuple(warnings)
    )


class Ina3221Sensor(EnergySensor):
    """Background-sampled INA3221 rails; ``interval_s`` defaults to the driver's update interval."""

    name = "ina3221-sysfs"

    def __init__(
        self,
        sysfs_root: Path = DEFAULT_ROOT,
        clock: Clock = MONOTONIC,
        interval_s: float | None = None,
    ) -> None:
        self.root = Path(sysfs_root)
        self.clock = clock
        self.interval_s = interval_s

    def available(self) -> Availability:
        rails, _ = discover_rails(self.root)
        if not rails:
            return Availability(False, "no INA3221 rails in sysfs (hwmon or iio ina3221x)")
        if rails[0].read_mw() is None:
            return Availability(False, f"INA3221 rail '{rails[0].name}' is not readable (try root)")
        return Availability(True)

    def _sample(self, rails: Sequence[Rail]) -> tuple[float, dict[str, float]]:
        t = self.clock()
        values = {}
        for r in rails:
            mw = r.read_mw()
            if mw is not None:
                values[r.name] = mw
        return t, values

    @contextlib.contextmanager
    def window(self) -> Iterator[EnergyWindow]:
        rails, update_ms = discover_rails(self.root)
        if not rails:
            raise SensorError("no INA3221 rails found in sysfs; use the tegrastats fallback")
        interval_s = self.interval_s or ((update_ms or 10.0) / 1000.0)
        samples = [self._sample(rails)]
        stop = threading.Event()
        lock = threading.Lock()

        def loop() -> None:
            while not stop.wait(interval_s):
                s = self._sample(rails)
                with lock:
                    samples.append(s)

        thread = threading.Thread(target=loop, name="ina3221-sampler", daemon=True)
        thread.start()
        w = EnergyWindow()
        try:
            yield w
        finally:
            stop.set()
            thread.join()
        samples.append(self._sample(rails))
        w.reading = reading_from_samples(samples, self.name, update_ms)
