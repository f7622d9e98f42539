"""The SentryGate scorer: modality-presence mask → importance of every head and channel.

At deployment the device knows only which sensors are present, has no labelled data and no
time to compute gradients. The scorer answers from the mask alone: a small MLP embeds the
mask, and one linear head per block emits a score for each attention head and each FFN
channel (the linear's bias is the learned per-unit prior, the weight the mask-dependent
part). It is tiny next to the backbone (a few thousand parameters per block), rebuilds from
JSON (``config()`` / ``from_config``) and ships in ``model.safetensors`` under ``scorer.``.

**Alignment loss (our choice: distribution KL, i.e. ListNet top-one with a saliency
target).** Two terms, both KL(target ‖ prediction):

- *within a layer* (the per-layer normalised saliency of the design): per block and unit
  kind, q = saliency / its sum, p = softmax(scores);
- *across layers*: per unit kind, the share of the total saliency that each block holds
  vs softmax over blocks of logsumexp(block scores).

Together they make ``exp(score)`` proportional to a unit's share of all saliency of its
kind (heads or channels) in the model, so scores rank units within a block *and* across
blocks — a global budget can compare them directly, and an absent modality's encoder
(saliency 0) scores far below everything else. Because single-batch saliency is noisy,
minimising the expected KL makes the prediction converge to the *mean* normalised
saliency for each mask — the quantity the pruner should rank by. A pairwise ranking loss
would be scale-free too but costs O(C²) per FFN layer and ignores how much more
important one unit is than another.

**Pinned patterns.** ``pin(mask)`` fixes the scores of one modality pattern to the
scorer's current output (a buffer, saved with the weights): the pattern then answers
from the buffer, and further alignment steps move only the patterns not pinned. Training
uses it to freeze the all-present ranking where the sub-network passes start while the
missing-sensor rankings keep learning until the backbone has trained without sensors
(``TrainConfig.subnet_pattern_lag_epochs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentryfuse.errors import ModelError, PruneError, unknown_name
from sentryfuse.gate.saliency import UnitScores, normalise_per_layer


class ImportanceScorer(nn.Module):
    """``scorer(mask (M,) or (B, M) bool) -> {block: (head_scores, channel_scores)}``."""

    def __init__(
        self,
        modalities: Sequence[str],
        blocks: Mapping[str, Sequence[int]],  # block name -> [n_head, d_ff]
        hidden: int = 64,
        pinned: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.block_names = list(blocks)
        self.block_shapes = {k: (int(v[0]), int(v[1])) for k, v in blocks.items()}
        self.hidden = int(hidden)
        m = len(self.modalities)
        self.embed = nn.Sequential(
            nn.Linear(m, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU()
        )
        # ModuleList, not ModuleDict: block names contain dots ("enc.acc.0").
        self.out = nn.ModuleList(nn.Linear(hidden, h + c) for h, c in self.block_shapes.values())
        for lin in self.out:  # start uniform: no unit preferred before any saliency is seen
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.width = sum(h + c for h, c in self.block_shapes.values())
        self.pinned: list[str] = []  # bit strings ("10": first present, second absent)
        for bits in pinned:
            self._add_pin(str(bits), torch.zeros(self.width))

    def _bits(self, mask: Tensor) -> str:
        mask = torch.as_tensor(mask, dtype=torch.bool).reshape(-1)
        if mask.numel() != len(self.modalities):
            raise ValueError(f"mask has {mask.numel()} entries, scorer has {len(self.modalities)}")
        return "".join("1" if b else "0" for b in mask.tolist())

    def _add_pin(self, bits: str, flat: Tensor) -> None:
        if len(bits) != len(self.modalities) or set(bits) - {"0", "1"} or "1" not in bits:
            raise ModelError(f"pinned pattern '{bits}' is not a non-empty modality pattern")
        if bits in self.pinned:
            raise ModelError(f"pattern '{bits}' is pinned twice")
        self.pinned.append(bits)
        self.register_buffer(f"pin_{bits}", flat.detach().clone().float())

    def is_pinned(self, mask: Tensor | Sequence[bool]) -> bool:
        return self._bits(torch.as_tensor(mask)) in self.pinned

    @torch.no_grad()
    def pin(self, mask: Tensor | Sequence[bool]) -> None:
        """Fix ``mask``'s scores to what the scorer answers now (no-op if already pinned)."""
        bits = self._bits(torch.as_tensor(mask))
        if bits not in self.pinned:
            self._add_pin(bits, self._flat(torch.as_tensor(mask, dtype=torch.bool)))

    @classmethod
    def for_model(cls, model: nn.Module, hidden: int = 64) -> ImportanceScorer:
        """A scorer shaped after ``model.blocks()`` and its modality list."""
        blocks = {
            name: [int(b.attn.head_gate.numel()), int(b.mlp.ffn_gate.numel())]
            for name, b in model.blocks()
        }
        return cls([m.name for m in model.config.modalities], blocks, hidden)

    def config(self) -> dict:
        """JSON-safe constructor arguments (``config.json["scorer"]``)."""
        return {
            "modalities": list(self.modalities),
            "blocks": {k: list(v) for k, v in self.block_shapes.items()},
            "hidden": self.hidden,
            **({"pinned": list(self.pinned)} if self.pinned else {}),
        }

    @classmethod
    def from_config(cls, cfg: Mapping) -> ImportanceScorer:
        try:
            return cls(
                cfg["modalities"],
                cfg["blocks"],
                int(cfg.get("hidden", 64)),
                pinned=list(cfg.get("pinned", [])),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(
                f"checkpoint scorer config is malformed ({exc!r}); retrain the checkpoint"
            ) from None

    def mask_for(self, present: Sequence[str]) -> Tensor:
        """``(M,)`` bool mask from present modality names (validated)."""
        for name in present:
            if name not in self.modalities:
                raise PruneError(unknown_name("modality", name, self.modalities))
        return torch.tensor([m in present for m in self.modalities], dtype=torch.bool)

    def _flat(self, mask: Tensor) -> Tensor:
        """``(..., width)``: every block's [heads, channels] scores, blocks in order."""
        x = mask.to(self.out[0].weight.dtype) * 2.0 - 1.0  # present +1, absent -1
        z = self.embed(x)  # (..., hidden)
        return torch.cat([lin(z) for lin in self.out], dim=-1)

    def forward(self, mask: Tensor) -> UnitScores:
        mask = torch.as_tensor(mask)
        flat = self._flat(mask)
        if self.pinned:
            bits = mask.to(torch.bool)
            for p in self.pinned:
                pattern = torch.tensor([c == "1" for c in p], dtype=torch.bool)
                rows = (bits == pattern).all(dim=-1, keepdim=True)  # (..., 1)
                flat = torch.where(rows, getattr(self, f"pin_{p}").to(flat.dtype), flat)
        out: UnitScores = {}
        at = 0
        for name in self.block_names:
            h, c = self.block_shapes[name]
            out[name] = (flat[..., at : at + h], flat[..., at + h : at + h + c])
            at += h + c
        return out

    @torch.no_grad()
    def scores_for(self, present: Sequence[str]) -> UnitScores:
        """Scores for a set of present modality names (what the pruner calls)."""
        return self(self.mask_for(present))


def alignment_loss(scores: UnitScores, saliency: UnitScores, layer_weight: float = 1.0) -> Tensor:
    """KL(per-layer normalised saliency ‖ softmax(scores)), averaged over (block, kind),
    plus ``layer_weight`` × KL(saliency share per block ‖ softmax of block logsumexp).

    ``saliency`` may be raw or already normalised for the first term; the second needs raw
    magnitudes (with normalised input every block has mass 1 and it only asks for equal
    shares). Scores may carry a leading batch dimension; targets broadcast over it.
    """
    if not saliency:
        raise ValueError("alignment_loss: no blocks to align")
    target = normalise_per_layer(saliency)
    within = []
    for name, (q_h, q_c) in target.items():
        s_h, s_c = scores[name]
        within += [_kl(q_h, s_h), _kl(q_c, s_c)]
    loss = torch.stack(within).mean()
    if layer_weight:
        across = []
        for kind in (0, 1):
            mass = torch.stack([saliency[n][kind].detach().float().sum(-1) for n in saliency])
            if float(mass.sum()) <= 0.0:
                continue  # no gradient signal at all in this batch
            lse = torch.stack([torch.logsumexp(scores[n][kind], dim=-1) for n in saliency], -1)
            across.append(_kl(mass / mass.sum(), lse))
        if across:
            loss = loss + layer_weight * torch.stack(across).mean()
    return loss


def _kl(q: Tensor, logits: Tensor) -> Tensor:
    """Mean over any batch dimension of KL(q ‖ softmax(logits)) along the last axis."""
    logp = F.log_softmax(logits, dim=-1)
    q = q.to(logp.dtype).detach()
    return (torch.xlogy(q, q) - q * logp).sum(dim=-1).mean()
