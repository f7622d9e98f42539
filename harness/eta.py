"""The run's ETA: the remaining work priced per phase from the time the finished phases took.

Cells do not finish one by one. A group (harness.cellgroup) prepares its cells one after
the other (derive the variant, evaluate, export), then measures all of them together in
interleaved trial rounds, so every cell of a group finishes at the same moment and a
"seconds per cell" is meaningless. Training, preparing, measuring and replaying also
cost different things, so one learned ratio cannot follow them all. The estimator
therefore prices each remaining phase in the units that phase is made of:

- training: epochs × training samples, at the measured seconds per sample-epoch;
- a static group: each cell's preparation (fine-tuning steps extra) plus
  ``rounds × cells`` trial windows, each at its measured seconds (warm-up included);
- a replay: its segments (a re-prune and an export each), its stream samples at the
  measured seconds per query, and a budget's latency-model points (an export and
  ``calls`` queries each); once a replay has run, later replays are scaled by the ratio
  of what it took to what this model said.

A rate not measured yet is its prior times the machine's measured speed (the median
measured/prior ratio of the rates that are known), so a loaded machine slows every
estimate, not only those of the phases it has already seen. The priors are rough 2-core
CPU figures; alone they give the ``run --dry-run`` estimate.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Work:
    """One phase of a run as the estimator prices it: a group of cells, or its training."""

    kind: str  # 'static' | 'model' (a user's ONNX files) | 'replay'
    labels: tuple[str, ...]  # its cells, in order
    train_units: float = 0.0  # epochs × samples trained before its first cell (0: none)
    n_finetuned: int = 0  # fine-tuned cells (static) or fine-tuned replays
    finetune_steps: int = 0  # steps per fine-tuned cell, or per replay segment
    trials: int = 0  # trial rounds (static/model groups)
    segments: int = 0  # replay: timeline segments
    samples: int = 0  # replay: stream samples
    budget_points: int = 0  # replay: latency-model points to measure (sparsities × models)
    budget_calls: int = 0  # replay: queries per latency-model point

    @property
    def n_cells(self) -> int:
        return len(self.labels)


@dataclass
class Timing:
    """What a finished group's phases took (filled in by ``run_cell_group``)."""

    wall_s: float = 0.0  # the whole group, its training included
    train_s: float = 0.0  # training done inside the group (0 when trained beforehand)
    prepare_s: list[float] = field(default_factory=list)  # per prepared cell
    finetuned: list[bool] = field(default_factory=list)  # per prepared cell
    export_s: list[float] = field(default_factory=list)  # per prepared cell (in prepare_s)
    measure_s: float = 0.0  # the interleaved rounds, warm-ups included
    cell_trials: int = 0  # windows measured (cells × rounds, failures excluded)
    queries: int = 0  # timed queries over those windows
    window_s: float = 0.0  # timed seconds of those windows

    def record_measured(self, measure_s: float, measured: Sequence[object]) -> None:
        """The rounds took ``measure_s``; ``measured``: each subject's ``CellMeasurement``
        (harness.trials) or the exception that stopped it."""
        self.measure_s += measure_s
        for m in measured:
            for t in getattr(m, "trials", ()):
                self.cell_trials += 1
                self.queries += t.n
                self.window_s += t.elapsed_s

    def cell_s(self, i: int) -> float:
        """Prepared cell ``i``'s own seconds: its preparation and its share of the rounds."""
        share = self.measure_s / len(self.prepare_s) if self.prepare_s else 0.0
        return (self.prepare_s[i] if i < len(self.prepare_s) else 0.0) + share


# Rough 2-core CPU figures (tiny/small early fusion on HAPT-sized inputs, ONNX Runtime).
PRIORS_S: dict[str, float] = {
    "train_unit": 0.0008,  # per sample-epoch, tiny model (small: see prior_rates)
    "prepare": 2.0,  # prune + evaluate + export one static cell
    "prepare_model": 0.5,  # load a user's ONNX file and build its runner
    "finetune_step": 0.05,
    "cell_trial": 0.15,  # one trial window and its share of warm-up
    "query": 0.002,  # one batch-1 query, timed
    "export": 0.5,
    "switch": 0.05,  # a replay segment's re-prune or model change (8-31 ms measured)
    "overhead": 0.05,  # per cell: a group beyond its phases (closing runners, collecting)
}


EARLIER_WEIGHT = 0.5  # each earlier phase's weight in a rate, against the latest one's 1


def prior_rates(*, size: str = "tiny", window_s: float | None = None) -> dict[str, float]:
    """The priors for a model size and a trial window length (``window_s`` + warm-up)."""
    rates = dict(PRIORS_S)
    if size != "tiny":
        rates["train_unit"] = 0.006
        rates["prepare"] = 4.0
    if window_s is not None:
        rates["cell_trial"] = window_s
    return rates


