"""Model configuration: what to build, as JSON-safe data.

A config fully determines the architecture, including the per-block shapes of a
physically pruned variant (``blocks``) and the modalities it still has (``present``), so a
variant is rebuilt from its manifest by the model code and never pickled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from sentryfuse.errors import ModelError, unknown_name

BACKBONES: tuple[str, ...] = ("early", "late", "bottleneck")
ATTENTIONS: tuple[str, ...] = ("dense", "sentryattend")
SIZES: tuple[str, ...] = ("small", "tiny")


@dataclass(frozen=True)
class ModalityInput:
    """One modality as the model sees it: ``(steps, features)`` cut into patches of
    ``patch`` steps, each patch one token (so tokens = steps // patch)."""

    name: str
    steps: int
    features: int
    patch: int = 1

    @property
    def tokens(self) -> int:
        return self.steps // self.patch


@dataclass(frozen=True)
class BlockShape:
    """Shape of one block after pruning: query heads, KV heads, the KV head each query
    head reads (uneven groups are fine), and FFN channels."""

    n_head: int
    n_kv: int
    kv_index: list[int]
    d_ff: int


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a ``MultimodalTransformer``."""

    backbone: str  # early | late | bottleneck
    attention: str  # dense | sentryattend
    modalities: list[ModalityInput]
    num_classes: int
    d_model: int = 128
    head_dim: int = 32
    n_head: int = 4
    n_kv_head: int = 4  # dense: = n_head; sentryattend: fewer KV heads shared by groups
    d_ff: int = 256
    n_layer: int = 4  # early: joint encoder depth; bottleneck: depth of each stream
    n_enc_layer: int = 2  # late: per-modality encoder depth
    n_fusion_layer: int = 2  # late: fusion depth
    n_fusion_tokens: int = 4  # bottleneck: shared fusion tokens
    window: int = 8  # sentryattend: local block size (tokens) inside a modality segment
    dropout: float = 0.0
    blocks: dict[str, BlockShape] | None = None  # pruned variant: explicit shapes
    present: list[str] | None = None  # pruned variant: modalities that still have weights
    extra: dict[str, Any] = field(default_factory=dict)  # free-form provenance

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ModelError(unknown_name("backbone", self.backbone, BACKBONES))
        if self.attention not in ATTENTIONS:
            raise ModelError(unknown_name("attention", self.attention, ATTENTIONS))
        if not self.modalities:
            raise ModelError("a model needs at least one modality")
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise ModelError(f"duplicate modality names: {names}")
        for m in self.modalities:
            if not m.name.isidentifier():
                raise ModelError(f"modality name '{m.name}' must be a Python identifier")
            if m.patch < 1 or m.steps % m.patch or m.features < 1:
                raise ModelError(
                    f"modality '{m.name}': steps {m.steps} must be a positive multiple of "
                    f"patch {m.patch} and features ≥ 1"
                )
        if self.n_head % self.n_kv_head:
            raise ModelError(
                f"n_head {self.n_head} must be a multiple of n_kv_head {self.n_kv_head}"
            )
        if self.window < 1 or self.n_fusion_tokens < 1 or self.n_head < 1:
            raise ModelError("window, n_fusion_tokens and n_head must be ≥ 1")
        if self.present is not None:
            for name in self.present:
                if name not in names:
                    raise ModelError(unknown_name("modality", name, names))

    # -- derived -------------------------------------------------------------------
    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def available(self) -> list[str]:
        """Modalities that have weights (all, unless a pruned variant dropped some)."""
        if self.present is None:
            return self.modality_names
        return [n for n in self.modality_names if n in self.present]

    def block_shape(self, name: str) -> BlockShape:
        """Shape of block ``name``: the explicit pruned shape, else the dense default."""
        if self.blocks is not None and name in self.blocks:
            return self.blocks[name]
        group = self.n_head // self.n_kv_head
        kv_index = [h // group for h in range(self.n_head)]
        return BlockShape(self.n_head, self.n_kv_head, kv_index, self.d_ff)

    # -- JSON ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.blocks is not None:
            out["blocks"] = {k: asdict(v) for k, v in self.blocks.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys are a ``ModelError`` (a stale manifest)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(
                f"model config has unknown keys {sorted(unknown)}; rebuild the manifest"
            )
        try:
            kw = dict(data)
            kw["modalities"] = [ModalityInput(**m) for m in data["modalities"]]
            if data.get("blocks") is not None:
                kw["blocks"] = {
                    k: BlockShape(v["n_head"], v["n_kv"], list(v["kv_index"]), v["d_ff"])
                    for k, v in data["blocks"].items()
                }
            return cls(**kw)
        except (KeyError, TypeError) as exc:
            raise ModelError(f"malformed model config ({exc}); rebuild the manifest") from None


# Width/depth presets. "small" trains on 2 CPU cores in minutes and is a 4-layer-ish,
# width-128 stack overall; "tiny" keeps every test fast.
_PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(
        d_model=128, head_dim=32, n_head=4, d_ff=256, n_layer=4, n_enc_layer=2,
        n_fusion_layer=2, n_fusion_tokens=4, dropout=0.1,
    ),
    "tiny": dict(
        d_model=32, head_dim=8, n_head=4, d_ff=64, n_layer=2, n_enc_layer=1,
        n_fusion_layer=1, n_fusion_tokens=2, dropout=0.0,
    ),
}  # fmt: skip
_MAX_TOKENS = {"small": 16, "tiny": 8}  # per modality: bounds sequence length and cost
_SPARSE = {"small": dict(n_kv_head=1, window=4), "tiny": dict(n_kv_head=2, window=2)}


def choose_patch(steps: int, max_tokens: int) -> int:
    """Smallest patch that divides ``steps`` and gives at most ``max_tokens`` tokens."""
    for patch in range(1, steps + 1):
        if steps % patch == 0 and steps // patch <= max_tokens:
            return patch
    return steps


def model_config_for(
    dataset_or_specs: Any,
    backbone: str,
    attention: str,
    size: str = "small",
    *,
    num_classes: int | None = None,
    patches: dict[str, int] | None = None,
    **overrides: Any,
) -> ModelConfig:
    """A config for a dataset (a ``MultimodalDataset``) or a list of modality specs
    (anything with ``name``, ``steps``, ``features``; then pass ``num_classes``).
    Patch sizes are chosen so each modality has at most 16 (small) / 8 (tiny) tokens,
    unless given in ``patches``; ``overrides`` replace any ``ModelConfig`` field."""
    if size not in SIZES:
        raise ModelError(unknown_name("model size", size, SIZES))
    if backbone not in BACKBONES:
        raise ModelError(unknown_name("backbone", backbone, BACKBONES))
    if attention not in ATTENTIONS:
        raise ModelError(unknown_name("attention", attention, ATTENTIONS))
    specs: Sequence[Any] = getattr(dataset_or_specs, "modalities", dataset_or_specs)
    if num_classes is None:
        num_classes = getattr(dataset_or_specs, "num_classes", None)
    if num_classes is None:
        raise ModelError("model_config_for needs num_classes when given modality specs")
    modalities = [
        ModalityInput(
            s.name, s.steps, s.features,
            (patches or {}).get(s.name) or choose_patch(s.steps, _MAX_TOKENS[size]),
        )
        for s in specs
    ]  # fmt: skip
    kw: dict[str, Any] = dict(_PRESETS[size])
    kw["n_kv_head"] = kw["n_head"]
    if attention == "sentryattend":
        kw.update(_SPARSE[size])
    kw.update(overrides)
    return ModelConfig(backbone, attention, modalities, int(num_classes), **kw)


def with_shapes(
    config: ModelConfig, blocks: dict[str, BlockShape], present: list[str] | None
) -> ModelConfig:
    """The config of a pruned variant (used by ``prune_model``)."""
    return replace(config, blocks=blocks, present=present)
