"""A user's own ONNX models as suite variants: profile entries, cells, and their run.

A profile lists models as ``[[models]]`` tables (``name``, ``path``, optional ``batch``
and ``shapes = { input = [1, 128, 64] }``) with a ``[grid]`` of targets, runtimes and
power modes; ``sentryfuse bench MODEL.onnx`` builds the same profile from its flags.
Each model × target × runtime × power mode is one cell of kind ``model``, run by the
same suite, stored in the same results store and gated by the same ``check`` as the
built-in backbones. There is no dataset, so accuracy is not measured: the cell holds
latency, device timings, memory and energy.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cells import Cell, _jsonable
from harness.profile_schema import Profile, UserModel
from harness.reader import Section, fail
from sentryfuse.errors import HarnessError, SentryFuseError

if TYPE_CHECKING:
    from harness.eta import Timing

MODEL_KIND = "model"
MODEL_DATASET = "onnx"  # the dataset column of a model cell: there is none


def parse_dims(text: str) -> tuple[int, ...]:
    """``1x3x224x224`` or ``1,3,224,224`` → (1, 3, 224, 224); ValueError otherwise."""
    parts = text.replace(",", "x").split("x")
    dims = tuple(int(p) for p in parts)
    if not dims or any(d < 1 for d in dims):
        raise ValueError(text)
    return dims


def model_spec(name: str, path: Path, batch: int, shapes: dict[str, tuple[int, ...]]) -> UserModel:
    """Read the file's inputs and fix every shape; raises a one-line ``TargetError``."""
    from targets.onnx_content import content_sha256
    from targets.onnx_file import read_onnx_file, resolve_shapes

    f = read_onnx_file(path)  # parsed once: inputs, outputs, external-data files
    resolved = resolve_shapes(f.inputs, batch, shapes)
    external = f.external
    digest = content_sha256(Path(path), external)
    return UserModel(
        name, str(Path(path).resolve()), digest, tuple(resolved.items()), int(batch), external
    )


def check_resumable(profile: Profile, store: Any) -> None:
    """Refuse to resume a store whose finished cells of a model were measured on other
    content: the cells are keyed by the model's name (so ``check`` compares versions),
    and skipping them would keep the old model's figures under the new one."""
    if not profile.models:
        return
    digests = {m.name: m for m in profile.models}
    rows = store.query(
        "SELECT backbone, extra_json FROM cells WHERE kind = ? AND status = 'ok'", (MODEL_KIND,)
    )
    for name, extra in rows:
        model = digests.get(name)
        old = json.loads(extra or "{}").get("model_sha256")
        if model is not None and old and old != model.sha256:
            raise HarnessError(
                f"model '{name}' ({model.path}) changed since its cells in this store were "
                f"measured (content {old[:12]} -> {model.sha256[:12]}); measure it into a "
                "new --out (`sentryfuse check` compares the two) or restore the old file"
            )


def parse_models(tables: list[Section], base_dir: Path) -> tuple[UserModel, ...]:
    """``[[models]]`` entries; paths are relative to the profile's folder."""
    out: list[UserModel] = []
    for t in tables:
        name = t.str("name")
        raw_path = t.str("path")
        batch = t.int("batch", 1, minimum=1)
        shapes_sec = t.section("shapes")
        shapes = {k: tuple(shapes_sec.ints(k)) for k in shapes_sec.unread()}
        shapes_sec.done()
        t.done()
        if name in {m.name for m in out}:
            fail(file=t.file, key=t.key("name"), problem=f"model name '{name}' is used twice")
        path = Path(raw_path) if Path(raw_path).is_absolute() else base_dir / raw_path
        try:
            out.append(model_spec(name, path, batch, shapes))
        except SentryFuseError as exc:
            fail(file=t.file, key=t.key("path"), problem=str(exc))
    return tuple(out)


def model_cells(profile: Profile) -> list[Cell]:
    """One cell per model × target × runtime × power mode, keyed by the model's name,
    shapes and batch (so ``check`` matches a new version of the same model)."""
    g = profile.grid
    cells = []
    for model, target, runtime in itertools.product(profile.models, g.targets, g.runtimes):
        for mode in g.modes_for(target):
            settings = {
                "measure": asdict(profile.measure),
                "model": {"shapes": dict(model.shapes), "batch": model.batch},
            }
            cells.append(
                Cell(
                    MODEL_KIND,
                    MODEL_DATASET,
                    model.name,
                    "-",
                    "dense",
                    0.0,
                    "all",
                    target,
                    runtime,
                    mode,
                    0,
                    tuple(sorted((k, _jsonable(v)) for k, v in settings.items())),
                )  # fmt: skip
            )
    return cells


