"""A grid profile's accuracy cells without the latency measurement, one JSON per checkpoint.

    python benchmarks/grid_accuracy.py profiles/paper-grid.toml \\
        benchmarks/paper_grid_ordinary.toml --out benchmarks/grid_accuracy \\
        --work runs/grid-accuracy --workers 2
    python benchmarks/paper_grid_summary.py benchmarks/grid_accuracy/paper-grid \\
        benchmarks/grid_accuracy/paper-grid-ordinary

Why: the paper grid's accuracy claims (SentryGate's margin, the paper's protocol, the full
model's cost) need three training seeds of two grids, 54 checkpoints; on a 2-core CPU the
full runs take about 13 hours, most of it exporting and timing 7,128 cells whose latency
no accuracy figure uses. Accuracy is measured on the torch model and does not depend on the
target, runtime or power mode (``harness.cellrun``), so this script trains each checkpoint
exactly as ``sentryfuse run`` would (``harness.artifacts``, the profile's settings) and
evaluates every zero-shot and dense cell with the harness's own ``cell_accuracy``: the same
numbers the store would hold, at a fraction of the time. The fine-tuned cells (``+ft``) are
left out (their accuracy needs the fine-tune, and no accuracy claim of issue 10 uses them).

Each finished checkpoint writes ``OUT/<profile name>/<dataset>-<backbone>-<attention>-s<seed>
.json`` atomically: small enough to commit, so a grid can be finished over several
sessions; a rerun skips finished files and reuses checkpoints left in ``--work``. Jobs run
one backbone at a time with all its seeds, the profiles' jobs interleaved, so a partial
run pairs across profiles and has intervals over seeds. Each worker is its own process
at one torch thread (``--threads``). ``--seeds 3,4`` trains more replicates of a finished
grid: the profiles' seeds replaced, every other setting kept, so the summary pairs them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GroupKey = tuple[str, str, str, int]  # dataset, backbone, attention, seed


def accuracy_cells(profile: Any) -> dict[GroupKey, list[Any]]:
    """The profile's static zero-shot and dense cells, one per accuracy (the first
    deployment of each), grouped by checkpoint in the harness's order."""
    from harness.cells import expand

    groups: dict[GroupKey, list[Any]] = {}
    seen: set[tuple] = set()
    for c in expand(profile):
        if c.kind != "static" or c.finetuned:
            continue
        acc_key = (c.dataset, c.backbone, c.attention, c.method, c.sparsity, c.condition, c.seed)
        if acc_key in seen:
            continue
        seen.add(acc_key)
        groups.setdefault((c.dataset, c.backbone, c.attention, c.seed), []).append(c)
    return groups


def job_file(out: Path, profile_name: str, g: GroupKey) -> Path:
    return out / profile_name / f"{g[0]}-{g[1]}-{g[2]}-s{g[3]}.json"


def load(path: str, seeds: tuple[int, ...] | None = None) -> Any:
    """The profile at ``path``, its grid's seeds replaced by ``seeds`` when given.

    Why: more replicates of a finished grid (seeds 3 and 4 beside a committed 0-2) without
    a copy of the profile that differs in one line; every other setting, and so the
    pairing in ``paper_grid_summary``, stays the profile's."""
    from dataclasses import replace

    from harness.profile import load_profile

    profile = load_profile(path)
    if seeds is None:
        return profile
    return replace(profile, grid=replace(profile.grid, seeds=tuple(seeds)))


def plan(
    profile_paths: list[str], out: Path, seeds: tuple[int, ...] | None = None
) -> list[tuple[str, GroupKey, Path]]:
    """(profile path, group, file) of every unfinished job, profiles interleaved: one
    backbone and attention at a time, seed by seed, so a run stopped part way has whole
    backbones with every seed (an interval over seeds) rather than all of them with too
    few."""
    jobs = []
    for pi, path in enumerate(profile_paths):
        profile = load(path, seeds)
        axes = profile.grid
        for g in accuracy_cells(profile):
            order = (axes.backbones.index(g[1]), axes.attentions.index(g[2]), g[3],
                     axes.datasets.index(g[0]), pi)  # fmt: skip
            jobs.append((order, path, g, job_file(out, profile.name, g)))
    jobs.sort(key=lambda j: j[0])
    return [(p, g, f) for _, p, g, f in jobs if not f.exists()]


def _commit() -> str | None:
    try:
        r = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None


