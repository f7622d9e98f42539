"""A model variant on disk: ``config.json`` (the shape manifest) + ``model.safetensors``.

The model code rebuilds the architecture from the manifest and loads the weights
strictly, so a variant is data, never a pickled module. Files are written to a temporary
name and renamed, weights first and manifest last, so a reader never sees a manifest
whose weights are half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sentryfuse.errors import ModelError
from sentryfuse.models.backbones import MultimodalTransformer, build_model
from sentryfuse.models.config import ModelConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_variant(
    model: MultimodalTransformer, out_dir: str | Path, meta: dict[str, Any] | None = None
) -> Path:
    """Write the manifest ``{"model": config, "meta": meta}`` and the weights."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create {out} ({exc.strerror}); choose another --out") from None
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out / f".{WEIGHTS_FILE}.tmp"
    save_file(state, str(tmp))
    os.replace(tmp, out / WEIGHTS_FILE)
    manifest = {"model": model.config.to_dict(), "meta": meta or {}}
    tmp = out / f".{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, out / CONFIG_FILE)
    return out


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a variant or checkpoint directory."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise ModelError(f"{file} not found; point at a directory written by save_variant or train")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{file} is not valid JSON ({exc.msg} at line {exc.lineno}); re-create it"
        ) from None


def load_variant(path: str | Path) -> MultimodalTransformer:
    """Rebuild a model from its manifest and load its weights (strict), in eval mode.
    Extra tensors under ``scorer.`` (a training checkpoint's scorer) are ignored."""
    manifest = read_manifest(path)
    config = ModelConfig.from_dict(manifest.get("model", manifest))
    weights = Path(path) / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{weights} not found; the variant directory is incomplete")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise ModelError(f"cannot read {weights} ({exc}); re-create the variant") from None
    state = {k: v for k, v in state.items() if not k.startswith("scorer.")}
    with torch.device("meta"):
        model = build_model(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(
            f"{weights} does not match its manifest ({first}); re-create the variant"
        ) from None
    return model.eval()
