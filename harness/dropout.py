"""Sensor-dropout simulation: fixed subsets, per-sample random drop, bursty Markov traces.

A condition string names how sensors go missing over a stream of samples:
``all``; ``drop:acc`` / ``drop:acc+gyro`` (a fixed subset is absent); ``random:0.3``
(each sensor of each sample is absent with p = 0.3); ``burst:0.3:20`` (each sensor
follows a seeded two-state Markov chain: off 30% of the time in bursts of 20 samples on
average, which is how real sensors fail — a loose cable stays loose for a while).
Every sample keeps at least one sensor, because a model with no input has no answer.
The object mirrors ``sentryfuse.conditions.Condition`` (``present_mask``,
``static_present``) so training/evaluation code accepts either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sentryfuse.errors import SentryFuseError, unknown_name

_KINDS = ("all", "drop", "random", "burst")


@dataclass(frozen=True)
class DropoutCondition:
    name: str  # the condition string, canonical form
    kind: str  # 'all' | 'drop' | 'random' | 'burst'
    dropped: tuple[str, ...] = ()  # 'drop': sensors always absent
    p_off: float = 0.0  # 'random'/'burst': stationary probability a sensor is off
    mean_off_len: float = 1.0  # 'burst': mean length of an off burst, in samples

    @property
    def label(self) -> str:  # sentryfuse.conditions.Condition's name for the same thing
        return self.name

    def static_present(self, modalities: Sequence[str]) -> tuple[str, ...] | None:
        """The fixed set of present sensors, or None when it changes per sample."""
        if self.kind == "all":
            return tuple(modalities)
        if self.kind == "drop":
            return tuple(m for m in modalities if m not in self.dropped)
        return None

    def check_modalities(self, modalities: Sequence[str]) -> None:
        """Raise if the condition names sensors the dataset lacks or drops them all."""
        for m in self.dropped:
            if m not in modalities:
                raise SentryFuseError(
                    f"condition '{self.name}': " + unknown_name("sensor", m, modalities)
                )
        if self.kind == "drop" and not self.static_present(modalities):
            raise SentryFuseError(f"condition '{self.name}' drops every sensor; keep at least one")

    def present_mask(
        self, n: int, modalities: Sequence[str], rng: np.random.Generator
    ) -> np.ndarray:
        """``(n, M)`` bool, True = sensor present; rows are stream order (bursts span rows)."""
        m = len(modalities)
        if self.kind in ("all", "drop"):
            row = np.array([mod not in self.dropped for mod in modalities], dtype=bool)
            return np.broadcast_to(row, (n, m)).copy()
        if self.kind == "random":
            mask = rng.random((n, m)) >= self.p_off
        else:
            mask = markov_trace(n, m, self.p_off, self.mean_off_len, rng)
        return _keep_one(mask, rng)


def markov_trace(
    n: int, m: int, p_off: float, mean_off_len: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-sensor two-state on/off chains; ``(n, m)`` bool, True = on.

    off -> on with q = 1/mean_off_len, on -> off with r = p_off*q/(1-p_off), so the
    stationary off fraction is r/(r+q) = p_off and off bursts are geometric with mean
    mean_off_len. The first row is drawn from the stationary distribution.
    """
    q = 1.0 / mean_off_len
    r = min(1.0, p_off * q / (1.0 - p_off))
    u = rng.random((n, m))
    mask = np.empty((n, m), dtype=bool)
    on = u[0] >= p_off
    mask[0] = on
    for t in range(1, n):
        on = np.where(on, u[t] >= r, u[t] < q)
        mask[t] = on
    return mask


def _keep_one(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Switch one random sensor back on in rows where every sensor is off."""
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        mask[empty, rng.integers(0, mask.shape[1], size=empty.size)] = True
    return mask


def parse_condition(text: str) -> DropoutCondition:
    """Parse a condition string; raise ``SentryFuseError`` with a one-line hint."""
    kind, _, rest = text.partition(":")
    if kind not in _KINDS:
        raise SentryFuseError(
            unknown_name("condition kind", kind, _KINDS)
            + " (forms: all, drop:a+b, random:P, burst:P_OFF:MEAN_LEN)"
        )
    if kind == "all":
        if rest:
            raise SentryFuseError(f"condition '{text}': 'all' takes no argument")
        return DropoutCondition("all", "all")
    if kind == "drop":
        names = tuple(rest.split("+")) if rest else ()
        if not names or any(not n for n in names):
            raise SentryFuseError(
                f"condition '{text}': name the dropped sensors, e.g. drop:acc+gyro"
            )
        return DropoutCondition(f"drop:{'+'.join(names)}", "drop", dropped=names)
    parts = rest.split(":")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    want = 1 if kind == "random" else 2
    if len(values) != want:
        form = "random:P" if kind == "random" else "burst:P_OFF:MEAN_LEN"
        raise SentryFuseError(f"condition '{text}': expected {form} with numbers")
    p = values[0]
    if not 0.0 < p < 1.0:
        raise SentryFuseError(f"condition '{text}': drop probability {p} must be in (0, 1)")
    if kind == "random":
        return DropoutCondition(f"random:{p:g}", "random", p_off=p)
    if values[1] < 1.0:
        raise SentryFuseError(f"condition '{text}': mean burst length must be >= 1 sample")
    return DropoutCondition(f"burst:{p:g}:{values[1]:g}", "burst", p_off=p, mean_off_len=values[1])