class EtaModel:
    """Learns per-phase rates from ``Timing``s and prices ``Work`` with them."""

    def __init__(self, priors: dict[str, float] | None = None) -> None:
        self.priors = dict(priors or PRIORS_S)
        self._seconds: dict[str, float] = {}  # rate name -> measured seconds
        self._units: dict[str, float] = {}  # rate name -> units those seconds bought
        self._replay_ratios: list[float] = []

    def _learn(self, name: str, seconds: float, units: float) -> None:
        """Add a phase's measurement to a rate, the earlier ones discounted by
        ``EARLIER_WEIGHT``: on a shared machine the load moves during a run (the same
        20-step fine-tune took 0.9 s and 20 s in two runs ten minutes apart), so the latest
        phase says most about the next."""
        if units > 0 and seconds >= 0:
            w = EARLIER_WEIGHT
            self._seconds[name] = self._seconds.get(name, 0.0) * w + seconds
            self._units[name] = self._units.get(name, 0.0) * w + units

    def measured(self, name: str) -> float | None:
        """The measured seconds per unit of ``name``, or None before it is measured."""
        units = self._units.get(name, 0.0)
        return self._seconds[name] / units if units > 0 else None

    def speed(self) -> float:
        """How much slower than the priors this machine runs now (1.0 before any phase).

        Training is left out: under load torch's training threads slow down far more
        than one-query inference does (two quickstart runs at load 5-7 on 2 cores:
        training 19x and 39x its prior, a static cell 1.2x and 1.4x), so its ratio
        would throw every other estimate off."""
        ratios = [
            m / self.priors[k]
            for k in self._units
            if k != "train_unit" and (m := self.measured(k)) is not None and self.priors.get(k)
        ]
        return float(statistics.median(ratios)) if ratios else 1.0

    def rate(self, name: str) -> float:
        got = self.measured(name)
        return got if got is not None else self.priors[name] * self.speed()

    def trained(self, units: float, seconds: float) -> None:
        """A checkpoint of ``units`` sample-epochs took ``seconds`` to train."""
        self._learn("train_unit", seconds, units)

    def trained_before(self, trainings: Iterable[tuple[float, float]]) -> EtaModel:
        """Learn ``(sample-epochs, seconds)`` of checkpoints trained here earlier
        (``Artifacts.earlier_trainings``: a resumed OUT's); returns self."""
        for units, seconds in trainings:
            self.trained(units, seconds)
        return self

    def group_done(self, work: Work, timing: Timing) -> None:
        """Learn from a finished group (its training, if any, is in ``timing.train_s``)."""
        if timing.train_s > 0 and work.train_units > 0:
            self.trained(work.train_units, timing.train_s)
        if work.kind == "replay":
            predicted = self._replay_s(work)
            own = max(0.0, timing.wall_s - timing.train_s)
            if predicted > 0 and own > 0:
                self._replay_ratios.append(own / predicted)
            return
        prep = "prepare_model" if work.kind == "model" else "prepare"
        plain = [s for s, ft in zip(timing.prepare_s, timing.finetuned, strict=True) if not ft]
        tuned = [s for s, ft in zip(timing.prepare_s, timing.finetuned, strict=True) if ft]
        self._learn(prep, sum(plain), len(plain))
        if tuned and work.finetune_steps:
            base = self.rate(prep)
            extra_s = sum(s - base for s in tuned)
            self._learn("finetune_step", max(0.0, extra_s), len(tuned) * work.finetune_steps)
        self._learn("export", sum(timing.export_s), len(timing.export_s))
        self._learn("cell_trial", timing.measure_s, timing.cell_trials)
        self._learn("query", timing.window_s, timing.queries)
        rest = timing.wall_s - timing.train_s - sum(timing.prepare_s) - timing.measure_s
        self._learn("overhead", max(0.0, rest), work.n_cells)

    def _replay_s(self, work: Work) -> float:
        """A replay's seconds from the rates alone (no replay ratio applied)."""
        query, export = self.rate("query"), self.rate("export")
        total = work.segments * (export + self.rate("switch")) + work.samples * query
        total += work.budget_points * (export + self.rate("switch") + work.budget_calls * query)
        total += work.n_finetuned * work.segments * work.finetune_steps * self.rate("finetune_step")
        return total

    def work_s(self, work: Work) -> float:
        """Seconds ``work`` should take on this machine, from what has been measured."""
        total = work.train_units * self.rate("train_unit")
        if work.kind == "replay":
            ratio = statistics.median(self._replay_ratios) if self._replay_ratios else 1.0
            return total + self._replay_s(work) * ratio
        prep = "prepare_model" if work.kind == "model" else "prepare"
        total += work.n_cells * (self.rate(prep) + self.rate("overhead"))
        total += work.n_finetuned * work.finetune_steps * self.rate("finetune_step")
        return total + work.n_cells * work.trials * self.rate("cell_trial")

    def remaining_s(self, works: list[Work]) -> float:
        """Seconds the phases in ``works`` should take, one after the other."""
        return sum(self.work_s(w) for w in works)
