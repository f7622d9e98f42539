"""A user's ONNX model with external-data weights is one model: keyed, resumed, cached
and built with its weights (``targets.onnx_content``).

Models are exported from torch here and re-saved with ``save_as_external_data``; runs
use real ONNX Runtime, engines the fake TensorRT + pycuda pair.
"""

from __future__ import annotations

import hashlib
import sqlite3
import warnings
from pathlib import Path

import fleet_targets
import numpy as np
import onnx
import pytest
import torch

from harness.cli import main
from harness.usermodel import model_spec
from sentryfuse.errors import TargetError
from targets.cuda_buffers import PycudaBuffers, load_pycuda
from targets.engine_cache import EngineCache
from targets.fakes_tensorrt import FakeGpu, FakePycudaDriver, FakePycudaImporter
from targets.onnx_content import content_bytes, external_locations
from targets.onnx_file import onnx_file_runner

DEVICE = {"target": "cuda", "gpu": "Fake GPU", "compute_capability": "8.7", "driver": "555.1",
          "tensorrt": "10.3.0", "power_mode": "default"}  # fmt: skip


def _export(folder: Path, external: bool = True) -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net.eval(), (torch.randn(1, 4),), str(path), input_names=["x"],
            output_names=["out"], opset_version=17, dynamo=False,
        )  # fmt: skip
    if external:
        model = onnx.load(str(path))
        onnx.save_model(
            model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
            location="w.bin", size_threshold=0,
        )  # fmt: skip
    return path


def _new_weights(path: Path) -> None:
    """Rewrite the weights file alone (the graph file keeps every byte)."""
    w = path.parent / "w.bin"
    data = np.frombuffer(w.read_bytes(), dtype=np.float32) * 1.5 + 0.1
    w.write_bytes(data.astype(np.float32).tobytes())


def test_the_digest_covers_the_weights_file_and_stays_plain_without_one(tmp_path):
    plain = _export(tmp_path / "plain", external=False)
    spec = model_spec("m", plain, 1, {})
    assert spec.sha256 == hashlib.sha256(plain.read_bytes()).hexdigest() and spec.external == ()

    path = _export(tmp_path / "ext")
    a = model_spec("m", path, 1, {})
    assert a.external == ("w.bin",)
    assert a.sha256 != hashlib.sha256(path.read_bytes()).hexdigest()
    _new_weights(path)
    assert model_spec("m", path, 1, {}).sha256 != a.sha256
    assert content_bytes(path) == path.stat().st_size + (path.parent / "w.bin").stat().st_size


def test_missing_or_escaping_weight_files_are_one_line_errors(tmp_path):
    path = _export(tmp_path / "m")
    (path.parent / "w.bin").unlink()
    with pytest.raises(TargetError, match="'w.bin' is missing"):
        model_spec("m", path, 1, {})
    outside = _export(tmp_path / "o" / "inner")
    proto = onnx.load(str(outside), load_external_data=False)
    for t in proto.graph.initializer:  # a hand-edited graph: onnx itself would not save it
        for e in t.external_data:
            if e.key == "location":
                e.value = "../secret.bin"
    outside.write_bytes(proto.SerializeToString())
    (tmp_path / "o" / "secret.bin").write_bytes(b"\0" * 4096)
    for reader in (external_locations, lambda p: model_spec("m", p, 1, {})):
        with pytest.raises(TargetError, match="not inside the model's folder"):
            reader(outside)


def test_onnx_runtime_runs_it_from_its_folder(tmp_path):
    path = _export(tmp_path / "m")
    runner = onnx_file_runner("cpu", path, {"x": (1, 4)}, "onnxruntime", tmp_path / "w")
    try:
        out = runner({"x": np.ones((1, 4), np.float32)})
    finally:
        runner.close()
    assert out.shape == (1, 2) and runner.weights_bytes == content_bytes(path)


def _profile(folder: Path) -> Path:
    p = folder / "mine.toml"
    p.write_text(
        'name = "mine"\n[[models]]\nname = "mlp"\npath = "mlp.onnx"\n'
        '[grid]\ntargets = ["cpu"]\nruntimes = ["onnxruntime"]\npower_modes = ["single"]\n'
        "[measure]\nwarmup_s = 0.0\nmin_duration_s = 0.05\nmin_count = 10\ntrials = 2\n"
    )
    return p


def test_resume_refuses_a_store_measured_on_other_weights(tmp_path, capsys):
    _export(tmp_path)
    profile, out = _profile(tmp_path), tmp_path / "out"
    assert main(["run", str(profile), "--out", str(out)]) == 0
    store = out / "results.sqlite"
    before = sqlite3.connect(store).execute("SELECT count(*) FROM runs").fetchone()
    assert main(["run", str(profile), "--out", str(out), "--resume"]) == 0  # same content
    _new_weights(tmp_path / "mlp.onnx")
    capsys.readouterr()
    assert main(["run", str(profile), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model 'mlp'" in err and "changed" in err
    runs = sqlite3.connect(store).execute("SELECT count(*) FROM runs").fetchone()
    assert runs[0] == before[0] + 1  # the refused resume wrote no run


def _engine(path: Path, cache: EngineCache, log: Path) -> object:
    from targets.tensorrt_engine import engine_runner

    gpu = FakeGpu()
    trt = fleet_targets.CountingTensorRT(gpu, "10.3.0", log)
    buffers = PycudaBuffers(load_pycuda(FakePycudaImporter(FakePycudaDriver(gpu))))
    return engine_runner(
        path, {"x": (1, 4)}, 1, ("x",), path.parent, engines=cache, trt=trt, buffers=buffers,
        exact_shapes=True,
    )  # fmt: skip


def test_tensorrt_builds_with_the_external_weights_and_rebuilds_when_they_change(tmp_path):
    import onnxruntime as ort

    path = _export(tmp_path / "m")
    cache, log = EngineCache(tmp_path / "engines", DEVICE), tmp_path / "builds.log"
    x = {"x": np.linspace(-1, 1, 4, dtype=np.float32).reshape(1, 4)}

    def reference() -> np.ndarray:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]

    first = _engine(path, cache, log)
    np.testing.assert_allclose(first(x), reference(), atol=1e-5)  # built with the weights
    _engine(path, cache, log)
    assert cache.builds == 1 and cache.hits == 1
    _new_weights(path)  # new weights, the same graph file: not the cached engine
    again = _engine(path, cache, log)
    assert cache.builds == 2
    np.testing.assert_allclose(again(x), reference(), atol=1e-5)
