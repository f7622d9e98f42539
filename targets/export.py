"""Model export shared by every target: ONNX with a fixed modality order, parity checks.

Our models take ``{modality: tensor}``; ONNX and TensorRT take positional, named tensors.
``PositionalModel`` fixes the modality order once, and that order travels with the
runner so a batch is always fed in the order the graph was exported with.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentryfuse.errors import TargetError

PARITY_ATOL = 1e-4
PARITY_RTOL = 1e-3


def modality_order(example_inputs: Mapping[str, Any]) -> tuple[str, ...]:
    """The exported input order: the example batch's key order (the dataset's order)."""
    if not example_inputs:
        raise TargetError("export needs at least one modality in example_inputs")
    return tuple(example_inputs)


def to_tensors(inputs: Mapping[str, Any], order: Sequence[str], device: str = "cpu") -> dict:
    """``{modality: np.ndarray}`` → ``{modality: torch.Tensor}`` on ``device`` (no copy on CPU)."""
    import torch

    missing = [m for m in order if m not in inputs]
    if missing:
        raise TargetError(
            f"batch lacks modalities {missing} this runner was exported for {list(order)}; "
            "export a variant for the present modalities"
        )
    out = {}
    for m in order:
        x = inputs[m]
        t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
        out[m] = t.to(device, non_blocking=True) if str(t.device) != device else t
    return out


def torch_reference(model: Any, example_inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The eager CPU torch output every other runtime must match."""
    import torch

    order = modality_order(example_inputs)
    with torch.inference_mode():
        out = model(to_tensors(example_inputs, order))
    return out.detach().float().cpu().numpy()


def make_positional(model: Any, order: Sequence[str]) -> Any:
    """Wrap a dict-taking model so it takes tensors positionally in ``order``."""
    import torch

    class PositionalModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.order = tuple(order)

        def forward(self, *xs: torch.Tensor) -> torch.Tensor:
            return self.inner(dict(zip(self.order, xs, strict=True)))

    return PositionalModel().eval()


def export_onnx(
    model: Any,
    example_inputs: Mapping[str, np.ndarray],
    path: Path,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> tuple[str, ...]:
    """Export to ONNX; returns the input (modality) order.

    The graph is traced from a deployment copy with the gates folded into the weights
    (``fold_gates``: no gate multiplies). ``dynamic_batch`` False fixes every shape to the
    example's, as a TensorRT engine fixes its optimisation profile: ONNX Runtime then
    folds all shape arithmetic (Shape/Gather/Concat/Where chains around every reshape)
    into constants, which at batch 1 is a measurable share of a small model's latency
    (``benchmarks/runtimes.py``). Uses the TorchScript exporter (no onnxscript
    dependency); vendor failures become a one-line ``TargetError``.
    """
    import torch

    from sentryfuse.models.fold import fold_gates

    order = modality_order(example_inputs)
    wrapped = make_positional(fold_gates(model), order)
    args = tuple(to_tensors(example_inputs, order)[m] for m in order)
    dynamic = {m: {0: "batch"} for m in order} | {"logits": {0: "batch"}} if dynamic_batch else None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped,
                args,
                str(path),
                input_names=list(order),
                output_names=["logits"],
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
    except Exception as exc:  # torch raises many kinds here; translate at the boundary
        raise TargetError(
            f"ONNX export failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "use runtime 'torch' or simplify the model"
        ) from exc
    return order


def batch_size_of(inputs: Mapping[str, Any]) -> int:
    """The batch size of a ``{modality: (B, ...)}`` batch."""
    return int(next(iter(inputs.values())).shape[0])


def check_parity(
    runtime: str,
    reference: np.ndarray,
    got: np.ndarray,
    atol: float = PARITY_ATOL,
    rtol: float = PARITY_RTOL,
) -> float:
    """Raise ``TargetError`` unless ``got`` matches the torch reference; returns max |diff|."""
    got = np.asarray(got, dtype=np.float32)
    if got.shape != reference.shape:
        raise TargetError(
            f"{runtime} output shape {got.shape} differs from torch {reference.shape}; "
            "the export is wrong, do not time it"
        )
    diff = float(np.max(np.abs(got - reference))) if got.size else 0.0
    if not np.allclose(got, reference, atol=atol, rtol=rtol):
        raise TargetError(
            f"{runtime} outputs differ from torch by up to {diff:.3g} (atol {atol:g}); "
            "refusing to time a runner whose answers are wrong"
        )
    return diff


def weights_bytes(model: Any) -> int:
    """Bytes of parameters and buffers: what a device must hold for this variant."""
    total = 0
    with contextlib.suppress(AttributeError):
        for t in list(model.parameters()) + list(model.buffers()):
            total += t.numel() * t.element_size()
    return total