def run_job(
    profile_path: str, g: GroupKey, out_file: str, work: str, threads: int,
    seeds: tuple[int, ...] | None = None,
) -> float:  # fmt: skip
    """Train (or reuse) one checkpoint, evaluate its cells, write its JSON; wall seconds."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run_job(profile_path, g, Path(out_file), Path(work), seeds)
    finally:
        torch.set_num_threads(before)


def _run_job(
    profile_path: str, g: GroupKey, dest: Path, work: Path, seeds: tuple[int, ...] | None
) -> float:
    import torch

    from harness.artifacts import Artifacts
    from harness.cellrun import cell_accuracy, deployed_model

    t0 = time.perf_counter()
    profile = load(profile_path, seeds)
    cells = accuracy_cells(profile)[g]
    art = Artifacts(profile, work / profile.name)
    art.checkpoint(*g)
    t1 = time.perf_counter()
    rows = []
    for c in cells:
        model, cols, extra = deployed_model(c, art, target=None)  # zero-shot: no target used
        acc_cols, acc_extra = cell_accuracy(c, art, model)
        rows.append(
            {
                "cell_key": c.key, "dataset": c.dataset, "backbone": c.backbone,
                "attention": c.attention, "method": c.method, "sparsity": c.sparsity,
                "condition": c.condition, "seed": c.seed, **acc_cols,
                "prune_ms": cols.get("prune_ms"), "extra": {**extra, **acc_extra},
            }
        )  # fmt: skip
    record = {
        "profile": profile.name, "group": list(g), "commit": _commit(),
        # what paper_grid_summary pairs two grids on (a cell's definition has it too)
        "settings": {"train": asdict(profile.train), "eval": asdict(profile.eval)},
        "threads": torch.get_num_threads(),
        "train_s": round(t1 - t0, 1), "eval_s": round(time.perf_counter() - t1, 1),
        "cells": rows,
    }  # fmt: skip
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=0) + "\n")
    os.replace(tmp, dest)
    return time.perf_counter() - t0


def load_records(folder: Path) -> list[dict[str, Any]]:
    """Every cell row of the JSONs in ``folder``, shaped like the store's ``cells`` rows
    that ``benchmarks/paper_grid_summary.py`` reads (status ok, kind static, no latency)."""
    rows = []
    for f in sorted(folder.glob("*.json")):
        record = json.loads(f.read_text())
        common = {
            "status": "ok", "kind": "static", "target": "accuracy-only", "runtime": "torch",
            "power_mode": "n/a", "definition_json": json.dumps({"settings": record["settings"]}),
        }  # fmt: skip
        for r in record["cells"]:
            rows.append({k: v for k, v in r.items() if k not in ("extra", "prune_ms")} | common)
    return rows


def _die_with(parent_pid: int) -> None:
    """A worker exits when this script does, however it was stopped (a pool's workers
    outlive a SIGTERM or SIGKILL of the parent and would train on for nobody)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give integers separated by commas, e.g. 3,4"
        ) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct seeds >= 0, e.g. 3,4")
    return seeds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profiles", nargs="+", help="grid profiles (their fine-tuned cells skipped)")
    p.add_argument("--out", type=Path, default=Path("runs/grid-accuracy-json"))
    p.add_argument("--work", type=Path, default=Path("runs/grid-accuracy"), help="checkpoints")
    p.add_argument("--workers", type=int, default=1, help="processes, one job each at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--dry-run", action="store_true", help="list the unfinished jobs only")
    p.add_argument(
        "--seeds", type=_seed_list, default=None,
        help="comma-separated training seeds instead of the profiles' (e.g. 3,4: more replicates)",
    )  # fmt: skip
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from sentryfuse.errors import SentryFuseError

    try:
        jobs = plan(args.profiles, args.out, args.seeds)
    except SentryFuseError as exc:  # a bad profile: one line, exit 2 (as sentryfuse run)
        print(f"grid_accuracy: {exc}", file=sys.stderr)
        return 2
    print(f"[grid-accuracy] {len(jobs)} checkpoint jobs to run", flush=True)
    if args.dry_run or not jobs:
        for p, _, f in jobs:
            print(f"  {f}  ({p})")
        return 0
    t0 = time.perf_counter()

    def report(done: int, f: Path, wall: float) -> None:
        left = (time.perf_counter() - t0) / done * (len(jobs) - done)
        print(f"[grid-accuracy] {done}/{len(jobs)} {f}  {wall:.0f} s  ETA {left / 60:.0f} min",
              flush=True)  # fmt: skip

    if args.workers == 1:  # in this process (a test, or a debugger)
        for i, (p, g, f) in enumerate(jobs, 1):
            report(i, f, run_job(p, g, str(f), str(args.work), args.threads, args.seeds))
        return 0
    with ProcessPoolExecutor(
        args.workers,
        mp_context=get_context("spawn"),
        initializer=_die_with,
        initargs=(os.getpid(),),
        max_tasks_per_child=1,  # a fresh process per checkpoint: a long-lived worker's
        # memory grew to 12 GB after 10 jobs (datasets and models of every job it ran)
    ) as pool:
        futures = {
            pool.submit(run_job, p, g, str(f), str(args.work), args.threads, args.seeds): f
            for p, g, f in jobs
        }
        for i, fut in enumerate(as_completed(futures), 1):
            report(i, futures[fut], fut.result())
    return 0


if __name__ == "__main__":
    sys.exit(main())
