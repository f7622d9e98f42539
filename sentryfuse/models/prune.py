"""Physical pruning: rebuild a model with smaller weight matrices.

A mask saves nothing on a device, so ``prune_model`` slices the kept heads, the KV heads
they still read, and the kept FFN channels into a *new* model whose config records the
shapes (a manifest). Absent modalities lose their tokenizer and encoder/stream blocks.
The new model is built on the meta device and its sliced weights assigned, so no random
init runs: re-pruning on a sensor or power change takes milliseconds.

Identity: the pruned model's output equals the dense model's with the removed units'
gates set to 0 (gates of kept units are copied, so a non-1 gate survives).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from sentryfuse.errors import PruneError, unknown_name
from sentryfuse.models.attention_kernels import Layout, uses_sparse_kernel
from sentryfuse.models.backbones import MultimodalTransformer, build_model
from sentryfuse.models.block import Block
from sentryfuse.models.config import BlockShape, with_shapes


@dataclass(frozen=True)
class KeepSet:
    """Units of one block to keep: query-head indices and FFN-channel indices."""

    heads: list[int]
    channels: list[int]


@dataclass(frozen=True)
class UnitCost:
    """Per-sample FLOPs of one head (with its share of its KV head) and of one FFN
    channel in a block, at ``tokens`` tokens with every available modality present."""

    head_flops: float
    channel_flops: float
    tokens: int


def block_modality(name: str, modalities: Sequence[str]) -> str | None:
    """The modality a block belongs to (``enc.acc.1`` → ``acc``), or None if shared."""
    parts = name.split(".")
    if parts[0] in ("enc", "stream") and parts[1] in modalities:
        return parts[1]
    return None


def _check_present(model: MultimodalTransformer, present: Sequence[str] | None) -> list[str]:
    avail = model.config.available
    if present is None:
        return list(avail)
    for name in present:
        if name not in avail:
            raise PruneError(unknown_name("modality", name, avail))
    kept = [n for n in avail if n in set(present)]
    if not kept:
        raise PruneError(f"cannot drop every modality; keep at least one of {avail}")
    return kept


def _units(idx: Sequence[int], limit: int, what: str, block: str) -> list[int]:
    out = sorted({int(i) for i in idx})
    if out and (out[0] < 0 or out[-1] >= limit):
        raise PruneError(f"block {block}: {what} index out of range 0..{limit - 1}")
    return out


def _rows(units: list[int], size: int) -> torch.Tensor:
    """Row indices of ``units`` each ``size`` wide (a head's hs rows in q/k/v)."""
    base = torch.tensor(units, dtype=torch.long)
    return (base[:, None] * size + torch.arange(size)[None, :]).reshape(-1)


def _slice_block(
    prefix: str, block: Block, keep: KeepSet | None, out: dict[str, torch.Tensor]
) -> BlockShape:
    a, m = block.attn, block.mlp
    if keep is None:
        for k, t in block.state_dict().items():
            out[f"{prefix}.{k}"] = t.clone()
        return block.shape
    heads = _units(keep.heads, a.n_head, "head", prefix)
    chans = _units(keep.channels, m.d_ff, "channel", prefix)
    kv_used = sorted({a.kv_list[h] for h in heads})
    remap = {kv: i for i, kv in enumerate(kv_used)}
    kv_index = [remap[a.kv_list[h]] for h in heads]
    hs = a.head_dim
    q_rows, kv_rows = _rows(heads, hs), _rows(kv_used, hs)
    ch = torch.tensor(chans, dtype=torch.long)
    p = prefix
    out[f"{p}.ln1.weight"], out[f"{p}.ln1.bias"] = (
        block.ln1.weight.detach().clone(),
        block.ln1.bias.detach().clone(),
    )
    out[f"{p}.ln2.weight"], out[f"{p}.ln2.bias"] = (
        block.ln2.weight.detach().clone(),
        block.ln2.bias.detach().clone(),
    )
    for lin, rows in (("q", q_rows), ("k", kv_rows), ("v", kv_rows)):
        layer = getattr(a, lin)
        out[f"{p}.attn.{lin}.weight"] = layer.weight.detach().index_select(0, rows)
        out[f"{p}.attn.{lin}.bias"] = layer.bias.detach().index_select(0, rows)
    out[f"{p}.attn.o.weight"] = a.o.weight.detach().index_select(1, q_rows)
    out[f"{p}.attn.o.bias"] = a.o.bias.detach().clone()
    out[f"{p}.attn.kv_index"] = torch.tensor(kv_index, dtype=torch.long)
    out[f"{p}.attn.head_gate"] = a.head_gate.detach().index_select(
        0, torch.tensor(heads, dtype=torch.long)
    )
    out[f"{p}.mlp.fc1.weight"] = m.fc1.weight.detach().index_select(0, ch)
    out[f"{p}.mlp.fc1.bias"] = m.fc1.bias.detach().index_select(0, ch)
    out[f"{p}.mlp.ffn_gate"] = m.ffn_gate.detach().index_select(0, ch)
    out[f"{p}.mlp.fc2.weight"] = m.fc2.weight.detach().index_select(1, ch)
    out[f"{p}.mlp.fc2.bias"] = m.fc2.bias.detach().clone()
    return BlockShape(len(heads), len(kv_used), kv_index, len(chans))


def prune_model(
    model: MultimodalTransformer, keep: Mapping[str, KeepSet], present: Sequence[str] | None = None
) -> MultimodalTransformer:
    """A new, physically smaller model: for each block in ``keep`` only those heads and
    channels (blocks not in ``keep`` are copied whole); only the ``present`` modalities'
    tokenizers and encoders. The original model is left untouched."""
    config = model.config
    kept = _check_present(model, present)
    dropped = [n for n in config.available if n not in kept]
    blocks = dict(model.blocks())
    unknown = set(keep) - set(blocks)
    if unknown:
        raise PruneError(unknown_name("block", sorted(unknown)[0], blocks))
    state: dict[str, torch.Tensor] = {}
    shapes: dict[str, BlockShape] = {}
    with torch.no_grad():
        for name, block in blocks.items():
            if block_modality(name, dropped) is None:
                shapes[name] = _slice_block(name, block, keep.get(name), state)
        for k, t in model.state_dict().items():
            top = k.split(".")
            if top[0] in ("tok", "enc_cls", "enc", "stream") and top[1] in dropped:
                continue
            if k not in state and not any(k.startswith(f"{b}.") for b in blocks):
                state[k] = t.clone()
    new_config = with_shapes(
        config, shapes, kept if dropped or config.present is not None else None
    )
    with torch.device("meta"):
        new = build_model(new_config)
    new.load_state_dict(state, strict=True, assign=True)
    new.train(model.training)
    return new


def unit_costs(model: MultimodalTransformer) -> dict[str, UnitCost]:
    """FLOPs per sample of one head and one FFN channel in every block (multiply-add = 2
    FLOPs), for FLOPs-budget pruning. Counts the projections, the attention matmuls as
    the block computes them (all pairs, or SentryAttend's block-sparse kernel) and fc1/fc2."""
    c = model.config
    d, hs = c.d_model, c.head_dim
    L = {m.name: m.tokens for m in c.modalities}
    avail = c.available
    out: dict[str, UnitCost] = {}
    for name, block in model.blocks():
        parts = name.split(".")
        if parts[0] == "joint":
            G, segs = 1, tuple(L[m] for m in avail)
        elif parts[0] == "enc":
            G, segs = 1, (L[parts[1]],)
        elif parts[0] == "fusion":
            G, segs = 1 + len(avail), tuple(L[m] for m in avail)
        else:  # stream
            G, segs = c.n_fusion_tokens, (L[parts[1]],)
        lay = Layout.make(G, segs, c.window)
        S = lay.length
        # SentryAttend's block-sparse kernel saves attention FLOPs; its masked form (short
        # sequences, see attention_kernels) computes all pairs, as dense attention does.
        sparse = c.attention == "sentryattend" and uses_sparse_kernel(lay)
        pairs = G * S + (S - G) * (G + lay.block) if sparse else S * S
        a = block.attn
        share = (a.n_kv / a.n_head) if a.n_head else 0.0
        head = 2 * S * d * hs * 2 + 2 * pairs * hs * 2 + share * 2 * S * d * hs * 2
        out[name] = UnitCost(float(head), float(2 * S * d * 2), S)
    return out
