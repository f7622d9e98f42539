"""Trials: a cell measured as several independent windows, interleaved with its group.

A single long window gives thousands of queries but one draw of the machine's state
(clock, cache, a neighbour's load): two runs of it disagree far more than its own
samples suggest. So a cell is measured as ``trials`` windows (each meeting min duration
AND min count), and the cells that share a device configuration are measured in rounds:
round r runs one trial of every runner of the group, so slow drift (thermal, background
load) hits all of them alike instead of whichever cell happened to run then. The order
inside a round is a seeded shuffle rotated so each runner's average position is the
middle of the round (position bias cancels; Kalibera & Jones, "Rigorous benchmarking in
reasonable time"). Warm-up runs once per runner, right before its first trial.

Interleaving makes a comparison fair under load; it does not make a latency the model's
own. On a shared machine a runner can lose its cores for whole trials at a time, evenly
enough that the trials still agree. So the windows of a CPU runner
(``Subject.cpu_threads``) also read the process's CPU time: its compute threads are busy
(or spin) for the whole loop, so an uncontended window gets about one core per thread
(``benchmarks/cpu_share.py``: 1.00 with 1 thread, 1.90–1.93 with 2, ONNX Runtime and
torch), and a median share per thread below ``MIN_CPU_SHARE`` marks the cell unstable,
saying so. Per thread, because a 2-thread runner beside two busy processes still got
0.98 of a core, and ran 3.7× slower.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.intervals import Interval, median_interval, relative_mad
from harness.measure import (
    Batch,
    Clock,
    LatencyStats,
    Measurement,
    latency_stats,
    prepare_batches,
    timed_window,
    warm_up,
)
from harness.profile_schema import MeasureSettings

# Below this much CPU time per compute thread per second of window (median over the
# trials) a CPU runner's threads were kept off their cores a fifth of the time or more.
MIN_CPU_SHARE = 0.8


def starved_share(per_thread: Sequence[float], over: str, lost: str) -> tuple[float, str | None]:
    """The CPU share rule, for trials and for a replay's segments alike: the median CPU
    time per compute thread per wall second of ``per_thread``, and the one-line reason
    when it is under ``MIN_CPU_SHARE`` (None otherwise). ``over`` says what the median
    is over, ``lost`` what the starvation spoils."""
    got = float(np.median(per_thread))
    if got >= MIN_CPU_SHARE:
        return got, None
    return got, (
        f"CPU share {got:.2f} per thread < {MIN_CPU_SHARE:g} ({over}: another process "
        f"held the cores; {lost})"
    )


@dataclass(frozen=True)
class Subject:
    """One runner of a group and what its windows read (sensor, memory)."""

    runner: Callable[[Batch], object]
    batches: Sequence[Batch]
    synchronize: Callable[[], None] | None = None
    energy_sensor: object | None = None
    memory: Callable[[], object] | None = None
    memory_reset: Callable[[], None] | None = None
    # the threads it computes on in this process now (``Target.cpu_threads``); None: not on
    # the CPU (no CPU share check)
    cpu_threads: Callable[[], int | None] | None = None


@dataclass(frozen=True)
class Trial:
    """One timed window of one runner."""

    trial: int  # 0-based, within the cell
    round: int  # the interleaving round it ran in
    position: int  # its place inside that round (0 = first)
    window: Measurement
    cpu_threads: int | None = None  # the runner's compute threads then (None: not a CPU runner)

    @property
    def cpu_share_per_thread(self) -> float | None:
        share = self.window.cpu_share
        if share is None or not self.cpu_threads:
            return None
        return share / self.cpu_threads

    @property
    def latency_ms_p50(self) -> float:
        return float(np.median(self.window.latencies_ms))

    @property
    def latency_ms_p99(self) -> float:
        return float(np.percentile(self.window.latencies_ms, 99))

    @property
    def latency_ms_mean(self) -> float:
        return self.window.stats.mean_ms

    @property
    def n(self) -> int:
        return self.window.stats.n

    @property
    def elapsed_s(self) -> float:
        return self.window.elapsed_s

    @property
    def energy_mj_per_inference(self) -> float | None:
        return self.window.energy_mj_per_inference


@dataclass(frozen=True)
class CellMeasurement:
    """A cell's figures over its trials: medians of trial figures, spread, intervals."""

    trials: tuple[Trial, ...]
    latency_ms_p50: float  # median of trial medians
    latency_ms_p99: float  # median of trial p99s
    percentiles_ms: dict[float, float]  # median over trials of each profile percentile
    pooled: LatencyStats  # every sample of every trial (mean, CV, n)
    latency_ms_p50_ci: Interval | None  # median_interval of the trial medians
    latency_trial_spread: float  # relative_mad of the trial medians
    max_trial_spread: float
    unstable_reason: str | None  # None when stable
    energy_mj_per_inference: float | None  # median over trials
    energy_mj_ci: Interval | None
    warmup_n: int
    warmup_s: float
    peak_memory_mb: float | None  # the largest trial peak
    cuda_peak_mb: float | None
    cpu_share: float | None = None  # median over trials of CPU s ÷ wall s (None: not read)
    cpu_threads: int | None = None  # the compute threads the check divided by (None: no check)
    cpu_starved: bool = False  # the check failed: under MIN_CPU_SHARE per thread

    @property
    def stable(self) -> bool:
        return self.unstable_reason is None

    @property
    def latencies_ms(self) -> tuple[float, ...]:
        """Every sample, trial after trial (the store's global ``idx`` order)."""
        return tuple(x for t in self.trials for x in t.window.latencies_ms)

    @property
    def sample_trials(self) -> tuple[int, ...]:
        return tuple(t.trial for t in self.trials for _ in t.window.latencies_ms)

    @property
    def window(self) -> Measurement:
        """The first trial's window: energy source/sensor/model, which all trials share."""
        return self.trials[0].window


