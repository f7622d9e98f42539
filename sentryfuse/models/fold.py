"""Fold the gates into the weights for deployment: the exported graph has no gate ops.

In use every gate is 1 (or a pruned model's copied gate); multiplying a head's output by
its gate is the same as scaling that head's columns of ``o``, and likewise an FFN
channel's gate scales its column of ``fc2``. ``fold_gates`` returns a copy whose
``o``/``fc2`` carry the gates and whose gated multiplies are switched off
(``Attention.gated`` / ``MLP.gated`` False), so an exporter traces a graph with one
``Mul`` fewer per sublayer. Same outputs (up to float rounding); the original model is
left untouched, so saliency and re-pruning keep working on it.
"""

from __future__ import annotations

import copy

import torch

from sentryfuse.models.attention import Attention
from sentryfuse.models.block import MLP


def fold_gates(model: torch.nn.Module) -> torch.nn.Module:
    """A deployment copy of ``model`` with every head/channel gate folded into the
    following projection's weights (``o`` for heads, ``fc2`` for FFN channels)."""
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for module in folded.modules():
            if isinstance(module, Attention) and module.gated:
                if module.n_head:
                    gate = module.head_gate.repeat_interleave(module.head_dim)  # (nh·hs,)
                    module.o.weight.mul_(gate[None, :])
                module.head_gate.fill_(1.0)
                module.gated = False
            elif isinstance(module, MLP) and module.gated:
                if module.d_ff:
                    module.fc2.weight.mul_(module.ffn_gate[None, :])
                module.ffn_gate.fill_(1.0)
                module.gated = False
    return folded
