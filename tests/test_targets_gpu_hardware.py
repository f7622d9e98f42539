"""Real-GPU checks for issue 12's paths: run where the hardware exists, skip elsewhere.

NVML must open the GPU torch computes on; TensorRT must run with pycuda buffers in the
primary context beside torch; runners must report H2D / compute / D2H from device events.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

from targets import get_target
from targets.cuda_buffers import PycudaBuffers, load_pycuda

CUDA = get_target("cuda").availability()
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
HAS_PYCUDA = importlib.util.find_spec("pycuda") is not None
HAS_NVML = importlib.util.find_spec("pynvml") is not None


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(12, 4)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.fc(x["acc"].flatten(1))


def example() -> dict[str, np.ndarray]:
    return {"acc": np.random.default_rng(0).standard_normal((8, 4, 3)).astype(np.float32)}


@pytest.mark.cuda
@pytest.mark.skipif(not (CUDA.ok and HAS_NVML), reason=CUDA.reason or "pynvml is not installed")
def test_nvml_opens_the_gpu_torch_uses():
    import pynvml

    target = get_target("cuda")
    ref = target.gpu.ref()
    props = torch.cuda.get_device_properties(0)
    assert ref.uuid is not None and str(props.uuid) in ref.uuid, (
        ref,
        os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
    print("nvml device:", ref.how, ref.uuid, ref.pci_bus_id, pynvml.nvmlDeviceGetName(ref.handle))


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA.ok, reason=CUDA.reason or "no CUDA")
def test_torch_cuda_runner_reports_device_timings(tmp_path):
    runner = get_target("cuda").export(Net(), example(), "torch", tmp_path)
    prepared = runner.prepare(example())
    runner.mark_window()
    for _ in range(20):
        runner(prepared)
    t = runner.device_timings_ms()
    assert len(t["compute_ms"]) == 20 and all(v > 0 for v in t["compute_ms"])
    print("torch cuda timings (ms):", {k: float(np.median(v)) for k, v in t.items()})


@pytest.mark.cuda
@pytest.mark.tensorrt
@pytest.mark.skipif(
    not (CUDA.ok and HAS_TRT and HAS_PYCUDA), reason="needs CUDA, TensorRT and pycuda"
)
def test_tensorrt_with_pycuda_buffers_beside_torch(tmp_path):
    from targets.export import export_onnx, torch_reference
    from targets.tensorrt_engine import TensorRTRunner, build_engine

    torch.zeros(1, device="cuda")  # torch holds the primary context first
    torch.manual_seed(0)
    model = Net().eval()
    path = tmp_path / "m.onnx"
    order = export_onnx(model, example(), path)
    engine = build_engine(path, {"acc": (8, 4, 3)}, 16)
    runner = TensorRTRunner(engine, order, buffers=PycudaBuffers(load_pycuda()))
    got = runner(runner.prepare(example()))
    np.testing.assert_allclose(got, torch_reference(model, example()), atol=1e-2)
    torch.cuda.synchronize()  # torch still works in the shared context
    t = runner.device_timings_ms()
    assert t["compute_ms"] and t["h2d_ms"] and t["d2h_ms"]
    print("tensorrt/pycuda timings (ms):", {k: float(np.median(v)) for k, v in t.items()})


@pytest.mark.cuda
@pytest.mark.tensorrt
@pytest.mark.skipif(
    not (CUDA.ok and HAS_TRT and HAS_NVML), reason="needs CUDA, TensorRT and pynvml"
)
def test_tensorrt_engine_is_cached_per_device_and_reused(tmp_path):
    """A second export of the same model on this GPU reuses the engine built first."""
    target = get_target("cuda")
    target.engine_cache_dir = tmp_path / "engines"
    assert target.fingerprint().get("compute_capability")  # an engine is bound to it
    torch.manual_seed(0)
    model = Net().eval()
    first = target.export(model, example(), "tensorrt", tmp_path / "w1")
    second = target.export(model, example(), "tensorrt", tmp_path / "w2")
    assert first.engine_cache["reused"] is False and second.engine_cache["reused"] is True
    assert first.engine_cache["key"] == second.engine_cache["key"]
    assert len(list((tmp_path / "engines").glob("*.engine"))) == 1
