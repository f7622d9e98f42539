"""A positional-argument view of a model, for exporters (ONNX, TensorRT, torch.jit).

Exporters take tensors, not dicts: ``PositionalModel(model, names, with_present)`` takes
the modalities in ``names`` order, then optionally the ``present`` (B, M) bool mask.
"""

from __future__ import annotations

import torch
from torch import nn

from sentryfuse.models.backbones import MultimodalTransformer


class PositionalModel(nn.Module):
    """``forward(*modality_tensors[, present])`` → logits."""

    def __init__(
        self,
        model: MultimodalTransformer,
        names: list[str] | tuple[str, ...],
        with_present: bool = False,
    ) -> None:
        super().__init__()
        self.model, self.names, self.with_present = model, tuple(names), with_present

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        n = len(self.names)
        present = args[n] if self.with_present else None
        return self.model(dict(zip(self.names, args[:n], strict=True)), present)


def export_onnx(
    model: MultimodalTransformer,
    example: dict[str, torch.Tensor],
    path: str,
    *,
    present: torch.Tensor | None = None,
    opset: int = 17,
) -> list[str]:
    """Export to ONNX with a dynamic batch axis; returns the input names in order.
    Uses the TorchScript exporter, which needs no extra packages (onnx only)."""
    names = [n for n in model.config.available if n in example]
    wrapper = PositionalModel(model, names, present is not None).eval()
    args = tuple(example[n] for n in names) + ((present,) if present is not None else ())
    input_names = names + (["present"] if present is not None else [])
    axes = {n: {0: "batch"} for n in input_names} | {"logits": {0: "batch"}}
    torch.onnx.export(
        wrapper, args, path, input_names=input_names, output_names=["logits"],
        dynamic_axes=axes, opset_version=opset, dynamo=False,
    )  # fmt: skip
    return input_names
