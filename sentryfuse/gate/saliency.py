"""First-order (Taylor) saliency of every attention head and FFN channel.

Each head output is multiplied by a gate ξ_h and each FFN hidden unit by ν_c, all equal to
1. Removing a unit sets its gate to 0, so the first-order estimate of the loss change is
``ξ · ∂L/∂ξ`` — its magnitude is the unit's saliency. Computing it with the modality mask
of the batch makes it *conditional* on which sensors are present: the quantity SentryGate's
scorer learns to predict from the mask alone.

``L`` is the mean cross-entropy of the batch, so with ``groups=1`` the saliency is exactly
``|ξ · ∂L̄/∂ξ|`` (what the finite-difference test checks). With ``groups=k`` the batch is
split into k chunks and ``|ξ · ∂L_chunk/∂ξ|`` is averaged over chunks: signed per-sample
gradients cancel less, which helps near convergence where the batch-mean gradient of a gate
tends to zero (the output projection has already absorbed its scale).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

UnitScores = dict[str, tuple[Tensor, Tensor]]  # block name -> (heads (H,), channels (C,))


def gate_params(model: nn.Module) -> dict[str, tuple[nn.Parameter, nn.Parameter]]:
    """``{block name: (head_gate, ffn_gate)}`` in the model's stable block order."""
    return {name: (blk.attn.head_gate, blk.mlp.ffn_gate) for name, blk in model.blocks()}


def modality_names(model: nn.Module) -> list[str]:
    """The model's modality order: the columns of every ``present`` mask."""
    return [m.name for m in model.config.modalities]


def restrict_inputs(
    model: nn.Module, inputs: Mapping[str, Tensor], present: Tensor | np.ndarray | None
) -> tuple[dict[str, Tensor], Tensor | None]:
    """Turn a presence mask into what the model takes.

    A 1-D ``(M,)`` mask is one pattern for the whole batch: absent modalities are removed
    from ``inputs`` (their encoders skipped, as on a device where the sensor is gone) and no
    per-sample mask is passed. A 2-D ``(B, M)`` mask is passed through unchanged.
    """
    if present is None:
        return dict(inputs), None
    present = torch.as_tensor(present, dtype=torch.bool)
    if present.ndim == 1:
        names = modality_names(model)
        keep = {n for n, p in zip(names, present.tolist(), strict=True) if p}
        return {k: v for k, v in inputs.items() if k in keep}, None
    return dict(inputs), present


def unit_saliency(
    model: nn.Module,
    inputs: Mapping[str, Tensor],
    labels: Tensor | np.ndarray,
    present: Tensor | np.ndarray | None = None,
    *,
    groups: int = 1,
) -> UnitScores:
    """``{block: (|ξ·∂L/∂ξ| per head (H,), |ν·∂L/∂ν| per channel (C,))}``, batch-averaged.

    Runs the model in eval mode (no dropout noise in the estimate) and leaves its mode, its
    gates' ``requires_grad`` and every ``.grad`` untouched. Units not on the computation
    path (an absent modality's encoder) get saliency 0.
    """
    gates = gate_params(model)
    flat = [p for pair in gates.values() for p in pair]
    saved = [p.requires_grad for p in flat]
    was_training = model.training
    feed, mask = restrict_inputs(model, inputs, present)
    labels = torch.as_tensor(labels, dtype=torch.long)
    n = int(labels.shape[0])
    chunks = [c for c in np.array_split(np.arange(n), max(1, min(groups, n))) if len(c)]
    acc = [torch.zeros_like(p, dtype=torch.float32) for p in flat]
    model.eval()
    try:
        for p in flat:
            p.requires_grad_(True)
        for idx in chunks:
            sel = torch.as_tensor(idx)
            sub = {k: v[sel] for k, v in feed.items()}
            logits = model(sub, None if mask is None else mask[sel])
            loss = F.cross_entropy(logits, labels[sel])
            grads = torch.autograd.grad(loss, flat, allow_unused=True)
            for a, g, p in zip(acc, grads, flat, strict=True):
                if g is not None:
                    a += (p.detach() * g).abs().float()
    finally:
        for p, r in zip(flat, saved, strict=True):
            p.requires_grad_(r)
        model.train(was_training)
    out: UnitScores = {}
    for i, name in enumerate(gates):
        out[name] = (acc[2 * i] / len(chunks), acc[2 * i + 1] / len(chunks))
    return out


def normalise_per_layer(saliency: UnitScores, eps: float = 1e-12) -> UnitScores:
    """Each block's head and channel saliencies as distributions (each sums to 1).

    Per-layer normalisation removes the scale differences between layers (deep layers'
    gradients are larger), leaving the within-layer ranking the scorer must learn. A layer
    with no saliency at all (not on the path) becomes uniform: nothing in it to rank.
    """
    out: UnitScores = {}
    for name, (heads, chans) in saliency.items():
        out[name] = (_to_dist(heads, eps), _to_dist(chans, eps))
    return out


def _to_dist(x: Tensor, eps: float) -> Tensor:
    total = x.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(x, 1.0 / x.shape[-1])
    return torch.where(total > eps, x / total.clamp_min(eps), uniform)
