"""TensorRT engines from the ONNX export, for desktop GPUs and Jetsons.

Supports the 8.6 API (``EXPLICIT_BATCH`` network flag), 10.x (flags 0) and 11.x
(strongly typed networks only: no FP16/INT8 builder flags; precision comes from the
ONNX graph). Buffers are torch tensors (``data_ptr`` + torch's current stream), which
keeps one CUDA context; without CUDA torch (a Jetson's usual TensorRT deployment) they
come from pycuda through its *primary* context (``targets.cuda_buffers``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError
from targets.base import Runner
from targets.cuda_buffers import DeviceArray, DeviceBuffers, HostArray, choose_buffers
from targets.device_timing import DeviceTimings
from targets.engine_cache import EngineCache


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
    *,
    trt: Any | None = None,
    exact_shapes: bool = False,
) -> bytes:
    """Parse ONNX, add an optimisation profile, return the serialised engine.

    The profile spans batch 1..``max_batch`` (our exports have a dynamic batch axis);
    ``exact_shapes`` pins every input to the shape given (a user's ONNX file, whose
    dynamic dimensions the user fixed on the command line)."""
    if trt is None:
        import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    # the path lets the parser find external-data weights next to the file
    if not parser.parse(Path(onnx_path).read_bytes(), str(onnx_path)):
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
        if exact_shapes:
            dims = tuple(int(s) for s in shape)
            profile.set_shape(name, dims, dims, dims)
            continue
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


def engine_runner(
    onnx_path: Path,
    shapes: Mapping[str, Sequence[int]],
    max_batch: int,
    order: tuple[str, ...],
    workdir: Path,
    *,
    engines: EngineCache | None = None,
    exact_shapes: bool = False,
    trt: Any | None = None,
    buffers: DeviceBuffers | None = None,
) -> TensorRTRunner:
    """The engine for ``onnx_path`` — from ``engines`` when this device built it before,
    else built here — opened as a runner; also written to ``workdir/model.engine``.

    ``runner.engine_cache`` says which (``{"key", "reused"}``; None without a cache)."""
    options = {  # the engine key and the build read the same options
        "shapes": {k: [int(d) for d in v] for k, v in shapes.items()},
        "max_batch": int(max_batch),
        "exact_shapes": exact_shapes,
        "fp16": False,
        "workspace_mb": 1024,
    }

    def build() -> bytes:
        return build_engine(
            Path(onnx_path), shapes, max_batch, fp16=options["fp16"],
            workspace_mb=options["workspace_mb"], trt=trt, exact_shapes=exact_shapes,
        )  # fmt: skip

    info: dict[str, Any] | None = None
    if engines is None:
        data = build()
    else:
        data, key, reused = engines.engine(Path(onnx_path), options, build)
        info = {"key": key, "reused": reused}
    Path(workdir).mkdir(parents=True, exist_ok=True)
    (Path(workdir) / "model.engine").write_bytes(data)
    runner = TensorRTRunner(data, order, trt=trt, buffers=buffers)
    runner.engine_cache = info
    return runner


class TensorRTRunner(Runner):
    """``execute_async_v3`` with device buffers from torch (where it has CUDA) or pycuda.

    ``prepare`` copies a batch to the device once, outside the timed window, and records
    that H2D copy; each query then records its GPU compute and its D2H copy with device
    events, so the three are reported apart as trtexec does. Output buffers are allocated
    once per output shape, never inside a query.
    """

    runtime = "tensorrt"
    engine_cache: dict[str, Any] | None = None  # set by engine_runner

    def __init__(
        self,
        engine_bytes: bytes,
        order: tuple[str, ...],
        *,
        trt: Any | None = None,
        buffers: DeviceBuffers | None = None,
    ) -> None:
        if trt is None:
            import tensorrt as trt
        self.trt = trt
        self.buffers = buffers if buffers is not None else choose_buffers()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise TargetError(
                "TensorRT could not deserialise the engine (built by another version?)"
            )
        self.context = self.engine.create_execution_context()
        self.weights_bytes = len(engine_bytes)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == mode.OUTPUT]
        if sorted(inputs) != sorted(order):
            raise TargetError(f"engine inputs {inputs} differ from the export's {list(order)}")
        if not self.outputs:
            raise TargetError("the engine has no outputs")
        self.modalities = tuple(order)
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self._out: dict[tuple[str, tuple[int, ...]], tuple[DeviceArray, HostArray]] = {}
        self.timings = DeviceTimings()

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        """Copy a batch to the device once (idempotent); its H2D time is recorded."""
        return self._upload(inputs, record=True)

    def _upload(self, inputs: Mapping[str, Any], record: bool) -> DeviceBatch:
        if isinstance(inputs, DeviceBatch):
            return inputs
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise TargetError(
                f"batch lacks inputs {missing} this engine was built for {list(self.modalities)}"
            )
        b = self.buffers
        start, end = b.event(), b.event()
        start.record()
        arrays = {
            m: b.upload(np.ascontiguousarray(inputs[m], dtype=self.dtypes[m]))
            for m in self.modalities
        }
        end.record()
        end.synchronize()
        if record:
            self.timings.add("h2d_ms", end.ms_since(start))
        return DeviceBatch(arrays)

    def _output(self, name: str, shape: tuple[int, ...]) -> tuple[DeviceArray, HostArray]:
        key = (name, shape)
        if key not in self._out:
            dtype = self.dtypes[name]
            self._out[key] = (
                self.buffers.empty(shape, dtype),
                self.buffers.host_empty(shape, dtype),
            )
        return self._out[key]

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        batch = self._upload(inputs, record=False)  # a raw batch pays its copy in the query
        ctx = self.context
        for name in self.modalities:
            arr = batch[name]
            if not ctx.set_input_shape(name, arr.shape):
                raise TargetError(
                    f"input '{name}' shape {arr.shape} is outside the engine's optimisation profile"
                )
            ctx.set_tensor_address(name, arr.ptr)
        outs = []
        for name in self.outputs:
            dev, host = self._output(name, tuple(int(d) for d in ctx.get_tensor_shape(name)))
            ctx.set_tensor_address(name, dev.ptr)
            outs.append((dev, host))
        b = self.buffers
        e0, e1, e2 = b.event(), b.event(), b.event()
        e0.record()
        if not ctx.execute_async_v3(b.stream_handle()):
            raise TargetError("TensorRT execute_async_v3 failed")
        e1.record()
        for dev, host in outs:
            b.download(dev, host)
        e2.record()
        e2.synchronize()  # the query ends when its result is on the host
        self.timings.add("compute_ms", e1.ms_since(e0))
        self.timings.add("d2h_ms", e2.ms_since(e1))
        return np.array(outs[0][1].array, dtype=np.float32)  # a copy: the buffer is reused

    def mark_window(self) -> None:
        self.timings.mark_window()

    def device_timings_ms(self) -> Mapping[str, list[float]]:
        return self.timings.window()

    def synchronize(self) -> None:
        self.buffers.synchronize()

    def close(self) -> None:
        self._out.clear()
        self.context = None
        self.engine = None


class DeviceBatch(dict):
    """A batch already on the device: ``{input name: DeviceArray}`` (``prepare``'s result)."""
