"""TensorRT runner on a fake TensorRT + pycuda pair (no CUDA torch, as on a Jetson).

The fake pair shares one simulated GPU: pycuda copies move its clock by a fixed
bandwidth, an execution by a fixed time, and the "engine" runs the ONNX graph with ONNX
Runtime on the simulated device memory. So the tests check real outputs, the primary
context, TensorRT 8.6 vs 10.x network flags, profile limits, and that H2D, GPU compute
and D2H are timed apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentryfuse.errors import TargetError
from targets.cuda_buffers import PycudaBuffers, choose_buffers, load_pycuda
from targets.export import export_onnx, torch_reference
from targets.fakes_tensorrt import FakeGpu, FakePycudaDriver, FakePycudaImporter, FakeTensorRT
from targets.tensorrt_engine import TensorRTRunner, build_engine, network_flags


class TwoInputNet(torch.nn.Module):
    """Unrelated to our backbones: two sensors, a small MLP each, summed."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU())
        self.b = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 5)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.a(x["acc"]).mean(1) + self.b(x["gyro"]).mean(1))


def batch(n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "acc": rng.standard_normal((n, 32, 3), dtype=np.float32),
        "gyro": rng.standard_normal((n, 32, 2), dtype=np.float32),
    }


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return TwoInputNet().eval()


def engine_and_pair(model, tmp_path, version="10.3.0", **gpu_kw):
    gpu = FakeGpu(**gpu_kw)
    trt = FakeTensorRT(gpu, version)
    importer = FakePycudaImporter(FakePycudaDriver(gpu))
    onnx_path = tmp_path / "model.onnx"
    order = export_onnx(model, batch(), onnx_path)
    engine = build_engine(onnx_path, {m: batch()[m].shape for m in order}, 16, trt=trt)
    return gpu, trt, importer, engine, order


def test_pycuda_buffers_use_the_primary_context_and_match_torch(model, tmp_path):
    gpu, trt, importer, engine, order = engine_and_pair(model, tmp_path)
    buffers = choose_buffers(torch_cuda=False, importer=importer)
    assert isinstance(buffers, PycudaBuffers)
    assert importer.imported == ["pycuda.autoprimaryctx", "pycuda.driver"]
    assert gpu.contexts == ["primary"]  # never a second context (pycuda.autoinit)
    runner = TensorRTRunner(engine, order, trt=trt, buffers=buffers)
    got = runner(runner.prepare(batch()))
    np.testing.assert_allclose(got, torch_reference(model, batch()), atol=1e-5)
    raw = runner(batch(2))  # an unprepared batch still works (copied inside the call)
    assert raw.shape == (2, 5)


def test_transfers_and_compute_are_timed_apart(model, tmp_path):
    gpu, trt, importer, engine, order = engine_and_pair(
        model, tmp_path, h2d_gb_per_s=1.0, d2h_gb_per_s=0.5, compute_ms=3.0
    )
    runner = TensorRTRunner(engine, order, trt=trt, buffers=PycudaBuffers(load_pycuda(importer)))
    prepared = runner.prepare(batch(8))
    in_bytes = 8 * 32 * (3 + 2) * 4
    assert runner.timings.samples["h2d_ms"] == [pytest.approx(in_bytes / 1e6)]
    h2d_calls = importer.driver.htod_calls
    runner(prepared)  # warm-up, not counted
    runner.mark_window()
    for _ in range(3):
        runner(prepared)
    assert importer.driver.htod_calls == h2d_calls  # a prepared batch is never copied again
    t = runner.device_timings_ms()
    assert t["compute_ms"] == [pytest.approx(3.0)] * 3
    assert t["d2h_ms"] == [pytest.approx(8 * 5 * 4 / 0.5e6)] * 3
    assert t["h2d_ms"] == [pytest.approx(in_bytes / 1e6)]


def test_tensorrt_8_networks_need_explicit_batch(model, tmp_path):
    gpu = FakeGpu()
    trt8 = FakeTensorRT(gpu, "8.6.1")
    assert network_flags(trt8) == 1 and network_flags(FakeTensorRT(gpu, "10.3.0")) == 0
    with pytest.raises(RuntimeError, match="EXPLICIT_BATCH"):
        trt8.Builder(None).create_network(0)
    _, trt, importer, engine, order = engine_and_pair(model, tmp_path, version="8.6.1")
    runner = TensorRTRunner(
        engine, order, trt=trt, buffers=choose_buffers(torch_cuda=False, importer=importer)
    )
    assert runner(batch()).shape == (4, 5)


def test_shape_outside_the_profile_and_foreign_engine_are_one_line_errors(model, tmp_path):
    _, trt, importer, engine, order = engine_and_pair(model, tmp_path)
    runner = TensorRTRunner(engine, order, trt=trt, buffers=PycudaBuffers(load_pycuda(importer)))
    with pytest.raises(TargetError, match="outside the engine's optimisation profile"):
        runner(batch(32))  # built for batch 1..16
    with pytest.raises(TargetError, match="lacks inputs"):
        runner.prepare({"acc": batch()["acc"]})
    other = FakeTensorRT(FakeGpu(), "8.6.1")
    with pytest.raises(TargetError, match="deserialise"):
        TensorRTRunner(engine, order, trt=other, buffers=PycudaBuffers(load_pycuda(importer)))


def test_missing_pycuda_says_how_to_install():
    def no_pycuda(name: str):
        raise ImportError(f"No module named '{name}'")

    with pytest.raises(TargetError, match=r"pip install 'sentryfuse-bench\[tensorrt\]'"):
        choose_buffers(torch_cuda=False, importer=no_pycuda)
