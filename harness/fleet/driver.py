"""The fleet driver: preflight, build artefacts once, hand units to Ray, write the store.

The driver is the only writer of ``OUT/results.sqlite``: each finished cell arrives as
JSON and is committed in its own transaction, exactly as the single-machine loop does,
so ``kill -9`` of the driver loses only cells in flight and ``--resume`` skips the rest.
Ray places the units (each asks for one unit of its kind's resource); the driver only
decides what to do when a device is lost: a unit whose node or worker died is submitted
once more (Ray places it on a live node of the same kind), and fails with the reason if
that one dies too or no node of the kind is left. Units queued for a kind that has no
live node left are failed the same way, so the suite goes on and ends.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.cells import Cell
from harness.eta import EtaModel
from harness.fleet.cluster import FleetCluster, connect, parse_spec
from harness.fleet.progress import FleetProgress, PlannedUnit
from harness.fleet.resources import join_command, kind_resource, missing_kinds
from harness.fleet.shipping import models_to_wire, unit_packages
from harness.fleet.units import plan_units, result_from_wire
from harness.fleet.worker import run_unit_task
from harness.profile_schema import Profile
from harness.progress import plan_for, priors_for
from harness.store import STORE_NAME, CellResult, Store, git_commit, utc_now
from harness.suite import SuiteSummary, preflight
from harness.usermodel import check_resumable
from sentryfuse.errors import HarnessError
from targets.base import Availability

_ORPHAN_CHECK_S = 1.0
# A unit owns its device, so it gets the device's threads as a plain run would; Ray
# otherwise forces OMP_NUM_THREADS=1 on tasks that ask for no CPU (an empty value is
# "set" for Ray and "unset" for torch and ONNX Runtime).
_WHOLE_DEVICE = {"env_vars": {"OMP_NUM_THREADS": ""}}
# How a unit's task is declared (benchmarks/fleet.py measures the agent's overhead with
# the same): no CPU claimed (the device resource is the lock), no silent Ray retry (the
# driver decides), and no task events — otherwise the measuring process's core worker
# flushes its task's state changes to the GCS every second, its one periodic job we can
# switch off (see "Quiet devices" in the README's Fleet section).
UNIT_TASK_OPTIONS: dict[str, Any] = {"num_cpus": 0, "max_retries": 0, "enable_task_events": False}


class _OnTheCluster:
    """Preflight's view of a target that runs on the cluster: the cluster's resources,
    checked separately, decide whether it is there; the node checks the device itself."""

    def availability(self) -> Availability:
        return Availability(True)


@dataclass
class _Job:
    unit: tuple[Cell, ...]
    kind: str
    packages: list[Any]
    attempt: int = 1
    lost: list[str] = field(default_factory=list)


def run_fleet_suite(
    profile: Profile,
    out_dir: Path,
    cluster_spec: str,
    *,
    resume: bool = False,
    select: Callable[[list[Cell]], list[Cell]] | None = None,
    target_factory_ref: str | None = None,
    cache_dir: Path | None = None,
    stream: TextIO | None = None,
) -> SuiteSummary:
    """Run every unfinished cell of ``profile`` on the cluster into ``OUT/results.sqlite``.

    ``target_factory_ref`` (``module:function``, importable on the nodes) and
    ``cache_dir`` (the nodes' artefact cache) are for tests."""
    parse_spec(cluster_spec)  # a malformed address fails before anything else
    cells, _, art = preflight(
        profile, out_dir, resume=resume, target_factory=lambda name: _OnTheCluster()
    )
    cells = select(cells) if select else cells
    toml_text = Path(profile.source).read_text(encoding="utf-8")
    with connect(cluster_spec) as cluster:
        _check_kinds(cells, cluster)
        with Store(out_dir / STORE_NAME) as store:
            run = _FleetRun(profile, out_dir, art, cluster, store, stream or sys.stderr)
            request = {
                "profile_toml": toml_text,
                "profile_source": profile.source,
                "profile_hash": profile.profile_hash(),
                "factory": target_factory_ref,
                "cache_dir": str(cache_dir) if cache_dir else None,
                "git_commit": git_commit(),
                "models": models_to_wire(profile.models),
            }
            return run.run(cells, request)


def _check_kinds(cells: list[Cell], cluster: FleetCluster) -> None:
    """One line naming the first missing resource, before any cell runs."""
    needed = {c.target for c in cells}
    missing = missing_kinds(needed, cluster.resources())
    if missing:
        kind = missing[0]
        n = sum(c.target == kind for c in cells)
        raise HarnessError(
            f"no node of the cluster at {cluster.address} advertises resource "
            f"'{kind_resource(kind)}' ({n} cells need target {kind}); join a device with: "
            f"{join_command(cluster.address, kind, 'DEVICE-ID')}"
        )


class _FleetRun:
    def __init__(
        self,
        profile: Profile,
        out_dir: Path,
        art: Any,
        cluster: FleetCluster,
        store: Store,
        stream: TextIO,
    ) -> None:
        import ray

        self.ray = ray
        self.profile, self.out_dir, self.art = profile, out_dir, art
        self.cluster, self.store, self.stream = cluster, store, stream
        self.remote = ray.remote(**UNIT_TASK_OPTIONS)(run_unit_task)
        self.pending: dict[Any, _Job] = {}
        self.refs: dict[str, Any] = {}  # artefact key -> ObjectRef, each put once
        self.ok = 0
        self.failures: list[tuple[str, str]] = []
        self._alive_at = 0.0
        self._alive: dict[str, list[str]] = {}

    # -- the loop -------------------------------------------------------------------
    def run(self, cells: list[Cell], request: dict[str, Any]) -> SuiteSummary:
        self.request = request
        check_resumable(self.profile, self.store)  # before anything is written
        self.run_id = self.store.begin_run(
            self.profile.name,
            self.profile.profile_hash(),
            self.profile.to_json(),
            {"fleet": self.alive(force=True)},
        )
        done = self.store.finished_keys()
        todo = [c for c in cells if c.key not in done]
        units = plan_units(todo)
        train = EtaModel(priors_for(self.profile)).trained_before(self.art.earlier_trainings(cells))
        self.progress = FleetProgress(len(todo), self.stream, train=train)
        plan = plan_for(self.profile, units, self.art)
        self.progress.plan(
            [
                PlannedUnit(u[0].target, len(u), w.train_units)
                for u, w in zip(units, plan, strict=True)
            ]
        )
        for unit in units:
            trained0 = self.art.trained_s
            job = _Job(unit, unit[0].target, self._packages(unit))
            self.progress.enqueue(job.kind, len(unit), self.art.trained_s - trained0)
            self._submit(job)
            self._drain(block=False)
        self.refs.clear()  # each job holds its own artefact refs: freed as units finish
        while self.pending:
            self._drain(block=True)
        self.store.end_run(self.run_id)
        failures = tuple(self.failures)
        return SuiteSummary(
            len(cells), len(cells) - len(todo), self.ok, len(failures), self.store.path, failures
        )

    def alive(self, force: bool = False) -> dict[str, list[str]]:
        now = time.monotonic()
        if force or now - self._alive_at > _ORPHAN_CHECK_S:
            self._alive, self._alive_at = self.cluster.alive_devices(), now
        return self._alive

    def _submit(self, job: _Job) -> None:
        req = {**self.request, "cell_keys": [c.key for c in job.unit], "target": job.kind}
        ref = self.remote.options(
            resources={kind_resource(job.kind): 1}, runtime_env=_WHOLE_DEVICE
        ).remote(json.dumps(req), *job.packages)
        self.pending[ref] = job

    def _drain(self, *, block: bool) -> None:
        ray = self.ray
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=1.0 if block else 0)
            if not ready:
                self._fail_orphans()
                if not block:
                    return
                continue
            ref = ready[0]
            job = self.pending.pop(ref)
            try:
                reply = json.loads(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:  # our task code raised on the node
                self._fail(job, _one_line(exc.cause if exc.cause else exc))
            except ray.exceptions.RayError as exc:  # the node or its worker died mid-unit
                self._lost(job, exc)
            else:
                self._commit(job, reply)

    # -- outcomes -------------------------------------------------------------------
    def _commit(self, job: _Job, reply: dict[str, Any]) -> None:
        device = reply.get("device")
        results = [result_from_wire(w) for w in reply["results"]]
        # a group's cells are measured together: its wall time, shared out, is a cell's cost
        unit_s = _seconds(min(r.started_at for r in results), max(r.finished_at for r in results))
        for cell, wire, result in zip(job.unit, reply["results"], results, strict=True):
            result = self._with_provenance(cell, result, device, job, wire.get("traceback"))
            device_id = (device or {}).get("device_id", "?")
            self._store(job, cell, result, device_id, unit_s / len(results))

    def _lost(self, job: _Job, exc: BaseException) -> None:
        why = _one_line(exc)
        job.lost.append(why)
        alive = self.alive(force=True).get(job.kind, [])
        if job.attempt == 1 and alive:
            job.attempt = 2
            self.progress.report(self._alive_counts(), f"a {job.kind} device was lost; retrying")
            self._submit(job)
            return
        if job.attempt == 1:
            reason = f"no other {job.kind} node to retry on"
        else:
            reason = "its retry on another node was lost too"
        self._fail(
            job, f"NodeLost: the {job.kind} device measuring this cell died ({why}); {reason}"
        )

    def _fail_orphans(self) -> None:
        """Queued units of a kind with no live node left would wait forever: fail them."""
        alive = self.alive()
        for ref, job in list(self.pending.items()):
            if not alive.get(job.kind):
                self.ray.cancel(ref, force=True)
                self.pending.pop(ref)
                self._fail(
                    job,
                    f"NodeLost: no node advertising '{kind_resource(job.kind)}' is left in the "
                    "cluster; rerun with --resume when one has joined",
                )

    def _fail(self, job: _Job, error: str) -> None:
        now = utc_now()
        for cell in job.unit:
            extra = {"fleet": {"lost": job.lost, "attempts": job.attempt}}
            result = CellResult(
                "failed", now, now, error=error[:500], columns={"extra_json": json.dumps(extra)}
            )
            self._store(job, cell, result, "(lost)", None)

    def _store(
        self, job: _Job, cell: Cell, result: CellResult, device_id: str, cell_s: float | None
    ) -> None:
        self.store.commit_cell(self.run_id, cell.key, cell.kind, cell.definition, result)
        ok = result.status == "ok"
        if ok:
            self.ok += 1
        else:
            self.failures.append((cell.label(), result.error or ""))
        self.progress.finished(job.kind, device_id, ok, cell_s)
        note = "" if ok else f"failed: {cell.label()}: {result.error}"
        self.progress.report(self._alive_counts(), note)

    def _alive_counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.alive().items()}

    def _with_provenance(
        self,
        cell: Cell,
        result: CellResult,
        device: dict[str, Any] | None,
        job: _Job,
        traceback_text: str | None,
    ) -> CellResult:
        """The node's fingerprint and device id into ``extra_json``; its traceback to
        ``OUT/errors/`` on the driver, where the single-machine run keeps it."""
        cols = dict(result.columns)
        extra = json.loads(cols.get("extra_json") or "{}")
        if traceback_text:
            path = self.out_dir / "errors" / f"{cell.key[:16]}.log"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(traceback_text)
            extra["traceback_file"] = str(path)
        fleet: dict[str, Any] = {"attempts": job.attempt}
        if job.lost:
            fleet["lost"] = job.lost
        if device is not None:
            extra["device"] = device
        extra["fleet"] = fleet
        cols["extra_json"] = json.dumps(extra, sort_keys=True)
        return dataclasses.replace(result, columns=cols)

    # -- artefacts ------------------------------------------------------------------
    def _packages(self, unit: tuple[Cell, ...]) -> list[Any]:
        return unit_packages(unit, self.art, self._put)

    def _put(self, key: str, pack: Callable[[], dict[str, Any]]) -> Any:
        if key not in self.refs:
            self.refs[key] = self.ray.put(pack())
        return self.refs[key]


def _seconds(started_at: str, finished_at: str) -> float:
    return (
        _dt.datetime.fromisoformat(finished_at) - _dt.datetime.fromisoformat(started_at)
    ).total_seconds()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"[:300]
