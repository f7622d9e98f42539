"""A user's own ONNX file as a runner: inputs read from the graph, dynamic dims fixed.

The harness's own variants are exported from torch; a team's model arrives as an ONNX
file. Its input names, element types and shapes come from the graph; a symbolic batch
dimension takes ``--batch``, any other symbolic dimension must be given explicitly
(``--shape name=1x128x64``), as trtexec's ``--shapes`` asks. TensorRT engines are
parity-checked against ONNX Runtime on CPU before they are timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError, unknown_name
from targets.base import Runner
from targets.device_timing import DeviceTimings
from targets.engine_cache import EngineCache
from targets.onnx_content import content_bytes, external_locations

ONNX_FILE_RUNTIMES = {
    "cpu": ("onnxruntime",),
    "cuda": ("tensorrt", "onnxruntime"),
    "jetson": ("tensorrt", "onnxruntime"),
}
ORT_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}
ORT_PROVIDERS["jetson"] = ORT_PROVIDERS["cuda"]
_ELEM_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 6: np.int32, 7: np.int64, 9: np.bool_}
TRT_ATOL, TRT_RTOL = 2e-3, 1e-2  # TensorRT kernel choices differ from CPU float32 sums


@dataclass(frozen=True)
class OnnxInput:
    name: str
    dtype: np.dtype
    dims: tuple[int | str, ...]  # ints, or the symbolic name ("?" when unnamed)


def _invalid(path: Path, exc: Exception) -> TargetError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return TargetError(f"{path}: not a valid ONNX model ({first[:200]})")


@dataclass(frozen=True)
class OnnxFile:
    """What reading a user's file once tells: its real inputs (initializers excluded),
    its output names and its external-data files (``onnx_content.external_locations``)."""

    inputs: list[OnnxInput]
    outputs: list[str]
    external: tuple[str, ...]


def read_onnx_inputs(path: Path) -> tuple[list[OnnxInput], list[str]]:
    """The graph's real inputs (initializers excluded) and its output names."""
    f = read_onnx_file(path)
    return f.inputs, f.outputs


def read_onnx_file(path: Path) -> OnnxFile:
    """Parse and check ``path`` once (graph only; its weight files must be present)."""
    try:
        import onnx
    except ImportError as exc:
        raise TargetError(
            "reading ONNX files needs onnx: pip install 'sentryfuse-bench[onnx]'"
        ) from exc
    path = Path(path)
    if not path.is_file():
        raise TargetError(f"{path}: file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise _invalid(path, exc) from None
    external = external_locations(path, model)  # weight files present, inside its folder
    try:  # by path: external-data files resolve against the model's folder, not the cwd
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise _invalid(path, exc) from None
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    inputs = []
    for v in graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        if t.elem_type not in _ELEM_TYPES:
            raise TargetError(
                f"{path}: input '{v.name}' has an unsupported element type {t.elem_type}"
            )
        dims = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
        )
        inputs.append(OnnxInput(v.name, np.dtype(_ELEM_TYPES[t.elem_type]), dims))
    if not inputs:
        raise TargetError(f"{path}: the graph has no inputs to feed")
    return OnnxFile(inputs, [o.name for o in graph.output], external)


