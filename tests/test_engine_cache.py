"""TensorRT engines cached per (ONNX content, build options, device fingerprint).

Through the fake TensorRT + pycuda pair (``targets.fakes_tensorrt``): the build count,
the key, the files, and that a suite's second cell of the same variant and a
``--resume`` reuse the engine while another device (GPU, TensorRT version) never does.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import fleet_targets
import numpy as np
import pytest
import torch
from profile_helpers import tiny_profile

from harness.profile import load_profile
from harness.suite import run_suite
from targets.cuda_buffers import PycudaBuffers, load_pycuda
from targets.engine_cache import EngineCache, engine_device, engine_key
from targets.export import export_onnx, torch_reference
from targets.fakes_tensorrt import FakeGpu, FakePycudaDriver, FakePycudaImporter
from targets.tensorrt_engine import engine_runner

DEVICE = {"target": "cuda", "gpu": "Fake GPU", "compute_capability": "8.7", "driver": "555.1",
          "tensorrt": "10.3.0", "power_mode": "default"}  # fmt: skip


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(3, 4)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.a(x["acc"]).mean(1)


def _batch() -> dict[str, np.ndarray]:
    return {"acc": np.random.default_rng(0).standard_normal((2, 8, 3), dtype=np.float32)}


def _open(tmp_path: Path, cache: EngineCache, version: str = "10.3.0", name: str = "w"):
    torch.manual_seed(0)
    model = Net().eval()
    onnx_path = tmp_path / name / "model.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    order = export_onnx(model, _batch(), onnx_path)
    gpu = FakeGpu()
    trt = fleet_targets.CountingTensorRT(gpu, version, tmp_path / "builds.log")
    buffers = PycudaBuffers(load_pycuda(FakePycudaImporter(FakePycudaDriver(gpu))))
    runner = engine_runner(
        onnx_path, {"acc": (2, 8, 3)}, 16, order, onnx_path.parent, engines=cache, trt=trt,
        buffers=buffers,
    )  # fmt: skip
    np.testing.assert_allclose(runner(_batch()), torch_reference(model, _batch()), atol=1e-5)
    return runner, onnx_path


def _builds(tmp_path: Path) -> int:
    log = tmp_path / "builds.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_same_export_same_device_builds_once_other_devices_build_their_own(tmp_path):
    root = tmp_path / "engines"
    cache = EngineCache(root, DEVICE)
    first, onnx_path = _open(tmp_path, cache, name="cell1")
    assert first.engine_cache["reused"] is False and _builds(tmp_path) == 1
    options = {"shapes": {"acc": [2, 8, 3]}, "max_batch": 16, "exact_shapes": False,
               "fp16": False, "workspace_mb": 1024}  # fmt: skip
    key = engine_key(
        hashlib.sha256(onnx_path.read_bytes()).hexdigest(), options, engine_device(DEVICE)
    )
    assert first.engine_cache["key"] == key
    assert sorted(p.name for p in root.iterdir()) == [f"{key}.engine", f"{key}.json"]
    assert (root / f"{key}.engine").read_bytes() == (
        tmp_path / "cell1" / "model.engine"
    ).read_bytes()
    meta = json.loads((root / f"{key}.json").read_text())
    assert meta["device"]["gpu"] == "Fake GPU" and "power_mode" not in meta["device"]
    second, _ = _open(tmp_path, cache, name="cell2")  # another cell, same variant
    assert second.engine_cache == {"key": key, "reused": True} and _builds(tmp_path) == 1
    # a new process on the same device (a --resume): same key, no build; power mode is no part
    later = EngineCache(root, {**DEVICE, "power_mode": "max-locked"})
    assert _open(tmp_path, later, name="resume")[0].engine_cache["reused"] is True
    assert (later.builds, later.hits, _builds(tmp_path)) == (0, 1, 1)
    # another GPU, another TensorRT: never the cached engine
    other_gpu = EngineCache(root, {**DEVICE, "gpu": "Other GPU", "compute_capability": "8.9"})
    assert _open(tmp_path, other_gpu, name="gpu2")[0].engine_cache["reused"] is False
    other_trt = EngineCache(root, {**DEVICE, "tensorrt": "8.6.1"})
    assert (
        _open(tmp_path, other_trt, version="8.6.1", name="trt8")[0].engine_cache["reused"] is False
    )
    assert _builds(tmp_path) == 3 and len(list(root.glob("*.engine"))) == 3
    assert not list(root.glob(".tmp-*"))


def test_a_failed_build_leaves_no_entry(tmp_path):
    cache = EngineCache(tmp_path / "engines", DEVICE)
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"not onnx")

    def build() -> bytes:
        raise RuntimeError("builder failed")

    with pytest.raises(RuntimeError):
        cache.engine(onnx_path, {}, build)
    assert not (tmp_path / "engines").exists() or not list((tmp_path / "engines").iterdir())
    data, key, reused = cache.engine(onnx_path, {}, lambda: b"engine")
    assert (data, reused, cache.builds) == (b"engine", False, 1)
    assert cache.engine(onnx_path, {}, build) == (b"engine", key, True)


PROFILE = tiny_profile(
    "trt-cache",
    dense_baseline=False,
    grid={"targets": ["cuda"], "runtimes": ["tensorrt"], "power_modes": ["max", "single"]},
    train={"scorer_final_steps": 4},
    measure={"min_duration_s": 0.02, "trials": 2},
)


def _engines(store: Path) -> list[dict]:
    db = sqlite3.connect(store)
    rows = db.execute("SELECT extra_json FROM cells ORDER BY started_at").fetchall()
    return [json.loads(r[0])["engine"] for r in rows]


def test_suite_cells_of_one_variant_and_a_resume_reuse_the_device_engine(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    profile = load_profile(path, target_factory=fleet_targets.factory)
    out = tmp_path / "out"
    first = run_suite(profile, out, target_factory=fleet_targets.factory, progress=False,
                      select=lambda cells: cells[:1])  # fmt: skip
    assert first.ok == 1
    rest = run_suite(profile, out, resume=True, target_factory=fleet_targets.factory,
                     progress=False)  # fmt: skip
    assert rest.ok == 1 and rest.failed == 0
    engines = _engines(out / "results.sqlite")
    assert [e["reused"] for e in engines] == [False, True]  # max, then single on --resume
    assert engines[0]["key"] == engines[1]["key"]
    assert (out / "engines" / fleet_targets.BUILD_LOG).read_text().count("\n") == 1
