"""The one transformer block every backbone is built from, and the modality tokenizer."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from sentryfuse.models.attention import Attention, KeyMask, Layout
from sentryfuse.models.config import BlockShape, ModalityInput
from sentryfuse.models.derived import DerivedCacheMixin, derived


class MLP(nn.Module):
    """fc1 → GELU → × ffn_gate → fc2. ``ffn_gate[c]`` is channel c's gate (1.0 normally)."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.d_ff = d_ff
        self.fc1 = nn.Linear(d_model, d_ff)
        self.ffn_gate = nn.Parameter(torch.ones(d_ff), requires_grad=False)
        self.fc2 = nn.Linear(d_ff, d_model)
        self.gated = True  # False once ``fold_gates`` moved the gate into fc2's weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.fc1(x))  # (B, S, d_ff)
        if self.gated:
            h = h * self.ffn_gate
        return self.fc2(h)  # (B, S, d); fc2's hooks see the gated hidden units


class Block(nn.Module):
    """Pre-LN block: x + attn(ln1(x)); x + mlp(ln2(x)). A pruned block may have 0 heads or
    0 channels; that sublayer is then skipped (its output would be the bias alone, which
    is folded in as a constant so the identity with gates-zeroed still holds)."""

    def __init__(
        self, d_model: int, head_dim: int, shape: BlockShape, sparse: bool, dropout: float
    ) -> None:
        super().__init__()
        with warnings.catch_warnings():  # zero-sized Linear init warns; it is intended
            warnings.simplefilter("ignore", UserWarning)
            self.ln1 = nn.LayerNorm(d_model)
            self.attn = Attention(
                d_model, head_dim, shape.n_head, shape.n_kv, shape.kv_index, sparse
            )
            self.ln2 = nn.LayerNorm(d_model)
            self.mlp = MLP(d_model, shape.d_ff)
        self.dropout = dropout

    @property
    def shape(self) -> BlockShape:
        a = self.attn
        return BlockShape(a.n_head, a.n_kv, list(a.kv_list), self.mlp.d_ff)

    def forward(
        self, x: torch.Tensor, layout: Layout, key_mask: torch.Tensor | KeyMask | None
    ) -> torch.Tensor:
        # Residual dropout only while training (an Identity call is a measurable share of
        # torch eager's batch-1 latency; exported graphs have neither).
        drop = self.training and self.dropout > 0
        if self.attn.n_head > 0:
            h = self.attn(self.ln1(x), layout, key_mask)
            x = x + (F.dropout(h, self.dropout, True) if drop else h)
        else:  # no heads: o's output is its bias alone
            x = x + self.attn.o.bias
        if self.mlp.d_ff > 0:
            h = self.mlp(self.ln2(x))
            x = x + (F.dropout(h, self.dropout, True) if drop else h)
        else:
            x = x + self.mlp.fc2.bias
        return x  # (B, S, d)


class Tokenizer(DerivedCacheMixin, nn.Module):
    """(B, T, C) → (B, T/patch, d): a linear map of each patch of ``patch`` steps, plus a
    learned position embedding and a modality embedding (so the joint encoder can tell
    modalities apart)."""

    def __init__(self, spec: ModalityInput, d_model: int) -> None:
        super().__init__()
        self.tokens, self.patch_dim = spec.tokens, spec.patch * spec.features
        self.steps, self.features = spec.steps, spec.features
        self.proj = nn.Linear(self.patch_dim, d_model)
        self.pos = nn.Parameter(torch.randn(1, spec.tokens, d_model) * 0.02)
        self.mod = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        x = x.reshape(B, self.tokens, self.patch_dim)  # (B, L, patch*C)
        # proj(x) + pos + mod as one matmul and one add of a cached (L, d) table
        table = derived(self, "table", (self.proj.bias, self.pos, self.mod), _table)
        return F.linear(x, self.proj.weight) + table  # (B, L, d)


def _table(bias: torch.Tensor, pos: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
    return pos[0] + mod[0] + bias  # (L, d)