def resolve_shapes(
    inputs: list[OnnxInput], batch: int, overrides: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes: ``overrides`` win; a symbolic first dim is ``batch`` (fixed
    inputs keep theirs); any other symbolic dim is an error naming the flag to fix it."""
    names = [i.name for i in inputs]
    for name in overrides:
        if name not in names:
            raise TargetError(unknown_name("model input", name, names))
    out = {}
    for inp in inputs:
        if inp.name in overrides:
            shape = tuple(int(d) for d in overrides[inp.name])
            if len(shape) != len(inp.dims) or any(
                isinstance(d, int) and d != s for d, s in zip(inp.dims, shape, strict=False)
            ):
                raise TargetError(
                    f"shape {list(shape)} for input '{inp.name}' does not fit its dims {list(inp.dims)}"
                )
            out[inp.name] = shape
            continue
        dims = list(inp.dims)
        if dims and isinstance(dims[0], str):
            dims[0] = batch
        free = [d for d in dims if isinstance(d, str)]
        if free:
            example = "x".join(str(d) if isinstance(d, int) else "N" for d in dims)
            raise TargetError(
                f"input '{inp.name}' has dynamic dimension(s) {free} (dims {list(inp.dims)}); "
                f"give its shape with --shape {inp.name}={example}"
            )
        out[inp.name] = tuple(int(d) for d in dims)
    batched = [i for i in inputs if i.dims and isinstance(i.dims[0], str)]
    if batch != 1 and not batched:
        raise TargetError(
            f"no input has a dynamic batch axis (dims {[list(i.dims) for i in inputs]}); drop "
            "--batch or re-export the model with a dynamic first dimension"
        )
    return out


def example_batches(
    inputs: list[OnnxInput], shapes: Mapping[str, tuple[int, ...]], count: int = 4, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """Seeded inputs of the right types (floats ~ N(0,1); integers and bools 0/1, valid
    as token ids and masks)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        batch = {}
        for inp in inputs:
            shape = shapes[inp.name]
            if np.issubdtype(inp.dtype, np.floating):
                batch[inp.name] = rng.standard_normal(shape).astype(inp.dtype)
            else:
                batch[inp.name] = rng.integers(0, 2, size=shape).astype(inp.dtype)
        out.append(batch)
    return out


def onnx_file_runner(
    target: str,
    path: Path,
    shapes: Mapping[str, tuple[int, ...]],
    runtime: str,
    workdir: Path,
    example: Mapping[str, np.ndarray] | None = None,
    engines: EngineCache | None = None,
    external: tuple[str, ...] | None = None,
) -> Runner:
    """A runner for ``path`` on ``target`` with ``runtime`` (see ``ONNX_FILE_RUNTIMES``);
    a TensorRT engine comes from ``engines`` when this device built it before.
    ``external``: the model's external-data files when already known (else read)."""
    valid = ONNX_FILE_RUNTIMES.get(target, ())
    if runtime not in valid:
        raise TargetError(
            unknown_name(f"runtime for an ONNX file on target '{target}'", runtime, valid)
        )
    order = tuple(shapes)
    weights = content_bytes(Path(path), external)  # external-data weights included
    if runtime == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise TargetError(
                "runtime 'onnxruntime' needs: pip install 'sentryfuse-bench[onnx]'"
            ) from exc
        providers = ORT_PROVIDERS[target]
        if providers[0] not in ort.get_available_providers():
            raise TargetError(
                f"onnxruntime here has no {providers[0]} (install onnxruntime-gpu for CUDA)"
            )
        if target == "cpu":
            return OnnxFileRunner(Path(path), order, weights, providers=providers)
        return OrtDeviceRunner(Path(path), order, weights, providers=providers, device="cuda")
    from targets.tensorrt_engine import engine_runner

    max_batch = max(s[0] for s in shapes.values())
    runner = engine_runner(
        Path(path), shapes, max_batch, order, Path(workdir), engines=engines, exact_shapes=True
    )
    if example is not None:
        _check_against_ort(runner, Path(path), order, example)
    return runner


class OnnxFileRunner(Runner):
    """ONNX Runtime over the user's file as it is (its own shapes and types).

    The intra-op thread count follows torch's (set by the CPU power mode): when the mode
    changes between calls the session is rebuilt, so the count a measurement reports is
    the one that ran."""

    runtime = "onnxruntime"

    def __init__(
        self,
        onnx_path: Path,
        order: tuple[str, ...],
        weights: int,
        providers: list[str] | None = None,
    ) -> None:
        self.onnx_path = Path(onnx_path)
        self.modalities = order
        self.weights_bytes = weights
        self.providers = providers or ["CPUExecutionProvider"]
        self.threads = 0
        self._session: Any = None
        self._ensure_session()

    def _ensure_session(self) -> None:
        import onnxruntime as ort
        import torch

        threads = torch.get_num_threads()
        if self._session is not None and threads == self.threads:
            return
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(self.onnx_path), opts, providers=self.providers
            )
        except Exception as exc:
            raise TargetError(f"onnxruntime could not load {self.onnx_path.name}: {exc}") from exc
        self.threads = threads

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {m: np.ascontiguousarray(inputs[m]) for m in self.modalities}

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        self._ensure_session()
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise TargetError(f"batch lacks inputs {missing} of the model {list(self.modalities)}")
        return self._session.run(None, {m: inputs[m] for m in self.modalities})[0]

    def close(self) -> None:
        self._session = None


class DeviceBoundInputs(dict):
    """``{input name: OrtValue}`` already on the session's device (``prepare``'s result)."""


class OrtDeviceRunner(OnnxFileRunner):
    """ONNX Runtime with I/O binding: inputs copied to ``device`` once in ``prepare``,
    outputs bound on the device and copied back per query, so H2D, compute and D2H are
    timed apart as for TensorRT. ORT's copies and ``run_with_iobinding`` return when
    the work is done, so a host clock brackets each part; it is a parameter for tests."""

    def __init__(
        self,
        onnx_path: Path,
        order: tuple[str, ...],
        weights: int,
        providers: list[str] | None = None,
        device: str = "cuda",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(onnx_path, order, weights, providers=providers)
        self.device = device
        self.clock = clock
        self.timings = DeviceTimings()
        self.outputs = [o.name for o in self._session.get_outputs()]

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        if isinstance(inputs, DeviceBoundInputs):
            return inputs
        import onnxruntime as ort

        t0 = self.clock()
        bound = DeviceBoundInputs(
            (m, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(inputs[m]), self.device, 0))
            for m in self.modalities
        )
        self.timings.add("h2d_ms", (self.clock() - t0) * 1e3)
        return bound

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        if not isinstance(inputs, DeviceBoundInputs):
            return super().__call__(inputs)  # raw host arrays: ORT copies inside the query
        self._ensure_session()
        binding = self._session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, value)
        for name in self.outputs:
            binding.bind_output(name, self.device, 0)
        t0 = self.clock()
        self._session.run_with_iobinding(binding)
        t1 = self.clock()
        out = binding.copy_outputs_to_cpu()[0]
        t2 = self.clock()
        self.timings.add("compute_ms", (t1 - t0) * 1e3)
        self.timings.add("d2h_ms", (t2 - t1) * 1e3)
        return out

    def mark_window(self) -> None:
        self.timings.mark_window()

    def device_timings_ms(self) -> Mapping[str, list[float]]:
        return self.timings.window()


def _check_against_ort(runner: Runner, path: Path, order: tuple[str, ...], example: Any) -> None:
    """Polygraphy-style: the engine must agree with ONNX Runtime on CPU before timing."""
    try:
        from targets.export import check_parity

        reference = OnnxFileRunner(path, order, 0)(example)
    except ImportError:
        return  # no ONNX Runtime here: nothing to compare against
    check_parity("tensorrt", np.asarray(reference), runner(example), atol=TRT_ATOL, rtol=TRT_RTOL)
