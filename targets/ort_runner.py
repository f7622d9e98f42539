"""ONNX Runtime runner: one fixed-shape graph per batch size, on a chosen provider.

Each batch size gets its own static-shape export (as TensorRT builds one engine per
optimisation profile), so ONNX Runtime folds every shape computation into constants.
The example batch's graph is built and parity-checked at export; a batch of another
size builds, and checks against eager torch, its own graph on first use (outside any
timed window the harness opens: warm-up runs it first).

The intra-op thread count follows torch's (set by the CPU power mode): when the mode
changes between calls the session is rebuilt, so the thread count a measurement reports
is the one that ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError
from targets.base import Runner
from targets.export import batch_size_of, check_parity, export_onnx, torch_reference

CPU_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)
CUDA_PROVIDERS: tuple[str, ...] = ("CUDAExecutionProvider", "CPUExecutionProvider")


class OrtRunner(Runner):
    """ONNX Runtime sessions over static-shape exports of ``model``, keyed by batch size."""

    runtime = "onnxruntime"

    def __init__(
        self,
        model: Any,
        example_inputs: Mapping[str, np.ndarray],
        order: tuple[str, ...],
        workdir: Path,
        weights: int,
        providers: Sequence[str] = CPU_PROVIDERS,
        atol: float | None = None,
        rtol: float | None = None,
    ) -> None:
        self.modalities = order
        self.weights_bytes = weights
        self.providers = tuple(providers)
        self.workdir = Path(workdir)
        self.threads = 0
        self._model = model
        self._tol = {k: v for k, v in (("atol", atol), ("rtol", rtol)) if v is not None}
        self._paths: dict[int, Path] = {}
        self._sessions: dict[int, Any] = {}
        self.onnx_path = self._export(example_inputs, "model.onnx")

    def _export(self, inputs: Mapping[str, Any], name: str) -> Path:
        path = self.workdir / name
        export_onnx(self._model, {m: inputs[m] for m in self.modalities}, path, dynamic_batch=False)
        self._paths[batch_size_of(inputs)] = path
        return path

    def _session(self, batch: int, inputs: Mapping[str, Any]) -> Any:
        import torch

        threads = torch.get_num_threads()
        if threads != self.threads:  # the power mode changed the thread count
            self._sessions.clear()
            self.threads = threads
        session = self._sessions.get(batch)
        if session is not None:
            return session
        new_shape = batch not in self._paths
        if new_shape:
            self._export(inputs, f"model-b{batch}.onnx")
        session = self._open(self._paths[batch], threads)
        self._sessions[batch] = session
        if new_shape:  # a new graph answers only after it matched torch
            got = session.run(None, dict(inputs))[0]
            reference = torch_reference(self._model, dict(inputs))
            check_parity(f"{self.runtime} (batch {batch})", reference, got, **self._tol)
        return session

    def _open(self, path: Path, threads: int) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            return ort.InferenceSession(str(path), opts, providers=list(self.providers))
        except Exception as exc:
            raise TargetError(f"onnxruntime could not load {path.name}: {exc}") from exc

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return {m: np.ascontiguousarray(inputs[m], dtype=np.float32) for m in self.modalities}

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        try:
            feed = {m: inputs[m] for m in self.modalities}
        except KeyError:
            missing = [m for m in self.modalities if m not in inputs]
            raise TargetError(
                f"batch lacks modalities {missing} this runner was exported for "
                f"{list(self.modalities)}; export a variant for the present modalities"
            ) from None
        feed = {m: np.ascontiguousarray(x, dtype=np.float32) for m, x in feed.items()}
        return self._session(batch_size_of(feed), feed).run(None, feed)[0]

    def close(self) -> None:
        self._sessions.clear()
