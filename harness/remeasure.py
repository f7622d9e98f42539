"""Re-measure two runs' variants now, interleaved: the harness side of ``check --interleave``.

Two runs made at different times differ by whatever the machine did in between (another
tenant, a clock governor, a warm or cold room); no threshold on their stored figures can
tell that from a regression. When both runs' artefacts are on disk, the reliable answer
is to measure both sides again, alternately, on this device now: each matched cell's
baseline and candidate variants become subjects of one interleaved group
(harness.trials), so drift hits both alike and trial i of each side ran in the same
round (a paired design). What is compared is the *artefacts* (checkpoints, the variants
derived from them), measured by this checkout's code: a code change that is not in
the artefacts is out of reach of this mode.

Variants are re-derived from the run's own checkpoint (``OUT/checkpoints/<hash>``; zero-
shot pruning is deterministic for a seed; '+ft' baselines are re-fine-tuned, seeded).
A missing checkpoint is a one-line ``HarnessError`` (CLI exit 2); nothing is trained.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness import registry
from harness.artifacts import Artifacts
from harness.cellgroup import plan_groups
from harness.cells import Cell
from harness.power import static_mode
from harness.profile_schema import (
    EvalSettings,
    FinetuneSettings,
    Grid,
    MeasureSettings,
    Profile,
    TrainSettings,
)
from harness.store import STORE_NAME
from harness.trials import CellMeasurement, Subject, measure_interleaved
from sentryfuse.errors import HarnessError

MAX_PAIRS_PER_GROUP = 6  # 12 runners resident at once, like a suite group


@dataclass(frozen=True)
class RemeasuredCell:
    """One matched cell, both sides re-measured in the same rounds (trial i = round i)."""

    baseline_key: str
    candidate_key: str
    label: str
    baseline_p50_ms: tuple[float, ...]  # trial medians, in round order
    candidate_p50_ms: tuple[float, ...]
    baseline_energy_mj: tuple[float | None, ...]  # per inference, per trial
    candidate_energy_mj: tuple[float | None, ...]
    error: str | None = None  # a side that could not be measured; the tuples are then empty


def remeasure_interleaved(
    baseline: str | Path,
    candidate: str | Path,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    trials: int | None = None,
    target_factory: Callable[[str], Any] | None = None,
    candidate_target_factory: Callable[[str], Any] | None = None,
    seed: int = 0,
) -> list[RemeasuredCell]:
    """Re-measure the matched static cells of two run directories, interleaved.

    ``pairs`` = (baseline cell_key, candidate cell_key); default: the static 'ok' cells
    whose ``definition_json`` is equal in both stores. ``trials`` overrides the cells'
    ``[measure] trials``. ``candidate_target_factory`` (default: ``target_factory``)
    exports the candidate side, e.g. a target whose runner carries a planted slowdown
    for the gate's own benchmark. Returns one ``RemeasuredCell`` per pair, in order.
    """
    b_dir, c_dir = _run_dir(baseline), _run_dir(candidate)
    b_defs, c_defs = _static_cells(b_dir), _static_cells(c_dir)
    if pairs is None:
        by_def = {json.dumps(d, sort_keys=True): k for k, d in c_defs.items()}
        pairs = [
            (k, by_def[json.dumps(d, sort_keys=True)])
            for k, d in b_defs.items()
            if json.dumps(d, sort_keys=True) in by_def
        ]
    if not pairs:
        raise HarnessError(
            f"no matching static cells in {b_dir} and {c_dir}; nothing to re-measure"
        )
    for bk, ck in pairs:
        if bk not in b_defs or ck not in c_defs:
            raise HarnessError(f"cell {bk[:12]}/{ck[:12]} is not an ok static cell of both runs")
    b_cells = {k: _cell(d) for k, d in b_defs.items()}
    c_cells = {k: _cell(d) for k, d in c_defs.items()}
    sides = {"baseline": _Side(b_dir), "candidate": _Side(c_dir)}
    for bk, ck in pairs:  # every artefact first: a missing one fails before any timing
        sides["baseline"].check(b_cells[bk])
        sides["candidate"].check(c_cells[ck])
    factory = target_factory or registry.default_target_factory
    c_factory = candidate_target_factory or factory
    targets: dict[tuple[str, str], Any] = {}
    by_key = dict(pairs)
    out: dict[str, RemeasuredCell] = {}
    with tempfile.TemporaryDirectory(prefix="sentryfuse-remeasure-") as tmp:
        for group in plan_groups([b_cells[bk] for bk, _ in pairs], MAX_PAIRS_PER_GROUP):
            name = group[0].target
            pair = {
                "baseline": targets.setdefault(("b", name), factory(name)),
                "candidate": targets.setdefault(("c", name), c_factory(name)),
            }
            if None in pair.values():
                raise HarnessError(f"target '{name}' is not implemented here")
            results = _measure_group(group, by_key, c_cells, sides, pair, Path(tmp), trials, seed)
            out.update({r.baseline_key: r for r in results})
    return [out[bk] for bk, _ in pairs]


def _measure_group(group, by_key, c_cells, sides, pair_targets, tmp, trials, seed):
    from harness.cellrun import deployed_model, fed_modalities, prebuilt_batches
    from harness.dropout import parse_condition

    prepared: list[tuple[str, str, Subject]] = []  # (baseline cell key, side, subject)
    errors: dict[str, str] = {}
    runners = []
    for cell in group:
        pair = [cell, c_cells[by_key[cell.key]]]
        for side, c in zip(("baseline", "candidate"), pair, strict=True):
            target = pair_targets[side]
            try:
                art = sides[side].artifacts(c)
                model, _, _ = deployed_model(c, art, target)
                model.eval()
                ds = art.dataset(c.dataset, c.seed)
                cond = parse_condition(c.condition)
                names = fed_modalities(model, cond.static_present(ds.modality_names))
                batches = prebuilt_batches(ds.test, names, art.profile.measure.batch_size)
                wd = tmp / side / c.key[:16]
                wd.mkdir(parents=True, exist_ok=True)
                runner = target.export(model, batches[0], c.runtime, wd)
                runners.append(runner)
                subject = Subject(
                    runner, batches, runner.synchronize, target.energy_sensor(),
                    cpu_threads=getattr(target, "cpu_threads", None),
                )  # fmt: skip
                prepared.append((cell.key, side, subject))
            except Exception as exc:  # this pair cannot be compared; the others can
                errors[cell.key] = f"{side}: {type(exc).__name__}: {' '.join(str(exc).split())}"
    keep = [p for p in prepared if p[0] not in errors]
    settings = sides["baseline"].artifacts(group[0]).profile.measure
    if trials is not None:
        settings = MeasureSettings(**{**_asdict(settings), "trials": trials})
    measured: list[CellMeasurement | Exception] = []
    try:
        if keep:
            with static_mode(pair_targets["baseline"].power_modes(), group[0].power_mode):
                measured = measure_interleaved(
                    [p[2] for p in keep], settings, seed=seed ^ int(group[0].key[:8], 16)
                )
    finally:
        for r in runners:
            r.close()
    got: dict[tuple[str, str], CellMeasurement] = {}
    for (key, side, _), m in zip(keep, measured, strict=True):
        if isinstance(m, Exception):
            errors.setdefault(key, f"{side}: {type(m).__name__}: {m}")
        else:
            got[(key, side)] = m
    results = []
    for cell in group:
        label = cell.label()
        ck = by_key[cell.key]
        if cell.key in errors:
            results.append(RemeasuredCell(cell.key, ck, label, (), (), (), (), errors[cell.key]))
            continue
        b, c = got[(cell.key, "baseline")], got[(cell.key, "candidate")]
        results.append(
            RemeasuredCell(
                cell.key,
                ck,
                label,
                tuple(t.latency_ms_p50 for t in b.trials),
                tuple(t.latency_ms_p50 for t in c.trials),
                tuple(t.energy_mj_per_inference for t in b.trials),
                tuple(t.energy_mj_per_inference for t in c.trials),
            )
        )
    return results


class _Side:
    """One run directory's artefacts, read-only: checkpoints are loaded, never trained."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._arts: dict[str, Artifacts] = {}

    def artifacts(self, cell: Cell) -> Artifacts:
        settings = dict(cell.settings)
        key = json.dumps(settings, sort_keys=True)
        if key not in self._arts:
            self._arts[key] = Artifacts(_profile_from(settings, self.run_dir), self.run_dir)
        return self._arts[key]

    def check(self, cell: Cell) -> None:
        art = self.artifacts(cell)
        ckpt = art.checkpoint_key(cell.dataset, cell.backbone, cell.attention, cell.seed)
        path = self.run_dir / "checkpoints" / ckpt / "config.json"
        if not path.is_file():
            raise HarnessError(
                f"{self.run_dir}: the checkpoint of {cell.label()} is not on disk "
                f"(expected {path.parent}); check without --interleave, or rerun that profile"
            )


