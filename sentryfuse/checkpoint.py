"""Trained checkpoints: ``model.safetensors`` + ``config.json`` + ``metrics.json``.

No pickle anywhere: weights are safetensors (backbone tensors by their state-dict names,
the SentryGate scorer's under ``scorer.``), everything else is JSON, and the model is
rebuilt from its config by the model code. A checkpoint directory is written complete or
not at all: files go to a temporary sibling directory that is renamed into place, so an
interrupted run never leaves a half-written checkpoint that a later step would trust.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from sentryfuse.errors import ModelError
from sentryfuse.gate.scorer import ImportanceScorer

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
SCORER_PREFIX = "scorer."


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its config, scorer, metrics, metadata."""

    model: nn.Module
    config: object  # sentryfuse.models.ModelConfig
    scorer: ImportanceScorer | None
    metrics: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)  # the whole config.json ("train", "dataset", ...)
    path: Path | None = None

    @property
    def modalities(self) -> list[str]:
        return [m.name for m in self.config.modalities]


def _tensors(model: nn.Module, scorer: ImportanceScorer | None) -> dict[str, torch.Tensor]:
    # clone(): safetensors refuses tensors sharing storage (e.g. tied or viewed weights).
    out = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if scorer is not None:
        for k, v in scorer.state_dict().items():
            out[SCORER_PREFIX + k] = v.detach().contiguous().clone()
    return out


def check_out_dir(out_dir: Path | str) -> Path:
    """Refuse an output directory that exists and is not a checkpoint, before any work."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / CONFIG).exists())
    ):
        raise ModelError(
            f"{out_dir} exists and is not a checkpoint directory; pass a new or empty --out"
        )
    return out_dir


def write_dir_atomically(out_dir: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``out_dir`` all at once (temp dir + rename).

    An existing ``out_dir`` is replaced only if it is empty or holds a checkpoint (a
    ``config.json``); anything else is refused rather than deleted.
    """
    out_dir = check_out_dir(out_dir)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise ModelError(
            f"cannot write the checkpoint to {out_dir} ({exc.strerror}); choose another --out"
        ) from None
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def save_checkpoint(
    out_dir: Path,
    model: nn.Module,
    scorer: ImportanceScorer | None,
    meta: dict,
    metrics: dict,
) -> Path:
    """Write a checkpoint atomically; ``meta`` holds "train"/"dataset" (JSON-safe)."""
    config = {"model": model.config.to_dict(), **meta}
    config["scorer"] = None if scorer is None else scorer.config()
    files = {
        WEIGHTS: save(_tensors(model, scorer), metadata={"format": "pt"}),
        CONFIG: json.dumps(config, indent=2, sort_keys=False).encode(),
        METRICS: json.dumps(metrics, indent=2).encode(),
    }
    return write_dir_atomically(Path(out_dir), files)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path} is missing; is {path.parent} a sentryfuse checkpoint?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}); retrain or restore it") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} must hold a JSON object; retrain or restore it")
    return data


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Load a checkpoint directory; any missing or malformed part → one-line ``ModelError``."""
    from sentryfuse.models import ModelConfig, build_model

    path = Path(path)
    if not path.is_dir():
        raise ModelError(
            f"checkpoint directory {path} does not exist; pass a `sentryfuse train --out` directory"
        )
    meta = _read_json(path / CONFIG)
    if not isinstance(meta.get("model"), dict):
        raise ModelError(f"{path / CONFIG} has no 'model' section; retrain the checkpoint")
    try:
        config = ModelConfig.from_dict(meta["model"])
        model = build_model(config)
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path / CONFIG}: model config is malformed ({exc!r})") from None
    try:
        tensors = load_file(str(path / WEIGHTS))
    except FileNotFoundError:
        raise ModelError(f"{path / WEIGHTS} is missing; retrain or restore it") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path / WEIGHTS} is not a valid safetensors file ({exc})") from None
    scorer_sd = {
        k[len(SCORER_PREFIX) :]: v for k, v in tensors.items() if k.startswith(SCORER_PREFIX)
    }
    model_sd = {k: v for k, v in tensors.items() if not k.startswith(SCORER_PREFIX)}
    _load_into(model, model_sd, path / WEIGHTS, "model")
    scorer = None
    if meta.get("scorer"):
        scorer = ImportanceScorer.from_config(meta["scorer"])
        _load_into(scorer, scorer_sd, path / WEIGHTS, "scorer")
        scorer.eval()
    metrics = _read_json(path / METRICS) if (path / METRICS).exists() else {}
    model.eval()
    return Checkpoint(model, config, scorer, metrics, meta, path)


def _load_into(module: nn.Module, sd: dict, where: Path, what: str) -> None:
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(s.strip() for s in first[:2])[:300]
        raise ModelError(f"{where}: {what} weights do not match config.json ({detail})") from None
