"""Feedback while a suite runs: a line per cell with an ETA (a bar on a terminal).

The run is planned as phases (``harness.eta.Work``): a checkpoint's training, then each
group of cells (harness.cellgroup) that is prepared and measured together, or a replay.
The ETA is the remaining phases priced by ``harness.eta.EtaModel`` from what the
finished phases took, and it is updated when a phase ends: after training (one line)
and after each group (one line per cell, all with the same ETA, since a group's cells
finish together). Before anything is measured the estimate is the priors', which is
rough and says so (the first line, and ``run --dry-run``).

The suite calls ``Progress.start(plan, priors=...)``, ``.trained(label, units, s)``,
``.group_done(work, timing, statuses)`` and ``.close()``; ``.write(text)`` prints a
line without breaking the bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Collection, Sequence
from typing import Any, TextIO

from harness.cells import Cell
from harness.eta import EtaModel, Timing, Work, prior_rates
from harness.profile_schema import Profile

_ASSUMED_QUERY_S = 0.002  # the prior trial window's query time (before one is measured)
_SCORER_S_PER_STEP = {"tiny": 0.04, "small": 0.2}
_SCORER_DEFAULT_STEPS = 60


def priors_for(profile: Profile) -> dict[str, float]:
    """Prior rates for this profile: its model size, its trial window, its scorer steps."""
    m, t = profile.measure, profile.train
    window_s = max(m.min_duration_s, m.min_count * _ASSUMED_QUERY_S)
    rates = prior_rates(size=t.size, window_s=window_s + m.warmup_s / max(1, m.trials))
    steps = _SCORER_DEFAULT_STEPS if t.scorer_final_steps is None else t.scorer_final_steps
    scorer_s = steps * _SCORER_S_PER_STEP.get(t.size, _SCORER_S_PER_STEP["small"])
    rates["train_unit"] += scorer_s / max(1, t.epochs * (profile.eval.max_train or 2000))
    return rates


def work_for(profile: Profile, group: Sequence[Cell], train_units: float = 0.0) -> Work:
    """The phase ``group`` is, as the estimator prices it."""
    first = group[0]
    labels = tuple(c.label() for c in group)
    n_ft = sum(c.finetuned for c in group)
    steps = profile.finetune.steps
    r = profile.replay
    if first.kind == "replay" and r is not None:
        from harness.latency_model import BUDGET_SPARSITIES, CALLS_PER_POINT, WARMUP_CALLS
        from harness.power import timeline_segments

        segments = timeline_segments(r.events, r.duration_s, r.rate_hz)
        models = {(s.power_mode, s.present) for s in segments if r.budget_for(s.power_mode)}
        return Work("replay", labels, train_units, n_ft, steps, 0, len(segments),
                    sum(s.n_samples for s in segments), len(models) * len(BUDGET_SPARSITIES),
                    CALLS_PER_POINT + WARMUP_CALLS)  # fmt: skip
    kind = "model" if first.kind == "model" else "static"
    return Work(kind, labels, train_units, n_ft, steps, profile.measure.trials)


def make_plan(
    profile: Profile,
    groups: Sequence[Sequence[Cell]],
    n_train: dict[str, int],
    trained: Collection[tuple[str, str, str, int]] = (),
) -> list[Work]:
    """The phases of ``groups`` in run order; the first group of each checkpoint that is
    not on disk yet trains it. ``n_train``: dataset -> training samples; ``trained``: the
    (dataset, backbone, attention, seed) checkpoints already on disk."""
    seen = set(trained)
    plan = []
    for group in groups:
        c = group[0]
        ckpt = (c.dataset, c.backbone, c.attention, c.seed)
        units = 0.0
        if ckpt not in seen and c.kind != "model":  # a user's ONNX file trains nothing
            seen.add(ckpt)
            units = float(
                profile.train.epochs * n_train.get(c.dataset, profile.eval.max_train or 2000)
            )
        plan.append(work_for(profile, group, units))
    return plan


def plan_seconds(
    profile: Profile, plan: list[Work], trained: Sequence[tuple[float, float]] = ()
) -> float:
    """The prior wall time of a plan (``run --dry-run``): rough, except training when
    ``trained`` (``Artifacts.earlier_trainings``) says what it took here before."""
    return EtaModel(priors_for(profile)).trained_before(trained).remaining_s(plan)


def _clock(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class Progress:
    """Per-cell feedback with a measured ETA; a tqdm bar on a terminal, lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None,
                 quiet: bool = False, clock: Any = time.monotonic) -> None:  # fmt: skip
        """``bar``: None a bar on a terminal and lines elsewhere; ``quiet``: print nothing
        (an in-process caller that wants its stderr to itself; the ETA is still kept)."""
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.use_bar = isatty if bar is None else bar
        self._clock = clock
        self.model = EtaModel()
        self._plan: list[Work] = []
        self._next = 0  # the next phase's index in the plan
        self._next_trained = False  # the next phase's training is done already
        self._cells_done = 0
        self._n_cells = 0
        self._bar: Any = None
        self._t0 = 0.0

    @classmethod
    def start(
        cls,
        plan: list[Work],
        *,
        priors: dict[str, float] | None = None,
        trained: Sequence[tuple[float, float]] = (),
        **kwargs: Any,
    ) -> Progress:
        """A started progress display for ``plan`` (``priors``: ``priors_for(profile)``;
        ``trained``: ``(sample-epochs, seconds)`` of checkpoints a resumed run already
        trained here, ``Artifacts.earlier_trainings``)."""
        self = cls(**kwargs)
        self.model = EtaModel(priors).trained_before(trained)
        self._plan = list(plan)
        self._n_cells = sum(w.n_cells for w in plan)
        self._t0 = self._clock()
        if self.use_bar and plan and not self.quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=self._n_cells, desc="cells", unit="cell", file=self.stream,
                             bar_format="{desc}: {n}/{total} |{bar}| {elapsed}{postfix}")  # fmt: skip
            self._bar.set_postfix_str(f"ETA {_clock(self.eta_s())} (rough)")
        elif plan:
            basis = (
                f"training priced from the {len(trained)} checkpoint(s) trained here before, "
                "the rest rough"
                if trained
                else "rough: nothing measured yet"
            )
            self._line(
                f"{self._n_cells} cells to run in {len(plan)} groups, first estimate "
                f"{_clock(self.eta_s())} ({basis})"
            )
        return self

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def write(self, text: str) -> None:
        """Print a line (above the bar on a terminal), even when quiet: it is news."""
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def eta_s(self) -> float:
        """Seconds the phases not finished yet should take, priced from measured time."""
        rest = self._plan[self._next :]
        total = self.model.remaining_s(rest)
        if rest and self._next_trained:  # its training is behind us
            total -= rest[0].train_units * self.model.rate("train_unit")
        return max(0.0, total)

    def _elapsed(self) -> str:
        return _clock(self._clock() - self._t0)

    def trained(self, label: str, units: float, seconds: float) -> None:
        """The next group's checkpoint (``units`` sample-epochs) took ``seconds`` to train."""
        self.model.trained(units, seconds)
        self._next_trained = True
        if self._bar is not None:
            self._bar.set_postfix_str(f"ETA {_clock(self.eta_s())}  trained", refresh=True)
            return
        self._line(
            f"trained {label}  {seconds:.1f} s  elapsed {self._elapsed()}  ETA {_clock(self.eta_s())}"
        )

    def group_done(self, work: Work, timing: Timing, statuses: Sequence[str]) -> None:
        """Learn from a finished group, then one line per cell (all with the new ETA)."""
        if self._next_trained:  # the suite reported the training already
            timing = Timing(**{**vars(timing), "train_s": 0.0})
            work = Work(**{**vars(work), "train_units": 0.0})
        self.model.group_done(work, timing)
        self._next += 1
        self._next_trained = False
        eta = _clock(self.eta_s())
        for i, (label, status) in enumerate(zip(work.labels, statuses, strict=True)):
            self._cells_done += 1
            if self._bar is not None:
                self._bar.set_postfix_str(f"ETA {eta}  {label[:50]}", refresh=False)
                self._bar.update(1)
                continue
            self._line(
                f"[{self._cells_done}/{self._n_cells}] {status:6s} {label}  "
                f"{timing.cell_s(i):.1f} s  elapsed {self._elapsed()}  ETA {eta}"
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def plan_for(profile: Profile, groups: Sequence[Sequence[Cell]], art: Any) -> list[Work]:
    """The plan of ``groups`` with dataset sizes and trained checkpoints from ``art``
    (a ``harness.artifacts.Artifacts``)."""
    seed = profile.grid.seeds[0]
    trains = [c for g in groups for c in g if c.kind != "model"]  # an ONNX file: no dataset
    n_train = {d: len(art.dataset(d, seed).train) for d in dict.fromkeys(c.dataset for c in trains)}
    trained = {
        (c.dataset, c.backbone, c.attention, c.seed)
        for c in trains
        if art.is_trained(c.dataset, c.backbone, c.attention, c.seed)
    }
    return make_plan(profile, groups, n_train, trained)
