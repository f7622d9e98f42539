"""How attention is computed: SDPA masks and SentryAttend's two execution strategies.

SentryAttend's pattern (a local token sees its block's tokens plus the globals; a global
token sees everything) is computed one of two ways, chosen from the layout alone:

* **block-sparse kernel** (``layout.length >= SPARSE_KERNEL_MIN_TOKENS``): global queries
  in one SDPA over all keys, local queries in one SDPA batched over (sample, block) with
  each block's keys gathered by one ``index_select``. Attention FLOPs drop with the
  pattern, but every block is a separate SDPA work item.
* **masked** (shorter sequences): one SDPA over all keys with the pattern as a constant
  additive mask. Attention FLOPs are those of dense attention (and are counted so), but
  it is one work item per KV head.

On the 2-core x86 CPU we measure on (torch 2.13, batch 1, one KV head, 4 query heads,
block 4) the masked form is faster up to ~35 tokens (16 vs 29 µs at 20 tokens, 22 vs
32 µs at 33) and the kernel from ~65 on (42 vs 48 µs; 63 vs 141 at 129; 101 vs 485 at
257), so the switch sits at 48 tokens. Either way the output is the same pattern, and
``unit_costs`` follows the same rule so FLOPs budgets match ``count_gflops``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SPARSE_KERNEL_MIN_TOKENS = 48


def _normal_tensors() -> torch.inference_mode:
    """Cached constants must be ordinary tensors even when first built under
    ``inference_mode``, or a later autograd forward could not save them for backward."""
    return torch.inference_mode(False)


@dataclass(frozen=True)
class Layout:
    """Token layout of one sequence: globals first, then per-modality segments."""

    n_global: int
    segments: tuple[int, ...]  # token count of each modality segment, in order
    block: int  # SentryAttend local block size; divides every segment

    @property
    def length(self) -> int:
        return self.n_global + sum(self.segments)

    @property
    def n_blocks(self) -> int:
        return sum(self.segments) // self.block

    @classmethod
    def make(cls, n_global: int, segments: tuple[int, ...], window: int) -> Layout:
        """Pick the largest block ≤ ``window`` dividing every segment, so blocks never
        straddle two modalities and all segments share one reshape."""
        g = 0
        for s in segments:
            g = math.gcd(g, s)
        block = max((b for b in range(1, max(1, min(window, g)) + 1) if g % b == 0), default=1)
        return cls(n_global, tuple(segments), block)


def uses_sparse_kernel(layout: Layout) -> bool:
    """True if SentryAttend runs the block-sparse kernel on this layout (see module doc)."""
    return layout.length >= SPARSE_KERNEL_MIN_TOKENS


@functools.lru_cache(maxsize=256)
def local_key_index(layout: Layout, device: torch.device) -> torch.Tensor:
    """(n_blocks·(G+W),) token indices: for each local block, the globals then its own
    tokens. Built once per layout and device; the forward pass only looks it up."""
    G, W = layout.n_global, layout.block
    idx = []
    for b in range(layout.n_blocks):
        idx += list(range(G)) + list(range(G + b * W, G + (b + 1) * W))
    with _normal_tensors():
        return torch.tensor(idx, dtype=torch.long, device=device)


@functools.lru_cache(maxsize=256)
def _pattern(layout: Layout, rows_per_token: int, device: torch.device) -> tuple:
    """Bool (S·r, S) constants for query rows ordered (token, row): ``allowed`` (the
    pattern) and ``own`` (the local row's own-block keys, never masked)."""
    S, G, W = layout.length, layout.n_global, layout.block
    with _normal_tensors():
        return _pattern_build(S, G, W, rows_per_token, device)


def _pattern_build(S: int, G: int, W: int, r: int, device: torch.device) -> tuple:
    tok = torch.arange(S, device=device)
    blk = torch.where(tok < G, -1, (tok - G) // W)  # -1 for globals
    own = (blk[:, None] == blk[None, :]) & (blk[:, None] >= 0)
    allowed = own | (blk[:, None] < 0) | (blk[None, :] < 0)
    return allowed.repeat_interleave(r, 0), own.repeat_interleave(r, 0)


@functools.lru_cache(maxsize=256)
def _pattern_additive(
    layout: Layout, rows_per_token: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    allowed, _ = _pattern(layout, rows_per_token, device)
    with _normal_tensors():
        return torch.zeros((), dtype=dtype, device=device).masked_fill(~allowed, float("-inf"))


class KeyMask:
    """SDPA masks derived from a (B, S) bool key mask (True = valid), built once per
    forward and shared by every block of a stack. ``full`` (B, 1, 1, S) masks the keys of
    dense attention and of global queries; ``local`` (B·n_blocks, 1, 1, G+W) and
    ``local_b`` (B, 1, 1, G+W) mask the global keys of the sparse kernel's local blocks
    (None: all valid); pattern masks of the masked form are memoized per row count."""

    __slots__ = ("full", "local", "local_b", "_keys", "_memo")

    def __init__(self, layout: Layout, key_mask: torch.Tensor, sparse: bool) -> None:
        self.full = key_mask[:, None, None, :]
        self._keys, self._memo = key_mask, {}
        self.local = self.local_b = None
        G, W = layout.n_global, layout.block
        if sparse and G and layout.segments and uses_sparse_kernel(layout):
            B, nb = key_mask.shape[0], layout.n_blocks
            m = torch.cat([key_mask[:, :G], key_mask.new_ones(B, W)], dim=1)  # (B, G+W)
            self.local_b = m.view(B, 1, 1, G + W)
            self.local = self.local_b.unsqueeze(1).expand(B, nb, 1, 1, G + W)
            self.local = self.local.reshape(B * nb, 1, 1, G + W)

    @classmethod
    def build(cls, layout: Layout, key_mask: torch.Tensor, sparse: bool) -> KeyMask:
        return cls(layout, key_mask, sparse)

    def pattern(self, layout: Layout, rows_per_token: int, dtype: torch.dtype) -> torch.Tensor:
        """(B, 1, S·r, S) additive mask: the pattern, and masked keys except own block."""
        out = self._memo.get(rows_per_token)
        if out is None:
            allowed, own = _pattern(layout, rows_per_token, self._keys.device)
            ok = allowed & (self.full | own)  # (B, 1, S·r, S)
            out = torch.zeros((), dtype=dtype, device=ok.device).masked_fill(~ok, float("-inf"))
            self._memo[rows_per_token] = out
        return out


def pattern_mask(
    layout: Layout, rows_per_token: int, key_mask: KeyMask | None, like: torch.Tensor
) -> torch.Tensor:
    """The masked form's SDPA mask: a cached constant without a key mask."""
    if key_mask is None:
        return _pattern_additive(layout, rows_per_token, like.device, like.dtype)
    return key_mask.pattern(layout, rows_per_token, like.dtype)


def rows(q: torch.Tensor, n: int, group: int, hs: int) -> torch.Tensor:
    """(B, T, n·group·hs) tokens-major queries → (B, n, T·group, hs): the ``group`` query
    heads of each KV head stacked as extra rows (GQA without expanding K/V)."""
    B, T = q.shape[:2]
    if group == 1:
        return q.view(B, T, n, hs).transpose(1, 2)
    return q.reshape(B, T, n, group, hs).permute(0, 2, 1, 3, 4).reshape(B, n, T * group, hs)


def tokens(y: torch.Tensor, T: int, group: int) -> torch.Tensor:
    """Inverse of ``rows`` on an attention output: (B, n, T·group, hs) → (B, T, n·group·hs)."""
    B, n, _, hs = y.shape
    return y.view(B, n, T, group, hs).permute(0, 2, 1, 3, 4).reshape(B, T, n * group * hs)


def dense(q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None, group: int) -> torch.Tensor:
    """Attention over all keys (``mask`` may carry the pattern); ``kv`` (B, S, 2, n, hs);
    returns (B, S, nh·hs) tokens-major."""
    B, S, _, n, hs = kv.shape
    k, v = kv.unbind(2)  # each (B, S, n, hs)
    y = F.scaled_dot_product_attention(
        rows(q, n, group, hs), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
    )  # (B, n, S·group, hs)
    return tokens(y, S, group)


def block_sparse_mqa(
    q: torch.Tensor, kv: torch.Tensor, hs: int, layout: Layout, mask: KeyMask | None
) -> torch.Tensor:
    """SentryAttend with one KV head (the ``small`` preset and its pruned variants), in
    as few ops as possible: all query heads of a token are rows of one query matrix, and
    the (sample, block) pairs of the local part are SDPA's (batch, head) axes, so K/V
    are never expanded and the local output is already tokens-major. ``q`` (B, S, nh·hs)
    contiguous, ``kv`` (B, S, 2·hs) → (B, S, nh·hs)."""
    B, S, _ = q.shape
    nh = q.shape[2] // hs
    G, W, nb = layout.n_global, layout.block, layout.n_blocks
    # (B, nb·(G+W), 2hs): each block's globals then its own tokens
    kvl = kv.index_select(1, local_key_index(layout, kv.device)) if G else kv
    kl, vl = kvl.view(B, nb, G + W, 2 * hs).split(hs, dim=-1)  # (B, nb, G+W, hs) each
    ql = q[:, G:].view(B, nb, W * nh, hs)  # rows: (token in block, head)
    y_loc = F.scaled_dot_product_attention(
        ql, kl, vl, attn_mask=None if mask is None or mask.local is None else mask.local_b
    )  # (B, nb, W·nh, hs)
    if not G:
        return y_loc.view(B, S, nh * hs)
    k, v = kv.view(B, 1, S, 2 * hs).split(hs, dim=-1)  # (B, 1, S, hs) each
    y_glob = F.scaled_dot_product_attention(
        q[:, :G].view(B, 1, G * nh, hs), k, v, attn_mask=None if mask is None else mask.full
    )  # (B, 1, G·nh, hs)
    return torch.cat([y_glob.view(B, G, nh * hs), y_loc.view(B, S - G, nh * hs)], dim=1)


def block_sparse(
    q: torch.Tensor, kv: torch.Tensor, layout: Layout, mask: KeyMask | None, group: int
) -> torch.Tensor:
    """SentryAttend's pattern; ``q`` (B, S, nh·hs), ``kv`` (B, S, 2, n, hs); returns
    (B, S, nh·hs). Global queries: one SDPA over all keys. Local queries: one SDPA batched
    over (sample, block), keys = that block's globals + own tokens, gathered in one op.

    Local queries need no per-sample mask on their own block: a block belongs to one
    modality, and if that modality is masked for a sample its tokens' outputs are never
    read by a valid token (they are masked as keys everywhere else). Only the global keys
    can be masked (e.g. a missing modality's summary token in late fusion).
    """
    B, S, _, n, hs = kv.shape
    G, W, nb = layout.n_global, layout.block, layout.n_blocks
    # (B, nb·(G+W), 2, n, hs): each block's globals then its own tokens
    kvl = kv.index_select(1, local_key_index(layout, kv.device)) if G else kv
    kvl = kvl.view(B, nb, G + W, 2, n, hs).permute(3, 0, 1, 4, 2, 5)  # (2, B, nb, n, G+W, hs)
    kl = kvl[0].reshape(B * nb, n, G + W, hs)  # views at batch 1
    vl = kvl[1].reshape(B * nb, n, G + W, hs)
    ql = q[:, G:].reshape(B, nb, W, n, group, hs).permute(0, 1, 3, 2, 4, 5)
    ql = ql.reshape(B * nb, n, W * group, hs)  # (B·nb, n, W·group, hs)
    y_loc = F.scaled_dot_product_attention(
        ql, kl, vl, attn_mask=None if mask is None else mask.local
    )  # (B·nb, n, W·group, hs)
    y_loc = y_loc.view(B, nb, n, W, group, hs).permute(0, 1, 3, 2, 4, 5).reshape(B, S - G, -1)
    if not G:
        return y_loc
    k, v = kv.unbind(2)  # each (B, S, n, hs)
    y_glob = F.scaled_dot_product_attention(
        rows(q[:, :G], n, group, hs),
        k.transpose(1, 2),
        v.transpose(1, 2),
        attn_mask=None if mask is None else mask.full,
    )  # (B, n, G·group, hs)
    return torch.cat([tokens(y_glob, G, group), y_loc], dim=1)  # (B, S, nh·hs)
