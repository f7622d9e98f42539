"""Whether a deployment replay's latencies can be trusted: the stream's own trials.

A static cell is judged by its trials (``harness.trials``): interleaved windows whose
medians must agree (``[measure] max_trial_spread``) and whose process got its cores
(``MIN_CPU_SHARE``). A replay streams each segment once, so it has no trials; judging it
by the coefficient of variation of all its latencies, as it once was, marks every replay
unstable with no reason worth reading: the stream mixes models (a budget per power mode)
and modality subsets by design, and single sub-millisecond queries on a shared CPU have
a CV far above 0.1 even when nothing disturbs them.

So each segment (one model, one power mode, one sensor set) is cut into
``REPLAY_CHUNKS`` consecutive chunks that play the part of trials: the spread of their
medians (``harness.intervals.relative_mad``, the trials' rule) says whether the machine
stayed the same over the segment, and the CPU share per compute thread whether the
process had its cores. Segments too short to judge are listed but get no verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.intervals import relative_mad
from harness.trials import starved_share

REPLAY_CHUNKS = 5  # as many as the quickstart's trials: the same robustness of the MAD


def chunk_spread(
    segments: Sequence[tuple[int, Sequence[float]]], max_spread: float, min_per_chunk: int
) -> tuple[dict[str, Any], str | None]:
    """``(extra_json entries, the unstable reason or None)`` of the per-segment spread.

    ``segments``: ``(seq, latencies_ms in stream order)``. A segment is judged when it has
    at least ``REPLAY_CHUNKS × min_per_chunk`` queries (``[measure] min_count`` per chunk,
    as a trial needs); the reason names the worst judged segment above ``max_spread``.
    """
    spreads: list[float | None] = []
    worst: tuple[float, int] | None = None
    for seq, lat in segments:
        if len(lat) < REPLAY_CHUNKS * max(1, min_per_chunk):
            spreads.append(None)
            continue
        chunks = np.array_split(np.asarray(lat, dtype=np.float64), REPLAY_CHUNKS)
        s = relative_mad([float(np.median(c)) for c in chunks])
        spreads.append(round(s, 4))
        if worst is None or s > worst[0]:
            worst = (s, seq)
    out: dict[str, Any] = {"latency_spread_segments": spreads}
    if worst is None:
        return out | {"latency_spread": None}, None  # too short to tell
    out["latency_spread"] = round(worst[0], 4)
    if worst[0] <= max_spread:
        return out, None
    why = (
        f"latency spread {worst[0]:.3f} > {max_spread:g} in segment {worst[1]} (relative MAD "
        f"of its stream's {REPLAY_CHUNKS} consecutive chunk medians: the machine changed "
        "during the segment)"
    )
    return out, why


def cpu_share(
    segments: list[tuple[float, float]], min_s: float
) -> tuple[dict[str, Any], str | None]:
    """The replay's CPU share check, a trial's rule (``harness.trials.starved_share``)
    over its segments: ``(extra_json entries, the unstable reason or None)``. Under
    ``MIN_CPU_SHARE`` the stream's latencies and deadline misses were another process's
    doing too. Only segments that streamed for at least ``min_s`` (a trial's minimum
    window, ``[measure] min_duration_s``) are judged: a fresh runner's thread pool wakes
    up over the first milliseconds, so a 20 ms stream reads low on an idle machine (the
    quickstart's did)."""
    if not segments:
        return {}, None
    out: dict[str, Any] = {"cpu_share_segments": [round(x, 3) for x, _ in segments]}
    judged = [x for x, wall_s in segments if wall_s >= min_s]
    if not judged:
        return out | {"cpu_starved": None}, None  # too short to tell
    got, why = starved_share(
        judged,
        f"median of {len(judged)} segments",
        "the latencies and deadline misses are not the model's alone",
    )
    out |= {"cpu_share_per_thread": round(got, 3), "cpu_starved": why is not None}
    return out, why


def replay_verdict(
    latencies: Sequence[tuple[int, Sequence[float]]],
    shares: list[tuple[float, float]],
    measure: Any,
) -> tuple[dict[str, Any], str | None]:
    """Both checks for one replay cell: ``(extra_json entries, unstable_reason or None)``;
    the reasons join with "; " as a static cell's do, each also an ``unstable: …``
    warning. ``measure`` is the profile's ``[measure]`` settings."""
    spread, why_spread = chunk_spread(latencies, measure.max_trial_spread, measure.min_count)
    share, why_share = cpu_share(shares, measure.min_duration_s)
    reasons = [w for w in (why_spread, why_share) if w]
    out = spread | share
    if reasons:
        out["warnings"] = [f"unstable: {w}" for w in reasons]
    return out, "; ".join(reasons) or None
