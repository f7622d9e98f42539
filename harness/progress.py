"""Feedback while a suite runs: a line per cell with an ETA (a bar on a terminal).

The ETA is *learned*, not assumed. Each planned cell has a prior cost in two parts:
training (only for the first cell of a checkpoint that is not on disk yet), in units of
epochs × training samples, and the cell's own work (prune, evaluate, export, measure,
fine-tune, replay) in prior seconds. As cells finish, the measured training seconds per
unit and the measured ratio of actual to prior cell seconds (per kind of cell: static,
fine-tuned, replay) replace the priors, so after the first cells the ETA follows this
machine and this profile instead of a fixed time per epoch. The priors are rough 2-core
CPU figures (tiny/small models on HAPT-sized inputs); they only matter before the first
cell finishes and for ``run --dry-run``.

A caller (the suite) uses three calls: ``Progress.start(plan)``, ``.cell_done(label,
status, elapsed_s, train_s=...)`` and ``.close()``; ``.write(text)`` prints a line
without breaking the bar.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, TextIO

from harness.cells import Cell
from harness.profile_schema import Profile

# Priors, measured once on a shared 2-core CPU (tiny/small early fusion, HAPT and synthetic).
_TRAIN_S_PER_SAMPLE_EPOCH = {"tiny": 0.0008, "small": 0.006}
_SCORER_S_PER_STEP = {"tiny": 0.04, "small": 0.2}
_SCORER_DEFAULT_STEPS = 60
_PRUNE_S, _EVAL_S, _EXPORT_S, _FT_S_PER_STEP = 0.5, 1.0, 0.5, 0.05
_ASSUMED_LATENCY_S = 0.002


@dataclass(frozen=True)
class PlanItem:
    """One cell to run: its label, its cost class and its prior costs."""

    label: str
    cost_class: str  # 'static' | 'finetune' | 'replay': cells whose costs scale together
    train_units: float  # epochs × training samples if this cell trains a checkpoint, else 0
    prior_cell_s: float  # prior seconds of the cell's own work (training excluded)
    prior_train_s: float  # prior seconds of its training (0 when it trains nothing)


def _cost_class(cell: Cell) -> str:
    return "replay" if cell.kind == "replay" else ("finetune" if cell.finetuned else "static")


def prior_cell_seconds(profile: Profile, cell: Cell) -> float:
    """Prior seconds of one cell's own work (its checkpoint's training excluded)."""
    m = profile.measure
    total = _EVAL_S + _EXPORT_S + (0.0 if cell.method == "dense" else _PRUNE_S)
    if cell.finetuned:
        total += profile.finetune.steps * _FT_S_PER_STEP
    r = profile.replay
    if cell.kind == "replay" and r is not None:
        n = r.duration_s * r.rate_hz
        total += len(r.events) * (_EXPORT_S + _PRUNE_S) + n * _ASSUMED_LATENCY_S
        if cell.finetuned:
            total += len(r.events) * profile.finetune.steps * _FT_S_PER_STEP
    else:
        window_s = max(m.min_duration_s, m.min_count * _ASSUMED_LATENCY_S)
        total += m.warmup_s + m.trials * window_s  # interleaved trials: one window each
    return total


def prior_train_seconds(profile: Profile, n_train: int) -> float:
    t = profile.train
    steps = _SCORER_DEFAULT_STEPS if t.scorer_final_steps is None else t.scorer_final_steps
    per_unit = _TRAIN_S_PER_SAMPLE_EPOCH.get(t.size, _TRAIN_S_PER_SAMPLE_EPOCH["small"])
    scorer = _SCORER_S_PER_STEP.get(t.size, _SCORER_S_PER_STEP["small"])
    return t.epochs * n_train * per_unit + steps * scorer


def make_plan(
    profile: Profile,
    cells: list[Cell],
    n_train: dict[str, int],
    trained: Collection[tuple[str, str, str, int]] = (),
) -> list[PlanItem]:
    """Plan the cells in run order; the first cell of each untrained checkpoint trains it.

    ``n_train`` maps dataset -> training samples; ``trained`` holds the (dataset,
    backbone, attention, seed) checkpoints already on disk.
    """
    seen = set(trained)
    plan = []
    for c in cells:
        ckpt = (c.dataset, c.backbone, c.attention, c.seed)
        units = 0.0
        train_s = 0.0
        if ckpt not in seen and c.kind != "model":  # a user's ONNX file trains nothing
            seen.add(ckpt)
            n = n_train.get(c.dataset, profile.eval.max_train or 2000)
            units = float(profile.train.epochs * n)
            train_s = prior_train_seconds(profile, n)
        plan.append(
            PlanItem(c.label(), _cost_class(c), units, prior_cell_seconds(profile, c), train_s)
        )
    return plan


def plan_seconds(plan: list[PlanItem]) -> float:
    """The prior wall time of a plan (``run --dry-run``)."""
    return sum(p.prior_cell_s + p.prior_train_s for p in plan)


def _clock(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class Progress:
    """Per-cell feedback with a learned ETA; a tqdm bar on a terminal, lines elsewhere."""

    def __init__(self, stream: TextIO | None = None, *, bar: bool | None = None,
                 quiet: bool = False, clock: Any = time.monotonic) -> None:  # fmt: skip
        """``bar``: None a bar on a terminal and lines elsewhere; ``quiet``: print nothing
        (an in-process caller that wants its stderr to itself; the ETA is still kept)."""
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.use_bar = isatty if bar is None else bar
        self._clock = clock
        self._plan: list[PlanItem] = []
        self._done = 0
        self._train_units = 0.0
        self._train_s = 0.0
        self._ratios: dict[str, list[float]] = {}
        self._bar: Any = None
        self._t0 = 0.0

    @classmethod
    def start(cls, plan: list[PlanItem], **kwargs: Any) -> Progress:
        """A started progress display for ``plan``."""
        self = cls(**kwargs)
        self._plan = list(plan)
        self._t0 = self._clock()
        if self.use_bar and plan and not self.quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=len(plan), desc="cells", unit="cell", file=self.stream,
                             bar_format="{desc}: {n}/{total} |{bar}| {elapsed}{postfix}")  # fmt: skip
            self._bar.set_postfix_str(f"ETA {_clock(self.eta_s())}")
        elif plan:
            self._line(f"{len(plan)} cells to run, first estimate {_clock(self.eta_s())} (rough)")
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

    def _ratio(self, cost_class: str) -> float:
        """Median measured ÷ prior cell seconds for this class (all classes while it has
        none). A median, because a suite's first cell also pays one-time costs (imports,
        the first export) that later cells do not."""
        ratios = self._ratios.get(cost_class) or [r for rs in self._ratios.values() for r in rs]
        return float(statistics.median(ratios)) if ratios else 1.0

    def eta_s(self) -> float:
        """Seconds the remaining cells should take, from what the finished ones took."""
        rest = self._plan[self._done :]
        per_unit = self._train_s / self._train_units if self._train_units > 0 else None
        total = 0.0
        for p in rest:
            total += p.prior_cell_s * self._ratio(p.cost_class)
            if p.train_units:
                total += p.train_units * per_unit if per_unit is not None else p.prior_train_s
        return total

    def cell_done(self, label: str, status: str, elapsed_s: float, *, train_s: float = 0.0) -> None:
        """Record a finished cell (``train_s``: the part of ``elapsed_s`` spent training)."""
        item = self._plan[self._done] if self._done < len(self._plan) else None
        self._done += 1
        if item is not None:
            if item.train_units and train_s > 0:
                self._train_units += item.train_units
                self._train_s += train_s
            own = max(0.0, elapsed_s - train_s)
            if item.prior_cell_s > 0:
                self._ratios.setdefault(item.cost_class, []).append(own / item.prior_cell_s)
        eta = self.eta_s()
        if self._bar is not None:
            self._bar.set_postfix_str(f"ETA {_clock(eta)}  {label[:50]}", refresh=False)
            self._bar.update(1)
            return
        total = len(self._plan)
        self._line(
            f"[{self._done}/{total}] {status:6s} {label}  {elapsed_s:.1f} s  "
            f"elapsed {_clock(self._clock() - self._t0)}  ETA {_clock(eta)}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def plan_for(profile: Profile, cells: list[Cell], art: Any) -> list[PlanItem]:
    """The plan of ``cells`` with dataset sizes and trained checkpoints from ``art``
    (a ``harness.artifacts.Artifacts``)."""
    seed = profile.grid.seeds[0]
    trains = [c for c in cells if c.kind != "model"]  # a user's ONNX file has no dataset
    n_train = {d: len(art.dataset(d, seed).train) for d in dict.fromkeys(c.dataset for c in trains)}
    trained = {
        (c.dataset, c.backbone, c.attention, c.seed)
        for c in trains
        if art.is_trained(c.dataset, c.backbone, c.attention, c.seed)
    }
    return make_plan(profile, cells, n_train, trained)
