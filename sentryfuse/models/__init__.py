"""Multimodal fusion transformers (early, late, bottleneck), SentryAttend, physical pruning."""

from __future__ import annotations

from torch import nn

from sentryfuse.models.attention import Attention, Layout
from sentryfuse.models.backbones import MultimodalTransformer, build_model
from sentryfuse.models.block import MLP, Block
from sentryfuse.models.config import (
    ATTENTIONS,
    BACKBONES,
    BlockShape,
    ModalityInput,
    ModelConfig,
    model_config_for,
)
from sentryfuse.models.flops import count_gflops, count_params
from sentryfuse.models.prune import KeepSet, UnitCost, prune_model, unit_costs
from sentryfuse.models.variant import load_variant, save_variant


def set_gates_trainable(model: nn.Module, trainable: bool = True) -> None:
    """Let gradients reach the head/channel gates (saliency) or freeze them again."""
    for module in model.modules():
        if isinstance(module, Attention):
            module.head_gate.requires_grad_(trainable)
        elif isinstance(module, MLP):
            module.ffn_gate.requires_grad_(trainable)


__all__ = [
    "ATTENTIONS",
    "BACKBONES",
    "Attention",
    "Block",
    "BlockShape",
    "KeepSet",
    "Layout",
    "MLP",
    "ModalityInput",
    "ModelConfig",
    "MultimodalTransformer",
    "UnitCost",
    "build_model",
    "count_gflops",
    "count_params",
    "load_variant",
    "model_config_for",
    "prune_model",
    "save_variant",
    "set_gates_trainable",
    "unit_costs",
]
