"""The three multimodal fusion backbones, all built from ``Block``.

* ``early``: tokenizers → [CLS, tokens of every modality] → joint encoder ``joint.{i}``.
* ``late`` (MAESTRO-like): per-modality encoders ``enc.{m}.{i}`` on [CLS_m, tokens_m],
  then fusion layers ``fusion.{i}`` on [CLS, CLS_1..CLS_M, tokens_1..tokens_M].
* ``bottleneck`` (Nagrani et al. 2021): per-modality streams ``stream.{m}.{i}`` on
  [fusion tokens, tokens_m]; the fusion tokens are averaged over the modalities present
  after every layer, so modalities exchange information only through them.

Missing modalities: a modality absent from ``inputs`` is skipped for the whole batch;
``present[:, j]`` False masks modality j for that sample (its tokens are masked keys; in
``bottleneck`` its stream is left out of the fusion-token average). Nothing is zero-filled.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from sentryfuse.errors import ModelError
from sentryfuse.models.attention import KeyMask, Layout
from sentryfuse.models.block import Block, Tokenizer
from sentryfuse.models.config import ModelConfig


class MultimodalTransformer(nn.Module):
    """Base: tokenizers, head, input checks and the per-subset layout cache."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.tok = nn.ModuleDict(
            {m.name: Tokenizer(m, d) for m in config.modalities if m.name in config.available}
        )
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.num_classes)
        self._col = {name: j for j, name in enumerate(config.modality_names)}
        self._cache: dict[tuple, object] = {}  # per present-subset layouts and index tensors

    def _block(self, name: str) -> Block:
        c = self.config
        return Block(
            c.d_model, c.head_dim, c.block_shape(name), c.attention == "sentryattend", c.dropout
        )

    def blocks(self) -> list[tuple[str, Block]]:
        """All blocks in a stable order, named like their state-dict prefix."""
        return [(name, mod) for name, mod in self.named_modules() if isinstance(mod, Block)]

    def _names(self, inputs: Mapping[str, torch.Tensor]) -> tuple[str, ...]:
        """Modalities used for this batch, in config order; unknown names are an error."""
        toks = self.tok
        for name, x in inputs.items():
            if name not in toks:
                if name not in self._col:
                    raise ModelError(f"unknown modality '{name}'; this model has {list(self._col)}")
                continue  # a modality this pruned variant dropped: ignored by design
            tok, shape = toks[name], x.shape
            if len(shape) != 3 or shape[1] != tok.steps or shape[2] != tok.features:
                raise ModelError(
                    f"modality '{name}' input is {tuple(x.shape)}, expected (B, {tok.steps}, {tok.features})"
                )
        names = tuple(n for n in toks if n in inputs)
        if not names:
            raise ModelError(
                f"no usable modality in inputs {sorted(inputs)}; need one of {list(self.tok)}"
            )
        return names

    def _cols(self, names: tuple[str, ...], device: torch.device) -> torch.Tensor:
        key = ("cols", names, device)
        if key not in self._cache:
            self._cache[key] = torch.tensor([self._col[n] for n in names], device=device)
        return self._cache[key]  # type: ignore[return-value]

    def _key_mask(
        self, present: torch.Tensor | None, names: tuple[str, ...], n_global: int, per_token: bool
    ) -> torch.Tensor | None:
        """(B, S) bool key mask: globals valid, then each modality's tokens ← present[:, j].
        ``per_token`` False gives one entry per modality (late fusion's CLS_m tokens)."""
        if present is None:
            return None
        key = ("mask", names, n_global, per_token, present.device)
        if key not in self._cache:
            idx = [0] * n_global
            for j, n in enumerate(names):
                idx += [j + 1] * (self.tok[n].tokens if per_token else 1)
            self._cache[key] = torch.tensor(idx, device=present.device)
        p = present.index_select(1, self._cols(names, present.device))  # (B, M')
        p = torch.cat([p.new_ones(p.shape[0], 1), p], dim=1)  # (B, 1+M')
        return p.index_select(1, self._cache[key])  # type: ignore[arg-type]

    def _layout(self, tag: str, n_global: int, segments: tuple[int, ...]) -> Layout:
        key = ("layout", tag, n_global, segments)
        if key not in self._cache:
            self._cache[key] = Layout.make(n_global, segments, self.config.window)
        return self._cache[key]  # type: ignore[return-value]

    def _check_present(self, present: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if present is None:
            return None
        if present.dtype != torch.bool or tuple(present.shape) != (batch, len(self._col)):
            raise ModelError(
                f"present must be a bool tensor of shape ({batch}, {len(self._col)}), "
                f"got {present.dtype}{tuple(present.shape)}"
            )
        return present

    def forward(
        self, inputs: Mapping[str, torch.Tensor], present: torch.Tensor | None = None
    ) -> torch.Tensor:
        names = self._names(inputs)
        batch = inputs[names[0]].shape[0]
        tokens = [self.tok[n](inputs[n]) for n in names]  # each (B, L_m, d)
        if self.training and self.config.dropout > 0:
            tokens = [F.dropout(t, self.config.dropout, True) for t in tokens]
        h = self.fuse(names, tokens, self._check_present(present, batch))  # (B, d)
        return self.head(self.ln_f(h))  # (B, classes)

    def fuse(
        self, names: tuple[str, ...], tokens: list[torch.Tensor], present: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError


class EarlyFusion(MultimodalTransformer):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.cls = nn.Parameter(torch.randn(1, 1, config.d_model) * 0.02)
        self.joint = nn.ModuleList(self._block(f"joint.{i}") for i in range(config.n_layer))

    def fuse(self, names, tokens, present):
        B = tokens[0].shape[0]
        x = torch.cat([self.cls.expand(B, -1, -1), *tokens], dim=1)  # (B, 1+ΣL, d)
        layout = self._layout("joint", 1, tuple(t.shape[1] for t in tokens))
        mask = self._key_mask(present, names, 1, True)
        if mask is not None:  # once per forward, shared by the blocks
            mask = KeyMask.build(layout, mask, self.config.attention == "sentryattend")
        for block in self.joint:
            x = block(x, layout, mask)
        return x[:, 0]  # (B, d)


class LateFusion(MultimodalTransformer):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        d, avail = config.d_model, config.available
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.enc_cls = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(1, 1, d) * 0.02) for m in avail}
        )
        self.enc = nn.ModuleDict(
            {
                m: nn.ModuleList(self._block(f"enc.{m}.{i}") for i in range(config.n_enc_layer))
                for m in avail
            }
        )
        self.fusion = nn.ModuleList(
            self._block(f"fusion.{i}") for i in range(config.n_fusion_layer)
        )

    def fuse(self, names, tokens, present):
        B = tokens[0].shape[0]
        summaries, encoded = [], []
        enc, enc_cls = self.enc, self.enc_cls
        for n, t in zip(names, tokens, strict=True):
            h = torch.cat([enc_cls[n].expand(B, -1, -1), t], dim=1)  # (B, 1+L_m, d)
            layout = self._layout(n, 1, (t.shape[1],))
            for block in enc[n]:
                h = block(h, layout, None)  # own modality only: nothing to mask
            summaries.append(h[:, :1])
            encoded.append(h[:, 1:])
        M = len(names)
        x = torch.cat([self.cls.expand(B, -1, -1), *summaries, *encoded], dim=1)
        layout = self._layout("fusion", 1 + M, tuple(t.shape[1] for t in encoded))  # 1+M+ΣL
        mask = None
        if present is not None:
            mask = torch.cat(
                [self._key_mask(present, names, 1, False), self._key_mask(present, names, 0, True)],
                dim=1,
            )  # (B, 1+M+ΣL)
            mask = KeyMask.build(layout, mask, self.config.attention == "sentryattend")
        for block in self.fusion:
            x = block(x, layout, mask)
        return x[:, 0]  # (B, d)


