"""Kwon et al.'s least-squares mask tuning, adapted to our pre-LN blocks.

After the mask search, the kept units' mask values are no longer forced to 1: for each
sub-layer, in forward order, they are the least-squares solution that makes the pruned
model's sub-layer output (with its residual) match the unpruned teacher's on calibration
data. Layer by layer, the student's inputs already carry the tuned earlier layers, so each
solve corrects the error that reaches it. Our blocks are ``x + attn(ln1(x))`` then
``x + mlp(ln2(x))``, so the targets are ``x₁ = x + attn`` and ``x₂ = x₁ + mlp``.

Each problem is linear in the mask values m: the attention output is ``Σ_h m_h o_h(y_h) +
b_o`` (``o_h``: head h's columns of ``o``), the FFN output ``Σ_c m_c h_c w_c + b_2``. The
normal equations are accumulated over batches (memory independent of the data size);
attention gets Kwon's extra all-ones column (a free offset, dropped after the solve).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from sentryfuse.prune.fisher import MAX_SCALE, KeepIdx

Batch = dict[str, torch.Tensor]


class _Stop(Exception):
    """Raised by a hook once the block of interest has run: later blocks are not needed."""


class _Capture:
    """Forward hooks on one block: its input, attn/mlp outputs, o/fc2 inputs."""

    def __init__(self, block: nn.Module, stop: bool = False) -> None:
        self.data: dict[str, torch.Tensor] = {}
        self.handles = [
            block.register_forward_pre_hook(self._pre("x")),
            block.attn.o.register_forward_pre_hook(self._pre("y")),
            block.mlp.fc2.register_forward_pre_hook(self._pre("h")),
            block.attn.register_forward_hook(self._post("attn")),
            block.mlp.register_forward_hook(self._post("mlp")),
        ]
        if stop:
            self.handles.append(block.register_forward_hook(self._stop))

    @staticmethod
    def _stop(_m, _args, _out):
        raise _Stop

    def _pre(self, key: str):
        def hook(_m, args):
            self.data[key] = args[0].detach()

        return hook

    def _post(self, key: str):
        def hook(_m, _args, out):
            self.data[key] = out.detach()

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@torch.no_grad()
def _run(model: nn.Module, block: nn.Module, batches: Sequence[Batch]) -> list[dict]:
    """Run ``model`` up to ``block`` over calibration batches; its captures per batch."""
    cap = _Capture(block, stop=True)
    out = []
    try:
        for inputs in batches:
            cap.data = {}
            with contextlib.suppress(_Stop):
                model(inputs)
            out.append(dict(cap.data))
    finally:
        cap.close()
    return out


@torch.no_grad()
def _targets(teacher: nn.Module, batches: Sequence[Batch]) -> dict[str, list[tuple]]:
    """Teacher sub-layer outputs ``(x₁, x₂)`` per block and batch, all in one pass."""
    caps = {name: _Capture(block) for name, block in teacher.blocks()}
    out: dict[str, list[tuple]] = {name: [] for name in caps}
    try:
        for inputs in batches:
            for cap in caps.values():
                cap.data = {}
            teacher(inputs)
            for name, cap in caps.items():
                c = cap.data
                if "x" in c:
                    out[name].append((c["x"] + c["attn"], c["x"] + c["attn"] + c["mlp"]))
    finally:
        for cap in caps.values():
            cap.close()
    return {name: v for name, v in out.items() if v}


def _solve(ata: torch.Tensor, atb: torch.Tensor) -> torch.Tensor | None:
    sol = torch.linalg.lstsq(ata, atb.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    return sol if torch.isfinite(sol).all() else None


@torch.no_grad()
def _tune_heads(student, block, kept, batches, targets) -> torch.Tensor | None:
    attn = block.attn
    hs, k = attn.head_dim, len(kept)
    w = attn.o.weight.double().view(-1, attn.n_head, hs)[:, kept]  # (d, K, hs)
    ata = torch.zeros(k + 1, k + 1, dtype=torch.float64)
    atb = torch.zeros(k + 1, dtype=torch.float64)
    for cap, (t1, _) in zip(_run(student, block, batches), targets, strict=True):
        y = cap["y"].double().view(*cap["y"].shape[:2], attn.n_head, hs)[:, :, kept]  # (B,S,K,hs)
        a = torch.einsum("bskh,dkh->bskd", y, w).reshape(-1, k, w.shape[0])  # (N, K, d)
        a = torch.cat(
            [a.permute(0, 2, 1).reshape(-1, k), a.new_ones(a.shape[0] * a.shape[2], 1)], 1
        )
        b = (t1.double() - cap["x"].double() - attn.o.bias.double()).reshape(-1)
        ata += a.t() @ a
        atb += a.t() @ b
    sol = _solve(ata, atb)
    return None if sol is None else sol[:-1]


@torch.no_grad()
def _tune_channels(student, block, kept, batches, targets) -> torch.Tensor | None:
    fc2 = block.mlp.fc2
    w = fc2.weight.double()[:, kept].t()  # (K, d)
    gram_w = w @ w.t()
    k = len(kept)
    ata = torch.zeros(k, k, dtype=torch.float64)
    atb = torch.zeros(k, dtype=torch.float64)
    for cap, (_, t2) in zip(_run(student, block, batches), targets, strict=True):
        h = cap["h"].double().reshape(-1, cap["h"].shape[-1])[:, kept]  # (N, K)
        x1 = (cap["x"] + cap["attn"]).double().reshape(h.shape[0], -1)
        b = t2.double().reshape(h.shape[0], -1) - x1 - fc2.bias.double()  # (N, d)
        ata += gram_w * (h.t() @ h)
        atb += (h * (b @ w.t())).sum(0)
    return _solve(ata, atb)


def set_binary_gates(model: nn.Module, keep: KeepIdx) -> None:
    """Gates 1 on kept units, 0 elsewhere: the untuned pruned model, as masks."""
    with torch.no_grad():
        for name, block in model.blocks():
            h, c = keep.get(name, (list(range(block.attn.n_head)), list(range(block.mlp.d_ff))))
            block.attn.head_gate.zero_()[h] = 1.0
            block.mlp.ffn_gate.zero_()[c] = 1.0


def tune_masks(
    model: nn.Module, keep: KeepIdx, batches: Sequence[Batch]
) -> tuple[nn.Module, dict[str, int]]:
    """Least-squares mask tuning; returns a copy whose gates hold the tuned mask values.

    The second value counts the solved sub-layers and whether the tuning stopped early on
    an out-of-range scale (the released code's safety rule).
    """
    teacher = model.eval()
    targets = _targets(teacher, batches)
    student = copy.deepcopy(model).eval()
    set_binary_gates(student, keep)
    solved = {"attention": 0, "ffn": 0, "stopped": 0}
    for name, block in student.blocks():
        if name not in targets or name not in keep:
            continue
        heads, chans = keep[name]
        for kind, kept, fn, gate in (
            ("attention", heads, _tune_heads, block.attn.head_gate),
            ("ffn", chans, _tune_channels, block.mlp.ffn_gate),
        ):
            if not kept:
                continue
            scale = fn(student, block, kept, batches, targets[name])
            if scale is None or scale.abs().max() > MAX_SCALE:
                solved["stopped"] = 1
                return student, solved
            with torch.no_grad():
                gate[kept] = scale.to(gate.dtype)
            solved[kind] += 1
    return student, solved


@torch.no_grad()
def fold_gates(model: nn.Module) -> nn.Module:
    """Multiply gate values into ``o`` / ``fc2`` columns and reset gates to 1 (in place)."""
    for _, block in model.blocks():
        attn, mlp = block.attn, block.mlp
        hs = attn.head_dim
        cols = attn.head_gate.repeat_interleave(hs)
        attn.o.weight.mul_(cols.view(1, -1))
        mlp.fc2.weight.mul_(mlp.ffn_gate.view(1, -1))
        attn.head_gate.fill_(1.0)
        mlp.ffn_gate.fill_(1.0)
    return model


@torch.no_grad()
def reconstruction_error(
    teacher: nn.Module, student: nn.Module, batches: Iterable[Batch]
) -> dict[str, float]:
    """Per block, ‖x₂ˢ − x₂ᵗ‖² / ‖x₂ᵗ‖² of the block outputs on calibration batches."""
    batches = list(batches)
    t_blocks: Mapping[str, nn.Module] = dict(teacher.blocks())
    out = {}
    for name, s_block in student.blocks():
        t_caps = _run(teacher, t_blocks[name], batches)
        s_caps = _run(student, s_block, batches)
        if not t_caps or "x" not in t_caps[0]:
            continue
        num = den = 0.0
        for t, s in zip(t_caps, s_caps, strict=True):
            xt = t["x"] + t["attn"] + t["mlp"]
            xs = s["x"] + s["attn"] + s["mlp"]
            num += float((xs - xt).double().pow(2).sum())
            den += float(xt.double().pow(2).sum())
        out[name] = num / max(den, 1e-30)
    return out
