"""Per-unit importance scores for every pruning method except Fisher's full pipeline.

Each function returns ``{block: (head_scores (H,), channel_scores (F,))}`` (higher =
keep) for the blocks of a dense model; ``budget.py`` turns scores into KeepSets and
``prune_model`` does the physical work, so methods differ only here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from sentryfuse.data.base import Split
from sentryfuse.errors import PruneError

Scores = dict[str, tuple[torch.Tensor, torch.Tensor]]


def block_sizes(model: nn.Module) -> dict[str, tuple[int, int]]:
    """``{block: (n_head, d_ff)}`` read from the gates (the shapes the weights really have)."""
    return {
        name: (int(b.attn.head_gate.numel()), int(b.mlp.ffn_gate.numel()))
        for name, b in model.blocks()
    }


def random_scores(model: nn.Module, seed: int = 0) -> Scores:
    """Uniform random scores from a seeded generator (the floor every method must beat)."""
    gen = torch.Generator().manual_seed(int(seed))
    return {
        name: (torch.rand(h, generator=gen), torch.rand(f, generator=gen))
        for name, (h, f) in block_sizes(model).items()
    }


@torch.no_grad()
def magnitude_scores(model: nn.Module) -> Scores:
    """L2 norm of the weights each unit owns.

    A head owns its rows of ``q``, the rows of the KV head it reads in ``k``/``v`` (shared
    under GQA, so shared heads get the same KV term) and its columns of ``o``; an FFN
    channel owns its ``fc1`` row (and bias) and its ``fc2`` column.
    """
    out: Scores = {}
    for name, block in model.blocks():
        attn, mlp = block.attn, block.mlp
        n_head = attn.head_gate.numel()
        hd = attn.q.weight.shape[0] // n_head
        q = attn.q.weight.view(n_head, hd, -1).pow(2).sum((1, 2))
        n_kv = attn.k.weight.shape[0] // hd
        k = attn.k.weight.view(n_kv, hd, -1).pow(2).sum((1, 2))
        v = attn.v.weight.view(n_kv, hd, -1).pow(2).sum((1, 2))
        o = attn.o.weight.view(attn.o.weight.shape[0], n_head, hd).pow(2).sum((0, 2))
        kv = attn.kv_index.long()
        heads = (q + k[kv] + v[kv] + o).sqrt()
        fc1 = mlp.fc1.weight.pow(2).sum(1)
        if mlp.fc1.bias is not None:
            fc1 = fc1 + mlp.fc1.bias.pow(2)
        chans = (fc1 + mlp.fc2.weight.pow(2).sum(0)).sqrt()
        out[name] = (heads.float().clone(), chans.float().clone())
    return out


def calib_batches(
    split: Split,
    modalities: Sequence[str],
    present: Sequence[str] | None,
    *,
    batch_size: int,
    present_mask: np.ndarray | None = None,
):
    """Yield ``(inputs, present_tensor | None, labels)`` over a calibration split.

    A fixed ``present`` subset is passed by leaving absent modalities out of ``inputs``
    (their encoders are skipped, as on the device); a per-sample ``present_mask``
    ``(N, M)`` is passed as the model's ``present`` argument.
    """
    names = [m for m in modalities if present is None or m in present]
    n = len(split)
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        inputs = {m: torch.from_numpy(np.ascontiguousarray(split.x[m][sl])) for m in names}
        mask = None if present_mask is None else torch.from_numpy(present_mask[sl].copy())
        yield inputs, mask, torch.from_numpy(np.ascontiguousarray(split.y[sl]))


def taylor_scores(
    model: nn.Module,
    calib: Split | None,
    modalities: Sequence[str],
    present: Sequence[str] | None,
    *,
    batch_size: int = 64,
    present_mask: np.ndarray | None = None,
) -> Scores:
    """First-order Taylor saliency |ξ ∂L/∂ξ| accumulated over calibration batches.

    ``taylor`` calls this with every modality present; ``taylor-calib`` with the
    deployment condition (the data-hungry upper reference SentryGate must approach).
    Per-batch saliencies are summed, weighted by batch size.
    """
    from sentryfuse.gate import unit_saliency

    if calib is None or len(calib) == 0:
        raise PruneError("this method needs calibration data; pass calib= (or --calib-samples N)")
    total: Scores = {}
    for inputs, mask, labels in calib_batches(
        calib, modalities, present, batch_size=batch_size, present_mask=present_mask
    ):
        sal = unit_saliency(model, inputs, labels, _present_arg(mask, modalities, present, labels))
        w = float(labels.shape[0])
        for name, (h, c) in sal.items():
            h, c = h.detach().float() * w, c.detach().float() * w
            if name in total:
                total[name] = (total[name][0] + h, total[name][1] + c)
            else:
                total[name] = (h, c)
    return total


def _present_arg(
    mask: torch.Tensor | None,
    modalities: Sequence[str],
    present: Sequence[str] | None,
    labels: torch.Tensor,
) -> torch.Tensor:
    """unit_saliency's ``present``: ``(B, M)`` per-sample, else one ``(M,)`` row for the batch."""
    if mask is not None:
        return mask
    return torch.tensor([present is None or m in present for m in modalities], dtype=torch.bool)


@torch.no_grad()
def sentrygate_scores(scorer: nn.Module | None, modalities: Sequence[str], present) -> Scores:
    """Scores from the checkpoint's ImportanceScorer for the present-modality mask.

    No data: the scorer maps the presence mask to importance, which is what lets a
    device re-prune on its own when a sensor disappears.
    """
    if scorer is None:
        raise PruneError(
            "checkpoint has no SentryGate scorer; retrain it with sentryfuse train "
            "or pick a baseline method (e.g. --method taylor)"
        )
    mask = torch.tensor([present is None or m in present for m in modalities], dtype=torch.bool)
    raw = scorer(mask)
    # The scorer emits logits trained against per-layer saliency distributions (softmax);
    # the budget wants non-negative importances, so hand it the predicted distribution.
    return {
        name: (torch.softmax(h.detach().float(), -1), torch.softmax(c.detach().float(), -1))
        for name, (h, c) in raw.items()
    }
