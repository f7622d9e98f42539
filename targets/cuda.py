"""The desktop NVIDIA GPU target: TensorRT, ONNX Runtime (CUDA EP) and torch on CUDA;
NVML power and energy."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import SentryFuseError, TargetError, unknown_name
from targets.base import Availability, EnergySensor, MemoryReading, Runner, Target
from targets.cpu_runners import TorchRunner
from targets.cuda_buffers import TorchBuffers, pycuda_device_count
from targets.device_timing import DeviceTimings
from targets.engine_cache import EngineCache
from targets.export import (
    check_parity,
    export_onnx,
    modality_order,
    to_tensors,
    torch_reference,
    weights_bytes,
)
from targets.gpu_select import CudaIds, runtime_cuda_ids
from targets.hw import MONOTONIC, Clock
from targets.memory import cuda_peak_mb, peak_rss_mb, reset_cuda_peak, reset_peak_rss
from targets.nvml import NvmlEnergySensor, NvmlGpu, NvmlPowerModes

CUDA_RUNTIMES = ("torch", "tensorrt", "onnxruntime")
GPU_ATOL = 2e-3  # cuDNN/TF32 and TensorRT kernel choices differ from CPU float32 sums
GPU_RTOL = 1e-2


def cuda_availability() -> Availability:
    try:
        import torch
    except ImportError:
        return Availability(False, "torch is not installed")
    if torch.version.cuda is None:
        return Availability(False, f"no CUDA device: torch {torch.__version__} is a CPU-only build")
    if not torch.cuda.is_available():
        return Availability(False, "no CUDA device visible (torch.cuda.is_available() is False)")
    return Availability(True)


def library_versions() -> dict[str, Any]:
    """torch/CUDA/cuDNN/TensorRT versions and the GPU name (None where absent)."""
    import torch

    out: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "tensorrt": None}
    if importlib.util.find_spec("tensorrt") is not None:
        try:
            import tensorrt

            out["tensorrt"] = tensorrt.__version__
        except Exception as exc:  # a broken install must not break the fingerprint
            out["tensorrt"] = f"unimportable: {type(exc).__name__}"
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
        out["cudnn"] = torch.backends.cudnn.version()
    return out


class CudaTorchRunner(TorchRunner):
    """Eager torch on the GPU; ``synchronize`` waits for queued kernels at window edges.

    ``prepare`` records its H2D copy and each query its compute and D2H copy with CUDA
    events (``device_timings_ms``), as the TensorRT runner does."""

    def __init__(self, model: Any, order: tuple[str, ...], device: str = "cuda") -> None:
        super().__init__(model, order, device)
        self.buffers = TorchBuffers()
        self.timings = DeviceTimings()

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        start, end = self.buffers.event(), self.buffers.event()
        start.record()
        out = super().prepare(inputs)
        end.record()
        end.synchronize()
        self.timings.add("h2d_ms", end.ms_since(start))
        return out

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        import torch

        tensors = to_tensors(inputs, self.modalities, self.device)
        e0, e1, e2 = (self.buffers.event() for _ in range(3))
        e0.record()
        with torch.inference_mode():
            out = self.model(tensors)
        e1.record()
        host = out.float().cpu()
        e2.record()
        e2.synchronize()
        self.timings.add("compute_ms", e1.ms_since(e0))
        self.timings.add("d2h_ms", e2.ms_since(e1))
        return host.numpy()

    def mark_window(self) -> None:
        self.timings.mark_window()

    def device_timings_ms(self) -> Mapping[str, list[float]]:
        return self.timings.window()

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()


def export_cuda(
    model: Any,
    example_inputs: Mapping[str, np.ndarray],
    runtime: str,
    workdir: Path,
    max_batch: int | None = None,
    ort_providers: Callable[[], Sequence[str]] | None = None,
    engines: EngineCache | None = None,
) -> Runner:
    """A GPU runner (torch or TensorRT) checked against CPU torch before returning.

    A TensorRT engine comes from ``engines`` (this device's cache) when it was built here
    before for the same export (``targets.engine_cache``).

    TensorRT needs no CUDA torch: the ONNX export runs on CPU torch and the engine's
    buffers come from pycuda where torch has no CUDA (``targets.cuda_buffers``)."""
    avail = cuda_availability()
    if runtime != "tensorrt" and not avail.ok:
        raise TargetError(f"runtime '{runtime}' needs CUDA: {avail.reason}")
    order = modality_order(example_inputs)
    model = model.eval().cpu()
    reference = torch_reference(model, example_inputs)
    if runtime == "torch":
        runner: Runner = CudaTorchRunner(model.to("cuda"), order, "cuda")
    elif runtime == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            raise TargetError(
                "runtime 'tensorrt' needs TensorRT: pip install 'sentryfuse-bench[tensorrt]'"
            )
        from targets.tensorrt_engine import engine_runner

        onnx_path = Path(workdir) / "model.onnx"
        export_onnx(model, example_inputs, onnx_path)
        shapes = {m: example_inputs[m].shape for m in order}
        batch = next(iter(shapes.values()))[0]
        runner = engine_runner(
            onnx_path, shapes, max_batch or max(batch, 64), order, Path(workdir), engines=engines
        )
    elif runtime == "onnxruntime":
        from targets.ort_runner import CUDA_PROVIDERS, OrtRunner
        from targets.preference import ort_provider_availability

        ep = ort_provider_availability(CUDA_PROVIDERS[0], ort_providers)
        if not ep.ok:
            raise TargetError(f"runtime 'onnxruntime' on cuda: {ep.reason}")
        runner = OrtRunner(
            model, example_inputs, order, Path(workdir), weights_bytes(model),
            providers=CUDA_PROVIDERS, atol=GPU_ATOL, rtol=GPU_RTOL,
        )  # fmt: skip
    else:
        raise TargetError(unknown_name("cuda runtime", runtime, CUDA_RUNTIMES))
    check_parity(runtime, reference, runner(example_inputs), atol=GPU_ATOL, rtol=GPU_RTOL)
    return runner


class CudaTarget(Target):
    name = "cuda"

    def __init__(
        self,
        nvml: Any | None = None,
        index: int = 0,
        clock: Clock = MONOTONIC,
        ort_providers: Callable[[], Sequence[str]] | None = None,
        tensorrt_installed: Callable[[], bool] | None = None,
        torch_cuda: Callable[[], Availability] | None = None,
        env: Mapping[str, str] | None = None,
        cuda_ids: CudaIds | None = runtime_cuda_ids,
    ) -> None:
        """``index`` is the CUDA ordinal the runners use (``cuda:index``); NVML is opened on
        that same physical GPU (by UUID / PCI bus id, honouring ``CUDA_VISIBLE_DEVICES``)."""
        self.nvml = nvml
        # Injected for tests: onnxruntime.get_available_providers, "is tensorrt importable",
        # "can torch use CUDA"
        self.ort_providers = ort_providers
        self.torch_cuda = torch_cuda or cuda_availability
        self.tensorrt_installed = tensorrt_installed or (
            lambda: importlib.util.find_spec("tensorrt") is not None
        )
        self.index = index
        self.clock = clock
        self.gpu = NvmlGpu(nvml, index, env, cuda_ids)
        self._power = NvmlPowerModes(gpu=self.gpu)  # one instance: it tracks clocks it locked

    def availability(self) -> Availability:
        """CUDA torch, or (for TensorRT alone) TensorRT + pycuda with a visible GPU."""
        avail = cuda_availability()
        if avail.ok or importlib.util.find_spec("tensorrt") is None:
            return avail
        count = pycuda_device_count()
        if count:
            return Availability(True)
        return avail

    def runtimes(self) -> tuple[str, ...]:
        return CUDA_RUNTIMES

    def runtime_availability(self) -> dict[str, Availability]:
        from targets.ort_runner import CUDA_PROVIDERS
        from targets.preference import ort_provider_availability

        trt = self.tensorrt_installed()
        return {
            "torch": self.torch_cuda(),
            "tensorrt": Availability(trt, "" if trt else "TensorRT is not installed"),
            "onnxruntime": ort_provider_availability(CUDA_PROVIDERS[0], self.ort_providers),
        }

    def fingerprint(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.name, **library_versions()}
        try:
            nvml = self.gpu.nvml
            ref = self.gpu.ref()
            name = nvml.nvmlDeviceGetName(ref.handle)
            out["gpu"] = name.decode() if isinstance(name, bytes) else name
            driver = nvml.nvmlSystemGetDriverVersion()
            out["driver"] = driver.decode() if isinstance(driver, bytes) else driver
            with contextlib.suppress(Exception):  # an engine is bound to it (engine_cache)
                major, minor = nvml.nvmlDeviceGetCudaComputeCapability(ref.handle)
                out["compute_capability"] = f"{major}.{minor}"
            out.update(gpu_uuid=ref.uuid, gpu_pci_bus_id=ref.pci_bus_id, nvml_device=ref.how)
        except SentryFuseError as exc:
            out["driver"] = f"unknown ({exc})"
        power = self.power_modes()
        out["power_mode"] = power.current() if power.available().ok else "unavailable"
        out["clocks_locked"] = out["power_mode"].endswith("-locked")
        return out

    def export(
        self, model: Any, example_inputs: Mapping[str, np.ndarray], runtime: str, workdir: Path
    ) -> Runner:
        if runtime not in CUDA_RUNTIMES:
            raise TargetError(unknown_name("cuda runtime", runtime, CUDA_RUNTIMES))
        return export_cuda(
            model, example_inputs, runtime, Path(workdir), ort_providers=self.ort_providers,
            engines=self.engines() if runtime == "tensorrt" else None,
        )  # fmt: skip

    def power_modes(self) -> NvmlPowerModes:
        return self._power

    def energy_sensor(self) -> EnergySensor:
        return NvmlEnergySensor(clock=self.clock, gpu=self.gpu)

    def reset_memory_peak(self) -> None:
        reset_peak_rss()
        reset_cuda_peak()

    def memory(self, runner: Runner | None = None) -> MemoryReading:
        weights = runner.weights_bytes / (1024.0 * 1024.0) if runner is not None else None
        return MemoryReading(peak_rss_mb(), cuda_peak_mb(), weights)
