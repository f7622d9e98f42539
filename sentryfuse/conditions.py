"""Modality conditions: which sensors are present when a model runs.

One small value type serves training, evaluation, pruning and the harness, so a condition
written on the command line (``drop:acc+gyro``) means exactly the same thing everywhere.
Three kinds exist:

- ``all``: every modality present;
- ``drop:a+b``: a fixed subset is absent for every sample (a sensor is unplugged). The
  model is fed only the present modalities, so absent encoders are skipped, not zero-fed;
- ``random:p``: each modality of each sample is absent with probability ``p`` (flaky
  sensors); passed to the model as a per-sample ``present`` mask.

A mask row is never all-False: a sample with no sensor at all has no answer, so one
modality is kept at random instead (the same rule the training curriculum uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sentryfuse.errors import PruneError, unknown_name

KINDS = ("all", "drop", "random")


def bernoulli_present(n: int, m: int, p_drop: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, m)`` bool presence mask: each entry absent with ``p_drop``, no empty row.

    Rows that came out all-absent keep one modality chosen uniformly, so the marginal drop
    rate is slightly below ``p_drop`` (by ``p_drop**m``) — the price of never asking a
    model to classify nothing.
    """
    present = rng.random((n, m)) >= p_drop
    empty = ~present.any(axis=1)
    if empty.any():
        keep = rng.integers(0, m, size=int(empty.sum()))
        present[np.flatnonzero(empty), keep] = True
    return present


@dataclass(frozen=True)
class Condition:
    """A modality condition; build it with :func:`parse_condition`."""

    kind: str  # "all" | "drop" | "random"
    dropped: tuple[str, ...] = ()  # for "drop": the absent modalities
    p_drop: float = 0.0  # for "random": per-sample, per-modality drop probability

    @property
    def label(self) -> str:
        """The canonical text form, e.g. ``drop:acc+gyro`` (used as a metrics key)."""
        if self.kind == "drop":
            return "drop:" + "+".join(self.dropped)
        if self.kind == "random":
            return f"random:{self.p_drop:g}"
        return "all"

    def __str__(self) -> str:
        return self.label

    def validate(self, modalities: Sequence[str]) -> Condition:
        """Check the condition against a dataset's modalities; return self.

        Raises ``PruneError`` (one line, exit 2 on the CLI) for an unknown modality name or a
        condition that drops every modality.
        """
        for name in self.dropped:
            if name not in modalities:
                raise PruneError(unknown_name("modality", name, modalities))
        if self.kind == "drop" and set(modalities) <= set(self.dropped):
            raise PruneError(
                f"condition '{self.label}' drops every modality; keep at least one of "
                f"{', '.join(modalities)}"
            )
        return self

    def static_present(self, modalities: Sequence[str]) -> tuple[str, ...] | None:
        """The fixed present subset (in dataset order), or None for per-sample conditions."""
        if self.kind == "random":
            return None
        self.validate(modalities)
        return tuple(m for m in modalities if m not in self.dropped)

    def present_mask(
        self, n: int, modalities: Sequence[str], rng: np.random.Generator
    ) -> np.ndarray:
        """``(n, M)`` bool mask, columns in ``modalities`` order, never all-False in a row."""
        m = len(modalities)
        if self.kind == "random":
            return bernoulli_present(n, m, self.p_drop, rng)
        present = self.static_present(modalities)
        assert present is not None
        row = np.array([name in present for name in modalities], dtype=bool)
        return np.broadcast_to(row, (n, m)).copy()


ALL = Condition("all")


def parse_condition(text: str, modalities: Sequence[str] | None = None) -> Condition:
    """Parse ``all`` | ``drop:a`` | ``drop:a+b`` | ``random:0.3``.

    With ``modalities`` the names are validated too (unknown name → one line listing the
    valid ones). Raises ``PruneError`` for malformed text.
    """
    text = text.strip()
    kind, _, arg = text.partition(":")
    if kind == "all" and not arg:
        cond = ALL
    elif kind == "drop" and arg:
        names = tuple(n.strip() for n in arg.split("+"))
        if any(not n for n in names):
            raise PruneError(f"condition '{text}' has an empty modality name; use drop:a+b")
        cond = Condition("drop", dropped=tuple(dict.fromkeys(names)))
    elif kind == "random" and arg:
        try:
            p = float(arg)
        except ValueError:
            raise PruneError(
                f"condition '{text}': '{arg}' is not a number; use e.g. random:0.3"
            ) from None
        if not 0.0 <= p < 1.0:
            raise PruneError(f"condition '{text}': drop probability must be in [0, 1)")
        cond = Condition("random", p_drop=p)
    else:
        raise PruneError(
            f"unknown condition '{text}'; valid forms: all, drop:MOD[+MOD...], random:P"
        )
    if modalities is not None:
        cond.validate(modalities)
    return cond


def standard_conditions(modalities: Sequence[str], p_random: float = 0.3) -> list[Condition]:
    """The evaluation set: all present, each single modality missing, random dropout."""
    conds = [ALL]
    if len(modalities) > 1:
        conds += [Condition("drop", dropped=(m,)) for m in modalities]
    conds.append(Condition("random", p_drop=p_random))
    return conds
