"""TensorRT engines from the ONNX export, for desktop GPUs and Jetsons.

Supports the 8.6 API (``EXPLICIT_BATCH`` network flag), 10.x (flags 0) and 11.x
(strongly typed networks only: no FP16/INT8 builder flags; precision comes from the
ONNX graph). Buffers are torch tensors (``data_ptr`` + torch's current stream), which
keeps one CUDA context; pycuda is optional and only ever through its *primary* context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError
from targets.base import Runner
from targets.export import to_tensors


def trt_major(trt: Any) -> int:
    return int(str(trt.__version__).split(".")[0])


def network_flags(trt: Any) -> int:
    """8.x needs EXPLICIT_BATCH; 10.x takes 0; 11.x is strongly typed."""
    major = trt_major(trt)
    flags = 0
    if major < 10:
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    if major >= 11 and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return flags


def build_engine(
    onnx_path: Path,
    input_shapes: Mapping[str, Sequence[int]],
    max_batch: int,
    fp16: bool = False,
    workspace_mb: int = 1024,
) -> bytes:
    """Parse ONNX, add a dynamic-batch optimisation profile, return the serialised engine."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TargetError(f"TensorRT could not parse the ONNX export: {errors[:300]}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if fp16:
        if trt_major(trt) >= 11 or not hasattr(trt.BuilderFlag, "FP16"):
            raise TargetError(
                "TensorRT 11 is strongly typed: export an FP16 ONNX instead of asking for fp16"
            )
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, shape in input_shapes.items():
        rest = tuple(int(s) for s in shape[1:])
        opt = max(1, min(int(shape[0]), max_batch))
        profile.set_shape(name, (1, *rest), (opt, *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TargetError(
            "TensorRT failed to build the engine (see its log above); try runtime 'torch'"
        )
    return bytes(serialized)


class TensorRTRunner(Runner):
    """``execute_async_v3`` on torch's current stream with torch tensors as I/O buffers."""

    runtime = "tensorrt"

    def __init__(self, engine_bytes: bytes, order: tuple[str, ...]) -> None:
        import tensorrt as trt
        import torch

        self._torch = torch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise TargetError(
                "TensorRT could not deserialise the engine (built by another version?)"
            )
        self.context = self.engine.create_execution_context()
        self.modalities = order
        self.weights_bytes = len(engine_bytes)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(outputs) != 1:
            raise TargetError(f"expected one engine output (logits), found {outputs}")
        self.output = outputs[0]
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16}
        self.output_dtype = dtypes.get(self.engine.get_tensor_dtype(self.output), torch.float32)

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return to_tensors(inputs, self.modalities, "cuda")

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        torch = self._torch
        tensors = to_tensors(inputs, self.modalities, "cuda")
        for name in self.modalities:
            t = tensors[name].float().contiguous()
            tensors[name] = t  # keep alive until the stream has run
            self.context.set_input_shape(name, tuple(t.shape))
            self.context.set_tensor_address(name, t.data_ptr())
        out = torch.empty(
            tuple(self.context.get_tensor_shape(self.output)),
            dtype=self.output_dtype,
            device="cuda",
        )
        self.context.set_tensor_address(self.output, out.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise TargetError("TensorRT execute_async_v3 failed")
        return out.float().cpu().numpy()  # waits on the stream

    def synchronize(self) -> None:
        self._torch.cuda.synchronize()

    def close(self) -> None:
        self.context = None
        self.engine = None


def use_pycuda() -> Any:
    """pycuda bound to the primary context torch already uses (never ``pycuda.autoinit``,
    which creates a second context that clashes with torch)."""
    try:
        import pycuda.autoprimaryctx  # noqa: F401
        import pycuda.driver as cuda
    except ImportError as exc:
        raise TargetError(
            "pycuda is not installed: pip install 'sentryfuse-bench[tensorrt]'"
        ) from exc
    return cuda
