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

import hashlib
import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.cells import Cell, _jsonable
from harness.profile_schema import Profile, UserModel
from harness.reader import Section, fail
from sentryfuse.errors import SentryFuseError

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
    from targets.onnx_file import read_onnx_inputs, resolve_shapes

    inputs, _ = read_onnx_inputs(path)
    resolved = resolve_shapes(inputs, batch, shapes)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return UserModel(name, str(Path(path).resolve()), digest, tuple(resolved.items()), int(batch))


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


def run_model_cell(cell: Cell, profile: Profile, target: Any, workdir: Path) -> tuple[dict, tuple]:
    """Build the runner for the model file, measure it under the cell's power mode."""
    from harness.cellrun import measurement_columns
    from harness.devicetiming import measure_prepared
    from harness.power import static_mode
    from targets.onnx_file import example_batches, onnx_file_runner, read_onnx_inputs

    model = next(m for m in profile.models if m.name == cell.backbone)
    shapes = dict(model.shapes)
    inputs, _ = read_onnx_inputs(Path(model.path))
    batches = example_batches(inputs, shapes, seed=cell.seed)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runner = onnx_file_runner(
        cell.target, Path(model.path), shapes, cell.runtime, workdir, example=batches[0]
    )
    export_s = time.perf_counter() - t0
    try:
        with static_mode(target.power_modes(), cell.power_mode):
            m, device_extra = measure_prepared(runner, batches, profile.measure, target)
    finally:
        runner.close()
    cols = measurement_columns(m)
    cols["weights_mb"] = runner.weights_bytes / 1e6 if runner.weights_bytes else None
    cols["extra_json"] = json.dumps(
        {
            "warnings": list(m.warnings),
            "export_s": export_s,
            "window_s": m.elapsed_s,
            "warmup_n": m.warmup_n,
            "model_path": model.path,
            "model_sha256": model.sha256,
            "shapes": {k: list(v) for k, v in shapes.items()},
            "throughput_per_s": model.batch * m.stats.n / m.elapsed_s if m.elapsed_s else None,
            **device_extra,
        }
    )
    return cols, m.latencies_ms


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
