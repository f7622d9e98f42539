"""Attention with per-head gates: dense multi-head and SentryAttend.

Every sequence the backbones build has the same layout: ``n_global`` global tokens
(CLS, per-modality summaries, bottleneck fusion tokens) first, then one contiguous
segment of tokens per modality. ``Layout`` carries that structure as plain ints so the
forward pass does no Python work beyond a few reshapes.

SentryAttend = grouped-query attention (``n_kv < n_head`` key/value heads, each query
head reads ``kv_index[h]``) + a fixed block-sparse pattern: a local token attends to the
tokens of its own block of ``block`` tokens inside its modality segment plus the global
tokens; a global token attends to everything. The local part is computed with small
batched matmuls on reshaped tensors, so FLOPs drop for real, and it is plain
reshape/concat/SDPA, which exports to ONNX and TensorRT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Layout:
    """Token layout of one sequence: globals first, then per-modality segments."""

    n_global: int
    segments: tuple[int, ...]  # token count of each modality segment, in order
    block: int  # SentryAttend local block size; divides every segment

    @property
    def length(self) -> int:
        return self.n_global + sum(self.segments)

    @classmethod
    def make(cls, n_global: int, segments: tuple[int, ...], window: int) -> Layout:
        """Pick the largest block ≤ ``window`` dividing every segment, so blocks never
        straddle two modalities and all segments share one reshape."""
        g = 0
        for s in segments:
            g = math.gcd(g, s)
        block = max((b for b in range(1, max(1, min(window, g)) + 1) if g % b == 0), default=1)
        return cls(n_global, tuple(segments), block)


class Attention(nn.Module):
    """Multi-head attention with grouped KV heads and a gate per query head.

    ``head_gate[h]`` multiplies head h's output before ``o`` (1.0 in normal use); its
    gradient is the first-order saliency signal SentryGate and the Taylor baselines read.
    """

    def __init__(
        self, d_model: int, head_dim: int, n_head: int, n_kv: int, kv_index: list[int], sparse: bool
    ) -> None:
        super().__init__()
        self.n_head, self.n_kv, self.head_dim, self.sparse = n_head, n_kv, head_dim, sparse
        self.q = nn.Linear(d_model, n_head * head_dim)
        self.k = nn.Linear(d_model, n_kv * head_dim)
        self.v = nn.Linear(d_model, n_kv * head_dim)
        self.o = nn.Linear(n_head * head_dim, d_model)
        self.register_buffer("kv_index", torch.tensor(kv_index, dtype=torch.long))
        self.head_gate = nn.Parameter(torch.ones(n_head), requires_grad=False)
        # Python copy: reading the buffer would cost a sync per call and break on meta.
        self.kv_list = list(kv_index)
        self._expand = self.kv_list != list(range(n_head))

    def forward(
        self, x: torch.Tensor, layout: Layout, key_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``x`` (B, S, d); ``key_mask`` (B, S) bool, True = valid key, or None."""
        B, S, _ = x.shape
        nh, hs = self.n_head, self.head_dim
        q = self.q(x).view(B, S, nh, hs).transpose(1, 2)  # (B, nh, S, hs)
        k = self.k(x).view(B, S, self.n_kv, hs).transpose(1, 2)  # (B, nkv, S, hs)
        v = self.v(x).view(B, S, self.n_kv, hs).transpose(1, 2)  # (B, nkv, S, hs)
        if self._expand:
            k = k.index_select(1, self.kv_index)  # (B, nh, S, hs)
            v = v.index_select(1, self.kv_index)  # (B, nh, S, hs)
        if self.sparse and layout.segments:
            y = block_sparse_attention(q, k, v, layout, key_mask)
        else:
            mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, S)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, S, hs)
        y = y * self.head_gate.view(1, nh, 1, 1)
        y = y.transpose(1, 2).reshape(B, S, nh * hs)  # (B, S, nh*hs)
        return self.o(y)


def block_sparse_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: Layout, key_mask: torch.Tensor | None
) -> torch.Tensor:
    """SentryAttend's pattern on (B, nh, S, hs) tensors; see the module docstring.

    Local queries need no per-sample mask on their own block: a block belongs to one
    modality, and if that modality is masked for a sample its tokens' outputs are never
    read by a valid token (they are masked as keys everywhere else). Only the global keys
    can be masked (e.g. a missing modality's summary token in late fusion).
    """
    B, nh, S, hs = q.shape
    G, W = layout.n_global, layout.block
    nb = (S - G) // W
    mask_g = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, S)
    if G == 0:
        ql = q.reshape(B, nh * nb, W, hs)  # (B, nh*nb, W, hs)
        kl = k.reshape(B, nh * nb, W, hs)
        vl = v.reshape(B, nh * nb, W, hs)
        return F.scaled_dot_product_attention(ql, kl, vl).reshape(B, nh, S, hs)
    y_glob = F.scaled_dot_product_attention(q[:, :, :G], k, v, attn_mask=mask_g)  # (B, nh, G, hs)
    ql = q[:, :, G:].reshape(B, nh * nb, W, hs)  # (B, nh*nb, W, hs)
    kg = k[:, :, :G].unsqueeze(2).expand(B, nh, nb, G, hs)  # (B, nh, nb, G, hs)
    vg = v[:, :, :G].unsqueeze(2).expand(B, nh, nb, G, hs)
    kl = torch.cat([kg, k[:, :, G:].reshape(B, nh, nb, W, hs)], dim=3)  # (B, nh, nb, G+W, hs)
    vl = torch.cat([vg, v[:, :, G:].reshape(B, nh, nb, W, hs)], dim=3)
    kl = kl.reshape(B, nh * nb, G + W, hs)
    vl = vl.reshape(B, nh * nb, G + W, hs)
    mask_l = None
    if key_mask is not None:
        valid_block = key_mask.new_ones(B, W)
        mask_l = torch.cat([key_mask[:, :G], valid_block], dim=1)[:, None, None, :]  # (B,1,1,G+W)
    y_loc = F.scaled_dot_product_attention(ql, kl, vl, attn_mask=mask_l)  # (B, nh*nb, W, hs)
    return torch.cat([y_glob, y_loc.reshape(B, nh, S - G, hs)], dim=2)  # (B, nh, S, hs)
