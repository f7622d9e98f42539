"""CPU runners: eager torch, ``torch.compile`` and ONNX Runtime, each parity-checked.

A runner only runs; the harness owns warm-up and timing. Each export checks its
outputs against eager torch on the example batch *before* returning, so nothing whose
answers are wrong is ever timed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError
from targets.base import Runner
from targets.export import (
    check_parity,
    export_onnx,
    modality_order,
    to_tensors,
    torch_reference,
    weights_bytes,
)


class TorchRunner(Runner):
    """Eager torch under ``inference_mode`` (no autograd bookkeeping on the timed path)."""

    runtime = "torch"

    def __init__(self, model: Any, order: tuple[str, ...], device: str = "cpu") -> None:
        self.model = model.eval()
        self.modalities = order
        self.device = device
        self.weights_bytes = weights_bytes(model)

    def prepare(self, inputs: Mapping[str, Any]) -> Mapping[str, Any]:
        return to_tensors(inputs, self.modalities, self.device)

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model(to_tensors(inputs, self.modalities, self.device))
        return out.float().cpu().numpy()


class CompiledRunner(TorchRunner):
    """``torch.compile`` (inductor); compilation happens at export, not in the first timed call."""

    runtime = "torch-compiled"

    def __init__(self, model: Any, order: tuple[str, ...], device: str = "cpu") -> None:
        import torch

        super().__init__(model, order, device)
        try:
            self.model = torch.compile(model.eval())
        except Exception as exc:
            raise TargetError(f"torch.compile failed ({exc}); use runtime 'torch'") from exc


class OrtRunner(Runner):
    """ONNX Runtime CPU session over an ONNX export with a dynamic batch axis.

    The session's intra-op thread count follows torch's (set by the CPU power mode):
    when the mode changes between calls the session is rebuilt, so the thread count a
    measurement reports is the one that ran.
    """

    runtime = "onnxruntime"

    def __init__(
        self,
        onnx_path: Path,
        order: tuple[str, ...],
        weights: int,
        providers: list[str] | None = None,
    ) -> None:
        self.onnx_path = onnx_path
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
        try:
            feed = {m: inputs[m] for m in self.modalities}
        except KeyError:
            missing = [m for m in self.modalities if m not in inputs]
            raise TargetError(
                f"batch lacks modalities {missing} this runner was exported for "
                f"{list(self.modalities)}; export a variant for the present modalities"
            ) from None
        return self._session.run(None, feed)[0]

    def close(self) -> None:
        self._session = None


def export_cpu(
    model: Any, example_inputs: Mapping[str, np.ndarray], runtime: str, workdir: Path
) -> Runner:
    """Build a CPU runner for ``runtime`` and check it against eager torch before returning."""
    order = modality_order(example_inputs)
    model = model.eval()
    reference = torch_reference(model, example_inputs)
    runner: Runner
    if runtime == "torch":
        runner = TorchRunner(model, order)
    elif runtime == "torch-compiled":
        runner = CompiledRunner(model, order)
    elif runtime == "onnxruntime":
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise TargetError(
                "runtime 'onnxruntime' needs the onnxruntime package: pip install 'sentryfuse-bench[onnx]'"
            ) from exc
        path = Path(workdir) / "model.onnx"
        export_onnx(model, example_inputs, path)
        runner = OrtRunner(path, order, weights_bytes(model))
    else:
        raise TargetError(
            f"unknown CPU runtime '{runtime}'; valid: onnxruntime, torch, torch-compiled"
        )
    try:
        got = runner(example_inputs)
    except TargetError:
        raise
    except Exception as exc:
        raise TargetError(
            f"{runtime} failed on the example batch ({type(exc).__name__}: {exc}); use runtime 'torch'"
        ) from exc
    check_parity(runtime, reference, got)
    return runner
