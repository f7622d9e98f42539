"""Orchestration: profile -> preflight -> cells -> results store -> report.

Everything that can be wrong with the input (profile, unavailable target, unknown
sensor in a condition, an existing store without ``--resume``) is found in the
preflight, before the store is opened, so bad input writes nothing. Cells then run in
groups (harness.cellgroup: prepared together, measured in interleaved trials), and each
cell of a group is committed in its own transaction. A failing cell is stored as
'failed' with a one-line error (its traceback goes to ``OUT/errors/``) and the suite
goes on; the caller turns "some failed" into exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import registry
from harness.artifacts import Artifacts
from harness.cellgroup import plan_groups, run_cell_group
from harness.cells import Cell, expand
from harness.dropout import parse_condition
from harness.eta import Timing
from harness.profile_schema import Profile
from harness.progress import Progress, plan_for, priors_for
from harness.store import STORE_NAME, Store
from harness.usermodel import check_resumable
from sentryfuse.errors import HarnessError, ProfileError, SentryFuseError, TargetError


@dataclass(frozen=True)
class SuiteSummary:
    total: int
    skipped: int  # finished in an earlier run
    ok: int
    failed: int
    store_path: Path
    failures: tuple[tuple[str, str], ...]  # (cell label, error)


def preflight(
    profile: Profile, out_dir: Path, *, resume: bool, target_factory: Callable[[str], Any]
) -> tuple[list[Cell], dict[str, Any], Artifacts]:
    """Check everything the profile needs; nothing is written here."""
    cells = expand(profile)
    store_path = out_dir / STORE_NAME
    if store_path.exists() and not resume:
        raise HarnessError(
            f"{store_path} already holds results; pass --resume to continue it "
            "(finished cells are skipped) or choose another --out"
        )
    targets: dict[str, Any] = {}
    for name in sorted({c.target for c in cells}):
        target = target_factory(name)
        if target is None:
            raise TargetError(f"target '{name}' is not implemented yet in this checkout")
        avail = target.availability()
        if not avail.ok:
            raise TargetError(f"target '{name}' is not available here: {avail.reason}")
        targets[name] = target
    art = Artifacts(profile, out_dir, progress=sys.stderr.isatty())
    for dataset in profile.grid.datasets:
        ds = art.dataset(dataset, profile.grid.seeds[0])
        for cond in profile.grid.conditions_for(dataset):
            try:
                parse_condition(cond).check_modalities(ds.modality_names)
            except SentryFuseError as exc:
                raise ProfileError(f"{profile.source}: grid.conditions: {exc}") from None
    if profile.replay is not None:
        ds = art.dataset(profile.replay.dataset, profile.grid.seeds[0])
        for i, ev in enumerate(profile.replay.events):
            for m in ev.present or ():
                if m not in ds.modality_names:
                    raise ProfileError(
                        f"{profile.source}: replay.events[{i}].present: unknown "
                        f"sensor '{m}'; {ds.name} has {', '.join(ds.modality_names)}"
                    )
    return cells, targets, art


ENGINES_DIR = "engines"


def use_engine_cache(target: Any, root: Path) -> None:
    """Engines this device builds go to ``root`` (``OUT/engines``, or a fleet node's
    cache), keyed by their ONNX content and the device, so a second cell of the same
    variant and a ``--resume`` reuse them (``targets.engine_cache``). A target that
    already has a cache directory keeps it."""
    if target is not None and getattr(target, "engine_cache_dir", False) is None:
        target.engine_cache_dir = root


def run_suite(
    profile: Profile,
    out_dir: Path,
    *,
    resume: bool = False,
    target_factory: Callable[[str], Any] | None = None,
    progress: bool | None = None,
    select: Callable[[list[Cell]], list[Cell]] | None = None,
) -> SuiteSummary:
    """Run every unfinished cell of ``profile`` into ``OUT/results.sqlite``
    (``select``: only these cells, e.g. one ``--shard``; ``progress``: True a bar, None a
    bar on a terminal and a line per cell elsewhere, False nothing)."""
    factory = target_factory or registry.default_target_factory
    cells, targets, art = preflight(profile, out_dir, resume=resume, target_factory=factory)
    cells = select(cells) if select else cells
    for target in targets.values():
        use_engine_cache(target, out_dir / ENGINES_DIR)
    store_path = out_dir / STORE_NAME
    fingerprints = {name: t.fingerprint() for name, t in targets.items()}
    failures: list[tuple[str, str]] = []
    ok = 0
    with Store(store_path) as store:
        check_resumable(profile, store)  # before anything is written
        run_id = store.begin_run(
            profile.name, profile.profile_hash(), profile.to_json(), fingerprints
        )
        done = store.finished_keys()
        todo = [c for c in cells if c.key not in done]
        groups = plan_groups(todo)
        plan = plan_for(profile, groups, art)
        bar = Progress.start(plan, priors=priors_for(profile), trained=art.earlier_trainings(cells),
                             bar=None if progress is None else True, quiet=progress is False)  # fmt: skip
        for group, work in zip(groups, plan, strict=True):
            if work.train_units:
                _train_first(group[0], art, work.train_units, bar)
            timing = Timing()
            results = run_cell_group(group, art, targets[group[0].target], out_dir, timing=timing)
            for cell, result in zip(group, results, strict=True):
                store.commit_cell(run_id, cell.key, cell.kind, cell.definition, result)
                if result.status == "ok":
                    ok += 1
                else:
                    failures.append((cell.label(), result.error or ""))
                    bar.write(f"cell failed: {cell.label()}: {result.error}")
            bar.group_done(work, timing, [r.status for r in results])
        bar.close()
        store.end_run(run_id)
    return SuiteSummary(
        len(cells), len(cells) - len(todo), ok, len(failures), store_path, tuple(failures)
    )


def _train_first(cell: Cell, art: Artifacts, units: float, bar: Progress) -> None:
    """Train ``cell``'s checkpoint as a phase of its own, so the ETA learns the training
    rate before the group's cells are prepared. A failure is cached by ``art`` and
    fails the group's cells with its message; here it only skips the progress line."""
    trained0 = art.trained_s
    try:
        art.checkpoint(cell.dataset, cell.backbone, cell.attention, cell.seed)
    except Exception:  # reported by each cell of the group, with its traceback
        return
    ckpt = f"{cell.dataset}/{cell.backbone}/{cell.attention} s{cell.seed}"
    bar.trained(ckpt, units, art.trained_s - trained0)


def write_report(store_path: Path, out_dir: Path) -> str:
    """Write the run's report next to its store; say where it went."""
    from reports.write import write_report as write

    path = write(store_path, out_dir)
    return f"report written to {path}"


def write_report_or_warn(store_path: Path, report_dir: Path) -> None:
    """Write the report after a run; a failure is one stderr line, not a lost run:
    the results are safe in the store and ``sentryfuse report`` can be rerun."""
    try:
        print(write_report(store_path, report_dir))
    except Exception as exc:
        print(
            f"report failed: {type(exc).__name__}: {exc}; rerun `sentryfuse report`",
            file=sys.stderr,
        )
