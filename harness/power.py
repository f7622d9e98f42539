"""Power-mode simulation: static sweeps (one mode per cell) and mid-stream timelines.

Static sweeps are cells whose ``power_mode`` axis differs; each runs inside
``target.power_modes().apply(mode)``, which restores the previous mode on any exit.
Timelines change the mode while a stream runs: ``ModeSwitcher`` records the mode on
entry, switches on demand, and restores on exit (errors and Ctrl-C included).
``"current"`` means "leave the device as it is" and never touches it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harness.profile_schema import ReplayEvent
from harness.registry import CURRENT_MODE


@contextlib.contextmanager
def static_mode(power_modes: object, name: str) -> Iterator[None]:
    """Run a block under power mode ``name`` (no-op for 'current')."""
    if name == CURRENT_MODE:
        yield
        return
    with power_modes.apply(name):
        yield


class ModeSwitcher:
    """Switch power modes mid-stream; restore the mode found on entry when done."""

    def __init__(self, power_modes: object) -> None:
        self._pm = power_modes
        self._previous: object | None = None  # the adapter's snapshot, taken before any change
        self.active = CURRENT_MODE

    def __enter__(self) -> ModeSwitcher:
        return self

    def switch(self, name: str) -> None:
        if name == CURRENT_MODE or name == self.active:
            return
        if self._previous is None:
            self._previous = self._pm.snapshot()
        self._pm.set(name)
        self.active = name

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            self._pm.restore(self._previous)
            self._previous = None
            self.active = CURRENT_MODE


@dataclass(frozen=True)
class Segment:
    """A stretch of the stream with one power mode and one set of present sensors."""

    seq: int
    t_start_s: float
    t_end_s: float
    present: tuple[str, ...]
    power_mode: str
    n_samples: int


def timeline_segments(
    events: Sequence[ReplayEvent], duration_s: float, rate_hz: float
) -> list[Segment]:
    """Turn change events into segments; sample counts round cumulatively (no drift)."""
    segments: list[Segment] = []
    present: tuple[str, ...] = ()
    mode = CURRENT_MODE
    for i, ev in enumerate(events):
        present = ev.present if ev.present is not None else present
        mode = ev.power_mode if ev.power_mode is not None else mode
        t_end = events[i + 1].t_s if i + 1 < len(events) else duration_s
        n = round(t_end * rate_hz) - round(ev.t_s * rate_hz)
        segments.append(Segment(i, ev.t_s, t_end, present, mode, n))
    return segments
