"""A fake TensorRT + pycuda pair sharing one simulated GPU, for tests without a device.

They implement the API surface the adapters use, with the real rules: TensorRT 8.x
networks need the EXPLICIT_BATCH flag to parse ONNX, dynamic inputs need an optimisation
profile and refuse shapes outside it, every I/O tensor needs an address before
``execute_async_v3``; pycuda's events time stream work, ``pycuda.autoprimaryctx`` binds
the primary context while ``pycuda.autoinit`` makes a second one. The "engine" runs the
ONNX graph with ONNX Runtime on the simulated device memory, and the device clock moves
by a fixed bandwidth for copies and a fixed time per execution, so tests can check that
H2D, compute and D2H are timed apart.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ONNX_DTYPES = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 9: "BOOL"}
NP_DTYPES = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
}


class FakeGpu:
    """Device memory (address → bytes), a device clock in ms, and the context in use."""

    def __init__(
        self, h2d_gb_per_s: float = 10.0, d2h_gb_per_s: float = 5.0, compute_ms: float = 2.0
    ) -> None:
        self.memory: dict[int, np.ndarray] = {}
        self.clock_ms = 0.0
        self.h2d_gb_per_s = h2d_gb_per_s
        self.d2h_gb_per_s = d2h_gb_per_s
        self.compute_ms = compute_ms
        self.contexts: list[str] = []  # "primary" (autoprimaryctx) or "created" (autoinit)
        self._next = 0x7F0000000000

    def alloc(self, nbytes: int) -> int:
        ptr = self._next
        self._next += (nbytes + 255) // 256 * 256 + 256
        self.memory[ptr] = np.zeros(nbytes, dtype=np.uint8)
        return ptr

    def view(self, ptr: int, shape: Sequence[int], dtype: Any) -> np.ndarray:
        if ptr not in self.memory:
            raise RuntimeError(f"illegal address {ptr:#x}")
        n = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        return self.memory[ptr][:n].view(dtype).reshape(tuple(shape))


# ---------------------------------------------------------------- pycuda.driver


class _Allocation:
    def __init__(self, gpu: FakeGpu, nbytes: int) -> None:
        self.gpu, self.ptr, self.nbytes = gpu, gpu.alloc(nbytes), nbytes

    def __int__(self) -> int:
        return self.ptr

    def free(self) -> None:
        self.gpu.memory.pop(self.ptr, None)


class _Stream:
    _handles = iter(range(0x1000, 0x100000))

    def __init__(self) -> None:
        self.handle = next(self._handles)

    def synchronize(self) -> None:
        pass  # the fake device completes work as it is queued


class _Event:
    def __init__(self, gpu: FakeGpu) -> None:
        self.gpu = gpu
        self.t_ms: float | None = None

    def record(self, stream: Any = None) -> _Event:
        self.t_ms = self.gpu.clock_ms
        return self

    def synchronize(self) -> _Event:
        return self

    def time_since(self, start: _Event) -> float:
        if self.t_ms is None or start.t_ms is None:
            raise RuntimeError("cuEventElapsedTime failed: event not recorded")  # LogicError
        return self.t_ms - start.t_ms


class FakePycudaDriver:
    """``pycuda.driver``: allocations, page-locked memory, async copies, streams, events."""

    def __init__(self, gpu: FakeGpu, pci_bus_id: str = "0000:01:00.0") -> None:
        self.gpu = gpu
        self.pci = pci_bus_id
        self.Stream = _Stream
        self.htod_calls = 0

    def init(self) -> None:
        pass

    def Device(self, ordinal: int) -> Any:  # noqa: N802 - pycuda's name
        return SimpleNamespace(pci_bus_id=lambda: self.pci, name=lambda: "Fake GPU")

    def Event(self) -> _Event:  # noqa: N802
        return _Event(self.gpu)

    def mem_alloc(self, nbytes: int) -> _Allocation:
        self._need_context()
        return _Allocation(self.gpu, int(nbytes))

    def pagelocked_empty(self, shape: Any, dtype: Any) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def memcpy_htod_async(self, dest: Any, src: np.ndarray, stream: Any = None) -> None:
        self._need_context()
        buf = self.gpu.memory[int(dest)]
        raw = np.ascontiguousarray(src).view(np.uint8).reshape(-1)
        buf[: raw.size] = raw
        self.gpu.clock_ms += raw.size / (self.gpu.h2d_gb_per_s * 1e6)
        self.htod_calls += 1

    def memcpy_dtoh_async(self, dest: np.ndarray, src: Any, stream: Any = None) -> None:
        buf = self.gpu.memory[int(src)]
        out = dest.reshape(-1).view(np.uint8)
        out[:] = buf[: out.size]
        self.gpu.clock_ms += out.size / (self.gpu.d2h_gb_per_s * 1e6)

    def _need_context(self) -> None:
        if not self.gpu.contexts:
            raise RuntimeError("cuMemAlloc failed: invalid device context")  # pycuda LogicError


class FakePycudaImporter:
    """``importlib.import_module`` for the pycuda modules, recording what was imported."""

    def __init__(self, driver: FakePycudaDriver) -> None:
        self.driver = driver
        self.imported: list[str] = []

    def __call__(self, name: str) -> Any:
        self.imported.append(name)
        if name == "pycuda.autoprimaryctx":
            self.driver.gpu.contexts.append("primary")
            return SimpleNamespace(context="primary")
        if name == "pycuda.autoinit":
            self.driver.gpu.contexts.append("created")
            return SimpleNamespace(context="created")
        if name == "pycuda.driver":
            return self.driver
        raise ImportError(f"No module named '{name}'")


# ---------------------------------------------------------------- tensorrt


class _IOMode(IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class _DataType(IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    INT64 = 8


class FakeTensorRT:
    """The ``tensorrt`` module: builder, ONNX parser, runtime, engine, execution context."""

    def __init__(self, gpu: FakeGpu, version: str = "10.3.0") -> None:
        self.gpu = gpu
        self.__version__ = version
        self.major = int(version.split(".")[0])
        self.TensorIOMode = _IOMode
        self.DataType = _DataType
        for name in ("float32", "float16", "int32", "int64", "bool"):
            setattr(
                self,
                name,
                _DataType[{"float32": "FLOAT", "float16": "HALF"}.get(name, name.upper())],
            )
        self.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda s, sev=2: None})
        self.MemoryPoolType = SimpleNamespace(WORKSPACE=0)
        flags = {"EXPLICIT_BATCH": 0}
        if self.major >= 10:
            flags["STRONGLY_TYPED"] = 1
        self.NetworkDefinitionCreationFlag = SimpleNamespace(**flags)
        self.BuilderFlag = SimpleNamespace(FP16=0) if self.major < 11 else SimpleNamespace()
        fake = self
        self.Builder = lambda logger: _Builder(fake)
        self.OnnxParser = lambda network, logger: _Parser(network)
        self.Runtime = lambda logger: SimpleNamespace(
            deserialize_cuda_engine=lambda blob: _Engine.load(fake, blob)
        )

    def nptype(self, dtype: _DataType) -> Any:
        return NP_DTYPES[{"INT8": "INT32"}.get(dtype.name, dtype.name)]


class _Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.onnx: bytes | None = None


class _Parser:
    def __init__(self, network: _Network) -> None:
        self.network = network
        self.errors: list[str] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]

    def parse(self, model: bytes, path: str | None = None) -> bool:
        """As TensorRT's: external-data weights are read relative to ``path`` (without
        it they cannot be found) and end up inside the network, as an engine holds them."""
        import onnx
        from onnx.external_data_helper import load_external_data_for_model, uses_external_data

        try:
            proto = onnx.load_from_string(model)
            if any(uses_external_data(t) for t in proto.graph.initializer):
                if path is None:
                    raise ValueError("the model has external weights and no path was given")
                load_external_data_for_model(proto, str(Path(path).parent))
                model = proto.SerializeToString()
            onnx.checker.check_model(proto)
        except Exception as exc:
            self.errors.append(f"ModelImporter: failed to parse ONNX model: {exc}")
            return False
        self.network.onnx = bytes(model)
        return True


class _Builder:
    def __init__(self, trt: FakeTensorRT) -> None:
        self.trt = trt

    def create_network(self, flags: int = 0) -> _Network:
        if self.trt.major < 10 and not flags & 1:
            raise RuntimeError("implicit batch network: the ONNX parser needs EXPLICIT_BATCH")
        return _Network(flags)

    def create_builder_config(self) -> Any:
        cfg = SimpleNamespace(pools={}, flags=set(), profiles=[])
        cfg.set_memory_pool_limit = lambda pool, size: cfg.pools.__setitem__(pool, size)
        cfg.set_flag = lambda flag: cfg.flags.add(flag)
        cfg.add_optimization_profile = lambda p: cfg.profiles.append(p) or len(cfg.profiles) - 1
        return cfg

    def create_optimization_profile(self) -> Any:
        prof = SimpleNamespace(shapes={})
        prof.set_shape = lambda name, lo, opt, hi: prof.shapes.__setitem__(
            name, [list(lo), list(opt), list(hi)]
        )
        return prof

    def build_serialized_network(self, network: _Network, config: Any) -> bytes | None:
        if network.onnx is None:
            return None
        io = _io_spec(network.onnx)
        profile = config.profiles[0].shapes if config.profiles else {}
        for name, (_, shape, mode) in io.items():
            if mode == "INPUT" and -1 in shape and name not in profile:
                return None  # TensorRT logs "network has dynamic inputs but no profile"
        blob = {
            "version": self.trt.__version__,
            "onnx": base64.b64encode(network.onnx).decode(),
            "profile": profile,
            "fp16": 0 in config.flags,
        }
        return json.dumps(blob).encode()


def _io_spec(model: bytes) -> dict[str, tuple[str, list[int], str]]:
    """name -> (TensorRT dtype name, shape with -1 for dynamic dims, INPUT|OUTPUT)."""
    import onnx

    graph = onnx.load_from_string(model).graph
    inits = {i.name for i in graph.initializer}
    out: dict[str, tuple[str, list[int], str]] = {}
    for mode, values in (("INPUT", graph.input), ("OUTPUT", graph.output)):
        for v in values:
            if v.name in inits:
                continue
            t = v.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
            out[v.name] = (ONNX_DTYPES[t.elem_type], shape, mode)
    return out


class _Engine:
    def __init__(self, trt: FakeTensorRT, blob: dict[str, Any]) -> None:
        self.trt = trt
        self.onnx = base64.b64decode(blob["onnx"])
        self.profile = blob["profile"]
        self.io = _io_spec(self.onnx)
        self.names = list(self.io)
        self.num_io_tensors = len(self.names)

    @classmethod
    def load(cls, trt: FakeTensorRT, blob: bytes) -> _Engine | None:
        try:
            data = json.loads(bytes(blob))
        except (ValueError, UnicodeDecodeError):
            return None  # TensorRT logs the deserialisation error and returns None
        if data.get("version", "").split(".")[0] != trt.__version__.split(".")[0]:
            return None  # an engine from another TensorRT version
        return cls(trt, data)

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_mode(self, name: str) -> _IOMode:
        return _IOMode[self.io[name][2]]

    def get_tensor_dtype(self, name: str) -> _DataType:
        return _DataType[self.io[name][0]]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.io[name][1])

    def create_execution_context(self) -> _Context:
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine) -> None:
        import onnxruntime as ort

        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(engine.onnx, opts, providers=["CPUExecutionProvider"])
        self._out_shapes: dict[tuple, dict[str, tuple[int, ...]]] = {}

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        spec = self.engine.io.get(name)
        if spec is None or spec[2] != "INPUT" or len(shape) != len(spec[1]):
            return False
        if name in self.engine.profile:
            lo, _, hi = self.engine.profile[name]
            if not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
                return False  # outside the optimisation profile
        elif any(s != d for s, d in zip(shape, spec[1], strict=True)):
            return False
        self.shapes[name] = tuple(int(s) for s in shape)
        return True

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        if name not in self.engine.io:
            return False
        self.addresses[name] = int(ptr)
        return True

    def _inputs(self) -> list[str]:
        return [n for n, s in self.engine.io.items() if s[2] == "INPUT"]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        spec = self.engine.io[name]
        if spec[2] == "INPUT":
            return self.shapes.get(name, tuple(spec[1]))
        key = tuple(sorted(self.shapes.items()))
        if len(self.shapes) < len(self._inputs()):
            return tuple(spec[1])
        if key not in self._out_shapes:
            feed = {
                n: np.zeros(self.shapes[n], NP_DTYPES[self.engine.io[n][0]]) for n in self._inputs()
            }
            names = [n for n, s in self.engine.io.items() if s[2] == "OUTPUT"]
            outs = self.session.run(names, feed)
            self._out_shapes[key] = {n: tuple(o.shape) for n, o in zip(names, outs, strict=True)}
        return self._out_shapes[key][name]

    def execute_async_v3(self, stream_handle: int) -> bool:
        gpu = self.engine.trt.gpu
        if set(self.addresses) != set(self.engine.io) or len(self.shapes) < len(self._inputs()):
            return False  # TensorRT: "address or shape not set" error, returns False
        feed = {
            n: gpu.view(self.addresses[n], self.shapes[n], NP_DTYPES[self.engine.io[n][0]]).copy()
            for n in self._inputs()
        }
        names = [n for n, s in self.engine.io.items() if s[2] == "OUTPUT"]
        for n, value in zip(names, self.session.run(names, feed), strict=True):
            gpu.view(self.addresses[n], value.shape, value.dtype)[...] = value
        gpu.clock_ms += gpu.compute_ms
        return True