def round_orders(k: int, trials: int, seed: int) -> list[list[int]]:
    """Runner order for each round: one seeded shuffle, rotated by about k/trials a round.

    Every runner appears once per round; over the rounds each runner's positions are
    spread evenly across the round (a rotation step of k/trials), so none is always first
    (cold) or last (after the others heated the chip)."""
    base = list(range(k))
    random.Random(seed).shuffle(base)
    orders = []
    for r in range(trials):
        shift = (r * k) // trials if trials > 0 else 0
        orders.append(base[shift:] + base[:shift])
    return orders


def measure_interleaved(
    subjects: Sequence[Subject],
    settings: MeasureSettings,
    *,
    seed: int = 0,
    clock: Clock = time.perf_counter_ns,
) -> list[CellMeasurement | Exception]:
    """``settings.trials`` trials of every subject, interleaved in rounds.

    Each runner's batches go through ``runner.prepare`` before any window; only the
    call on prepared inputs is timed. A subject whose runner raises is dropped from the
    later rounds and its slot holds the exception; the others go on.
    """
    prepared: list[list[Batch] | Exception] = []
    for s in subjects:
        try:
            prepared.append(prepare_batches(s.runner, s.batches))
        except Exception as exc:
            prepared.append(exc)
    done: list[list[Trial]] = [[] for _ in subjects]
    warm: list[tuple[int, float] | None] = [None] * len(subjects)
    for r, order in enumerate(round_orders(len(subjects), settings.trials, seed)):
        for pos, i in enumerate(order):
            batches = prepared[i]
            if isinstance(batches, Exception):
                continue
            s = subjects[i]
            sync = s.synchronize or getattr(s.runner, "synchronize", None) or (lambda: None)
            try:
                if warm[i] is None:
                    warm[i] = warm_up(s.runner, batches, settings, sync, clock)
                threads = s.cpu_threads() if s.cpu_threads is not None else None
                w = timed_window(
                    s.runner,
                    batches,
                    settings,
                    sync=sync,
                    energy_sensor=s.energy_sensor,
                    memory=s.memory,
                    memory_reset=s.memory_reset,
                    clock=clock,
                    warmup=warm[i] if not done[i] else (0, 0.0),
                )
            except Exception as exc:
                prepared[i] = exc
                continue
            done[i].append(Trial(len(done[i]), r, pos, w, threads))
    out: list[CellMeasurement | Exception] = []
    for i in range(len(subjects)):
        p = prepared[i]
        out.append(p if isinstance(p, Exception) else summarize(done[i], settings))
    return out


