"""Parameter and FLOP counts, per sample.

``torch.utils.flop_counter`` has no formula for the CPU flash-attention kernel that
``F.scaled_dot_product_attention`` dispatches to on a CPU, so it would count attention
as free there; we register the same formula it uses for the CUDA kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_aten = torch.ops.aten


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Shapes arrive as torch.Size (the counter converts tensors). 2·L·S·E (scores) + 2·L·S·Ev (weighted values) per batch×head; query (…, L, E)."""
    *batch, L, E = query_shape
    S, Ev = key_shape[-2], value_shape[-1]
    n = 1
    for b in batch:
        n *= b
    return 2 * n * L * S * E + 2 * n * L * S * Ev


_CUSTOM = {}
if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _CUSTOM[_aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flop


def count_params(model: nn.Module) -> int:
    """Number of parameters (gates included: they are part of the shipped weights)."""
    return sum(p.numel() for p in model.parameters())


def count_gflops(
    model: nn.Module, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None = None
) -> float:
    """Forward GFLOPs per sample (multiply-add = 2 FLOPs), on ``inputs``' batch."""
    batch = next(iter(inputs.values())).shape[0]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_CUSTOM) as counter:
            model(inputs, present)
    finally:
        model.train(was_training)
    return counter.get_total_flops() / batch / 1e9
