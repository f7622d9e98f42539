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
    PARITY_ATOL,
    PARITY_RTOL,
    check_parity,
    modality_order,
    to_tensors,
    torch_reference,
    weights_bytes,
)
from targets.ort_runner import OrtRunner

__all__ = ["CompiledRunner", "OrtRunner", "TorchRunner", "export_cpu"]


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


def export_cpu(
    model: Any,
    example_inputs: Mapping[str, np.ndarray],
    runtime: str,
    workdir: Path,
    atol: float = PARITY_ATOL,
    rtol: float = PARITY_RTOL,
) -> Runner:
    """Build a CPU runner for ``runtime`` and check it against eager torch (within
    ``atol``/``rtol``) before returning: a runner that disagrees is never timed."""
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
        runner = OrtRunner(
            model, example_inputs, order, Path(workdir), weights_bytes(model), atol=atol, rtol=rtol
        )
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
    check_parity(runtime, reference, got, atol, rtol)
    return runner
