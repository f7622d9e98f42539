"""Attention with per-head gates: dense multi-head and SentryAttend.

Every sequence the backbones build has the same layout: ``n_global`` global tokens
(CLS, per-modality summaries, bottleneck fusion tokens) first, then one contiguous
segment of tokens per modality. ``Layout`` carries that structure as plain ints.

SentryAttend = grouped-query attention (``n_kv < n_head`` key/value heads, each query
head reads ``kv_index[h]``) + a fixed block pattern: a local token attends to the tokens
of its own block of ``block`` tokens inside its modality segment plus the global tokens;
a global token attends to everything. ``attention_kernels`` computes the pattern either
block-sparse or as a masked dense attention, whichever is faster at that length.

Batch-1 CPU latency at 16–50 tokens is dominated by the number of ops, not by FLOPs, so
the forward pass issues few of them; what still matters once exported to ONNX Runtime
(the deployed runtime, ``benchmarks/runtimes.py``) is the graph's op count, so these
shape the traced graph too (the concatenations fold into constant weights there):

* q, k and v are one matmul with a concatenated weight (cached while the weights do not
  change, see ``Attention._qkv_weight``); ``attn.q/k/v`` stay the parameters. With one
  KV head, q is its own matmul and [k; v] one matmul (q then needs no copy).
* GQA never copies K/V per query head: the query heads of one KV group are stacked as
  extra query rows, (B, n_kv, S·group, hs), a standard trick that needs no K/V expansion.
  Only uneven groups (left by pruning) gather K/V per query head.
* The head gate is one multiply by a cached (nh·hs,) vector on tokens-major output, and
  none at all in a deployment export (``fold.fold_gates`` moves it into ``o``).
* Key masks become SDPA masks once per forward (``KeyMask``), not once per block.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sentryfuse.models.attention_kernels import (
    KeyMask,
    Layout,
    block_sparse,
    block_sparse_mqa,
    dense,
    pattern_mask,
    uses_sparse_kernel,
)
from sentryfuse.models.derived import DerivedCacheMixin, derived

__all__ = ["Attention", "KeyMask", "Layout"]


def _cat3(wq, wk, wv, bq, bk, bv) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([wq, wk, wv]), torch.cat([bq, bk, bv])


def _cat2(wk, wv, bk, bv) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([wk, wv]), torch.cat([bk, bv])


class Attention(DerivedCacheMixin, nn.Module):
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
        group = n_head // n_kv if n_kv else 0
        even = group > 0 and self.kv_list == [h // group for h in range(n_head)]
        self._group = group if even else 0  # 0: uneven groups, gather K/V per query head
        self.gated = True  # False once ``fold_gates`` moved the gate into ``o``'s weights

    def _qkv_weight(self, with_q: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """[q; k; v] (or [k; v]) weight and bias for one matmul, cached (``derived``)."""
        q, k, v = self.q, self.k, self.v
        if with_q:
            ps = (q.weight, k.weight, v.weight, q.bias, k.bias, v.bias)
            return derived(self, "qkv", ps, _cat3)
        return derived(self, "kv", (k.weight, v.weight, k.bias, v.bias), _cat2)

    def _gate_vector(self) -> torch.Tensor:
        """``head_gate`` repeated over each head's ``head_dim`` outputs, (nh·hs,), so the
        gate is one multiply on tokens-major output (cached, ``derived``)."""
        return derived(self, "gate", (self.head_gate,), self._repeat)

    def _repeat(self, g: torch.Tensor) -> torch.Tensor:
        return g.repeat_interleave(self.head_dim)

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        """``o`` of the gated heads; y (B, S, nh·hs) tokens-major → (B, S, d)."""
        return self.o(y * self._gate_vector() if self.gated else y)

    def forward(
        self, x: torch.Tensor, layout: Layout, key_mask: torch.Tensor | KeyMask | None
    ) -> torch.Tensor:
        """``x`` (B, S, d); ``key_mask`` (B, S) bool (True = valid key), a ``KeyMask``
        prepared from one, or None."""
        B, S, _ = x.shape
        nh, hs = self.n_head, self.head_dim
        if isinstance(key_mask, torch.Tensor):
            key_mask = KeyMask.build(layout, key_mask, self.sparse)
        n, group = self.n_kv, self._group
        pattern = self.sparse and bool(layout.segments)
        kernel = pattern and uses_sparse_kernel(layout)
        if pattern and n == 1:  # one KV head (the small preset): q alone, [k; v] fused
            q = self.q(x)  # (B, S, nh·hs), contiguous
            kv = F.linear(x, *self._qkv_weight(with_q=False))  # (B, S, 2·hs)
            if kernel:
                y = block_sparse_mqa(q, kv, hs, layout, key_mask)
            else:
                k, v = kv.view(B, 1, S, 2 * hs).split(hs, dim=-1)  # (B, 1, S, hs) each
                mask = pattern_mask(layout, nh, key_mask, q)
                y = F.scaled_dot_product_attention(q.view(B, 1, S * nh, hs), k, v, attn_mask=mask)
                y = y.view(B, S, nh * hs)
            return self._out(y)
        qkv = F.linear(x, *self._qkv_weight())  # (B, S, (nh + 2·n_kv)·hs)
        if group == 1 and not pattern:  # plain multi-head: the fewest ops
            q, k, v = qkv.view(B, S, 3, nh, hs).permute(2, 0, 3, 1, 4).unbind(0)
            mask = None if key_mask is None else key_mask.full
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, nh, S, hs)
            return self._out(y.transpose(1, 2).reshape(B, S, nh * hs))
        q, kv = qkv[..., : nh * hs], qkv[..., nh * hs :]
        if group:
            kv = kv.view(B, S, 2, n, hs)
        else:  # uneven groups: K/V per query head
            kv = kv.view(B, S, 2, n, hs).index_select(3, self.kv_index)  # (B, S, 2, nh, hs)
            group = 1
        if kernel:
            y = block_sparse(q, kv, layout, key_mask, group)
        elif pattern:
            y = dense(q, kv, pattern_mask(layout, group, key_mask, q), group)
        else:
            y = dense(q, kv, None if key_mask is None else key_mask.full, group)
        return self._out(y)  # y: (B, S, nh·hs), gated per head