def run_model_group(
    cells: Sequence[Cell],
    art: Any,
    target: Any,
    out_dir: Path,
    timing: Timing | None = None,
) -> list[Any]:
    """Build a runner per model file, measure them interleaved in trials under the
    group's power mode (``harness.cellgroup.measure_group``), one ``CellResult`` per
    cell, in order; ``timing`` gets what the builds and the rounds took.

    ``art`` (``harness.artifacts.Artifacts``) says where each file is read on this
    machine: its path, or a fleet node's copy shipped by content hash."""
    from harness.cellgroup import failed_result, measure_group
    from harness.cellrun import cell_measurement_columns
    from harness.devicetiming import window_start
    from harness.eta import Timing
    from harness.store import utc_now
    from harness.trials import Subject

    timing = timing if timing is not None else Timing()
    started = [utc_now() for _ in cells]
    results: dict[int, Any] = {}
    built: list[tuple[int, Any, list, dict]] = []
    try:
        for i, cell in enumerate(cells):
            t0 = time.monotonic()
            try:
                workdir = out_dir / "work" / cell.key[:16]
                built.append((i, *_build(cell, art, target, workdir)))
                timing.export_s.append(built[-1][3]["export_s"])
            except Exception as exc:  # a model that fails to build must not stop the others
                results[i] = failed_result(cell, started[i], exc, out_dir)
            timing.prepare_s.append(time.monotonic() - t0)
            timing.finetuned.append(False)
        subjects = [
            (
                i,
                Subject(
                    runner,
                    batches,
                    synchronize=runner.synchronize,
                    energy_sensor=target.energy_sensor(),
                    memory=target.memory,
                    memory_reset=window_start(target, runner),
                    cpu_threads=getattr(target, "cpu_threads", None),
                ),
                _columns_of(runner, extra, cell_measurement_columns),
            )
            for i, runner, batches, extra in built
        ]
        results.update(
            measure_group(cells, started, subjects, art.profile.measure, target, out_dir, timing)
        )
    finally:
        for _, runner, _, _ in built:
            runner.close()
    return [results[i] for i in sorted(results)]


def _columns_of(runner: Any, extra: dict, measurement_columns: Any) -> Any:
    return lambda m: _columns(m, runner, extra, measurement_columns)


def _build(cell: Cell, art: Any, target: Any, workdir: Path) -> tuple[Any, list, dict]:
    from targets.onnx_file import example_batches, onnx_file_runner, read_onnx_inputs

    model = next(m for m in art.profile.models if m.name == cell.backbone)
    shapes = dict(model.shapes)
    path = art.model_file(model)
    inputs, _ = read_onnx_inputs(path)
    batches = example_batches(inputs, shapes, seed=cell.seed)
    workdir.mkdir(parents=True, exist_ok=True)
    engines = (
        target.engines() if cell.runtime == "tensorrt" and hasattr(target, "engines") else None
    )
    t0 = time.perf_counter()
    runner = onnx_file_runner(
        cell.target, path, shapes, cell.runtime, workdir, example=batches[0], engines=engines,
        external=model.external,
    )  # fmt: skip
    extra = {
        "export_s": time.perf_counter() - t0,
        "model_path": model.path,
        "model_file": str(path),
        "model_sha256": model.sha256,
        "shapes": {k: list(v) for k, v in shapes.items()},
        "batch": model.batch,
    }
    return runner, batches, extra


def _columns(m: Any, runner: Any, extra: dict, measurement_columns: Any) -> dict[str, Any]:
    from harness.cellrun import cpu_share_fields
    from harness.devicetiming import device_extra

    cols = measurement_columns(m)
    cols["weights_mb"] = runner.weights_bytes / 1e6 if runner.weights_bytes else None
    window_s = sum(t.elapsed_s for t in m.trials)
    warnings = [] if m.unstable_reason is None else [f"unstable: {m.unstable_reason}"]
    cols["extra_json"] = json.dumps(
        {
            "warnings": warnings,
            **extra,
            "window_s": window_s,
            "warmup_n": m.warmup_n,
            **cpu_share_fields(m),
            "throughput_per_s": extra["batch"] * m.pooled.n / window_s if window_s else None,
            **device_extra(runner),
        }
    )
    return cols


def parse_model_grid(s: Section, target_factory: Any) -> Any:
    """``[grid]`` of a models profile: targets, runtimes (ONNX-file runtimes of each
    target) and power modes (checked against the target where it is available here)."""
    from harness import registry
    from harness.profile_schema import Grid
    from harness.reader import check_name
    from targets.onnx_file import ONNX_FILE_RUNTIMES

    targets = s.names("targets", registry.target_names(), kind="target", default=("cpu",))
    runtimes = s.strs("runtimes", default=None)
    modes = s.per_name(
        "power_modes", targets, kind="target", item=None, default=(registry.CURRENT_MODE,)
    )
    s.done()
    if runtimes is None:
        runtimes = (ONNX_FILE_RUNTIMES[targets[0]][0],)
    for target in targets:
        for i, rt in enumerate(runtimes):
            check_name(
                s.file, f"{s.key('runtimes')}[{i}]", rt, ONNX_FILE_RUNTIMES[target],
                f"runtime for an ONNX file on target '{target}'",
            )  # fmt: skip
        t = target_factory(target)
        if t is None or not t.availability().ok:
            continue
        power = t.power_modes()
        valid = (registry.CURRENT_MODE,)
        if power.available().ok:
            valid = tuple(m.name for m in power.list()) + valid
        for i, mode in enumerate(dict(modes)[target]):
            check_name(s.file, f"{s.key('power_modes')}[{i}]", mode, valid, f"{target} power mode")
    return Grid((), (), (), (), (), (), targets, runtimes, modes, (0,))