class BottleneckFusion(MultimodalTransformer):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        d, avail = config.d_model, config.available
        self.fusion_tokens = nn.Parameter(torch.randn(1, config.n_fusion_tokens, d) * 0.02)
        self.stream = nn.ModuleDict(
            {
                m: nn.ModuleList(self._block(f"stream.{m}.{i}") for i in range(config.n_layer))
                for m in avail
            }
        )

    def fuse(self, names, tokens, present):
        B, F_ = tokens[0].shape[0], self.config.n_fusion_tokens
        fus = self.fusion_tokens.expand(B, -1, -1)  # (B, F, d)
        weight = None
        if present is not None:
            w = present.index_select(1, self._cols(names, present.device)).to(fus.dtype)  # (B, M')
            weight = (w / w.sum(1, keepdim=True).clamp(min=1.0))[:, :, None, None]  # (B, M', 1, 1)
        layouts = [self._layout(n, F_, (t.shape[1],)) for n, t in zip(names, tokens, strict=True)]
        blocks = [self.stream[n] for n in names]
        for i in range(self.config.n_layer):
            outs = []
            for j in range(len(names)):
                h = blocks[j][i](
                    torch.cat([fus, tokens[j]], dim=1), layouts[j], None
                )  # (B, F+L_m, d)
                outs.append(h[:, :F_])
                tokens[j] = h[:, F_:]
            stacked = torch.stack(outs, dim=1)  # (B, M', F, d)
            fus = stacked.mean(1) if weight is None else (stacked * weight).sum(1)  # (B, F, d)
        return fus.mean(1)  # (B, d)


_CLASSES = {"early": EarlyFusion, "late": LateFusion, "bottleneck": BottleneckFusion}


def build_model(config: ModelConfig) -> MultimodalTransformer:
    """Build the backbone a config names (dense init, or the shapes of a pruned variant)."""
    return _CLASSES[config.backbone](config)
