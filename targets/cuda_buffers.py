"""GPU buffers, copies, a stream and timing events for TensorRT: torch or pycuda.

Where torch has CUDA, buffers are torch tensors on torch's current stream (one CUDA
context, shared with everything else torch runs). Where it has not — the usual TensorRT
deployment on a Jetson — pycuda provides them through the device's *primary* context
(``pycuda.autoprimaryctx``), the one the CUDA runtime, TensorRT and torch also use;
``pycuda.autoinit`` would create a second context that clashes with them, so it is
never imported. The pycuda module is a parameter so tests pass a fake pair.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sentryfuse.errors import TargetError

Importer = Callable[[str], Any]


@dataclass
class DeviceArray:
    """A device buffer: its address for ``set_tensor_address`` and what keeps it alive."""

    ptr: int
    shape: tuple[int, ...]
    dtype: np.dtype
    keep: Any = None


@dataclass
class HostArray:
    """A page-locked host buffer (so D2H copies are real async DMA) and its numpy view."""

    array: np.ndarray
    keep: Any = None


class Event(Protocol):
    def record(self) -> None: ...
    def synchronize(self) -> None: ...
    def ms_since(self, start: Event) -> float: ...


class DeviceBuffers(Protocol):
    name: str

    def upload(self, array: np.ndarray) -> DeviceArray: ...
    def empty(self, shape: Sequence[int], dtype: np.dtype) -> DeviceArray: ...
    def host_empty(self, shape: Sequence[int], dtype: np.dtype) -> HostArray: ...
    def download(self, src: DeviceArray, dst: HostArray) -> None: ...
    def stream_handle(self) -> int: ...
    def event(self) -> Event: ...
    def synchronize(self) -> None: ...


class _TorchEvent:
    def __init__(self, torch: Any) -> None:
        self.ev = torch.cuda.Event(enable_timing=True)

    def record(self) -> None:
        self.ev.record()  # torch's current stream

    def synchronize(self) -> None:
        self.ev.synchronize()

    def ms_since(self, start: _TorchEvent) -> float:
        return float(start.ev.elapsed_time(self.ev))


class TorchBuffers:
    """Torch CUDA tensors on torch's current stream."""

    name = "torch"

    def __init__(self, torch: Any | None = None) -> None:
        if torch is None:
            import torch
        self.torch = torch

    def upload(self, array: np.ndarray) -> DeviceArray:
        t = self.torch.from_numpy(np.ascontiguousarray(array)).to("cuda", non_blocking=True)
        return DeviceArray(int(t.data_ptr()), tuple(t.shape), array.dtype, t)

    def empty(self, shape: Sequence[int], dtype: np.dtype) -> DeviceArray:
        torch_dtype = self.torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        t = self.torch.empty(tuple(shape), dtype=torch_dtype, device="cuda")
        return DeviceArray(int(t.data_ptr()), tuple(shape), np.dtype(dtype), t)

    def host_empty(self, shape: Sequence[int], dtype: np.dtype) -> HostArray:
        torch_dtype = self.torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        t = self.torch.empty(tuple(shape), dtype=torch_dtype, pin_memory=True)
        return HostArray(t.numpy(), t)

    def download(self, src: DeviceArray, dst: HostArray) -> None:
        dst.keep.copy_(src.keep, non_blocking=True)

    def stream_handle(self) -> int:
        return int(self.torch.cuda.current_stream().cuda_stream)

    def event(self) -> _TorchEvent:
        return _TorchEvent(self.torch)

    def synchronize(self) -> None:
        self.torch.cuda.synchronize()


class _PycudaEvent:
    def __init__(self, cuda: Any, stream: Any) -> None:
        self.ev = cuda.Event()
        self.stream = stream

    def record(self) -> None:
        self.ev.record(self.stream)

    def synchronize(self) -> None:
        self.ev.synchronize()

    def ms_since(self, start: _PycudaEvent) -> float:
        return float(self.ev.time_since(start.ev))


class PycudaBuffers:
    """``pycuda.driver`` allocations, page-locked host memory and one stream."""

    name = "pycuda"

    def __init__(self, cuda: Any) -> None:
        self.cuda = cuda
        self.stream = cuda.Stream()

    def upload(self, array: np.ndarray) -> DeviceArray:
        host = self.cuda.pagelocked_empty(array.shape, array.dtype)
        host[...] = array
        dev = self.cuda.mem_alloc(max(host.nbytes, 1))
        self.cuda.memcpy_htod_async(dev, host, self.stream)
        return DeviceArray(int(dev), tuple(array.shape), array.dtype, (dev, host))

    def empty(self, shape: Sequence[int], dtype: np.dtype) -> DeviceArray:
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        dev = self.cuda.mem_alloc(max(nbytes, 1))
        return DeviceArray(int(dev), tuple(shape), np.dtype(dtype), dev)

    def host_empty(self, shape: Sequence[int], dtype: np.dtype) -> HostArray:
        return HostArray(self.cuda.pagelocked_empty(tuple(shape), dtype))

    def download(self, src: DeviceArray, dst: HostArray) -> None:
        dev = src.keep[0] if isinstance(src.keep, tuple) else src.keep
        self.cuda.memcpy_dtoh_async(dst.array, dev, self.stream)

    def stream_handle(self) -> int:
        return int(self.stream.handle)

    def event(self) -> _PycudaEvent:
        return _PycudaEvent(self.cuda, self.stream)

    def synchronize(self) -> None:
        self.stream.synchronize()


def load_pycuda(importer: Importer = importlib.import_module) -> Any:
    """``pycuda.driver`` bound to the primary context (``pycuda.autoprimaryctx``)."""
    try:
        importer("pycuda.autoprimaryctx")
        return importer("pycuda.driver")
    except ImportError as exc:
        raise TargetError(
            "TensorRT without CUDA torch needs pycuda: pip install 'sentryfuse-bench[tensorrt]'"
        ) from exc


def pycuda_device_count(importer: Importer = importlib.import_module) -> int:
    """GPUs pycuda's driver API sees (0 when pycuda is absent); creates no context."""
    try:
        cuda = importer("pycuda.driver")
        cuda.init()
        return int(cuda.Device.count())
    except Exception:
        return 0


def torch_has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.version.cuda is not None and torch.cuda.is_available()


def choose_buffers(
    *, torch_cuda: bool | None = None, importer: Importer = importlib.import_module
) -> DeviceBuffers:
    """Torch tensors where torch has CUDA (the default); pycuda's primary context otherwise."""
    if torch_has_cuda() if torch_cuda is None else torch_cuda:
        return TorchBuffers()
    return PycudaBuffers(load_pycuda(importer))