def _run_dir(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file() and p.name == STORE_NAME:
        p = p.parent
    if not (p / STORE_NAME).is_file():
        raise HarnessError(f"{p}: no {STORE_NAME} here; pass a run directory of `sentryfuse run`")
    return p


def _static_cells(run_dir: Path) -> dict[str, dict[str, Any]]:
    uri = f"file:{run_dir / STORE_NAME}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
        try:
            rows = db.execute(
                "SELECT cell_key, definition_json FROM cells WHERE status='ok' AND kind='static'"
            ).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise HarnessError(
            f"{run_dir / STORE_NAME}: not a readable results store ({exc})"
        ) from None
    return {k: json.loads(d) for k, d in rows}


def _cell(d: dict[str, Any]) -> Cell:
    names = {f.name for f in fields(Cell)} - {"settings"}
    return Cell(**{k: d[k] for k in names}, settings=tuple(sorted(d["settings"].items())))


def _profile_from(settings: dict[str, Any], run_dir: Path) -> Profile:
    """The parts of a profile that derive a cell's variant, from its stored definition."""
    m = dict(settings["measure"])
    m["percentiles"] = tuple(m.get("percentiles", MeasureSettings().percentiles))
    known = {f.name for f in fields(MeasureSettings)}
    empty = Grid((), (), (), (), (), (), (), (), (), ())
    return Profile(
        name="remeasure",
        description="",
        source=str(run_dir),
        grid=empty,
        measure=MeasureSettings(**{k: v for k, v in m.items() if k in known}),
        train=TrainSettings(**settings["train"]),
        eval=EvalSettings(**settings["eval"]),
        finetune=FinetuneSettings(**settings.get("finetune", {})),
    )


def _asdict(s: MeasureSettings) -> dict[str, Any]:
    return {f.name: getattr(s, f.name) for f in fields(s)}