def measure_trials(
    subject: Subject,
    settings: MeasureSettings,
    *,
    seed: int = 0,
    clock: Clock = time.perf_counter_ns,
) -> CellMeasurement:
    """``settings.trials`` windows of one runner (a group of one); raises what it raises."""
    (result,) = measure_interleaved([subject], settings, seed=seed, clock=clock)
    if isinstance(result, Exception):
        raise result
    return result


def summarize(trials: Sequence[Trial], settings: MeasureSettings) -> CellMeasurement:
    """The cell's figures from its trials (see CellMeasurement); trials that know their
    CPU threads are checked for their CPU share (module docstring)."""
    if not trials:
        raise ValueError("no trials to summarize")
    p50s = [t.latency_ms_p50 for t in trials]
    pct = {
        float(q): float(np.median([np.percentile(t.window.latencies_ms, q) for t in trials]))
        for q in settings.percentiles
    }
    pooled = latency_stats(
        [x for t in trials for x in t.window.latencies_ms], settings.percentiles, settings.cv_warn
    )
    spread = relative_mad(p50s)
    reasons = []
    if spread > settings.max_trial_spread:
        reasons.append(
            f"trial spread {spread:.3f} > {settings.max_trial_spread:g} "
            f"(relative MAD of {len(trials)} trial medians)"
        )
    shares = [t.window.cpu_share for t in trials]
    cpu_share = float(np.median(shares)) if all(x is not None for x in shares) else None
    per_thread = [t.cpu_share_per_thread for t in trials]
    threads = trials[0].cpu_threads
    starved = False
    known = [x for x in per_thread if x is not None]
    if len(known) == len(per_thread):
        _, why = starved_share(
            known,
            f"{threads} thread(s), median of {len(trials)} trials",
            "the latency is not the model's alone",
        )
        starved = why is not None
        reasons += [why] if why else []
    else:
        threads = None
    reason = "; ".join(reasons) or None
    energies = [t.energy_mj_per_inference for t in trials]
    known = [e for e in energies if e is not None]
    have_energy = len(known) == len(energies)
    peaks = [t.window.peak_memory_mb for t in trials if t.window.peak_memory_mb is not None]
    cuda = [t.window.cuda_peak_mb for t in trials if t.window.cuda_peak_mb is not None]
    first = trials[0].window
    return CellMeasurement(
        trials=tuple(trials),
        latency_ms_p50=float(np.median(p50s)),
        latency_ms_p99=float(np.median([t.latency_ms_p99 for t in trials])),
        percentiles_ms=pct,
        pooled=pooled,
        latency_ms_p50_ci=median_interval(p50s),
        latency_trial_spread=spread,
        max_trial_spread=settings.max_trial_spread,
        unstable_reason=reason,
        energy_mj_per_inference=float(np.median(known)) if have_energy else None,
        energy_mj_ci=median_interval(known) if have_energy else None,
        warmup_n=first.warmup_n,
        warmup_s=first.warmup_s,
        peak_memory_mb=max(peaks) if peaks else None,
        cuda_peak_mb=max(cuda) if cuda else None,
        cpu_share=cpu_share,
        cpu_threads=threads,
        cpu_starved=starved,
    )
