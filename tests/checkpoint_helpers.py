"""Shared test helper: real checkpoints on disk in milliseconds (no training run)."""

from __future__ import annotations

import torch

from sentryfuse.checkpoint import save_checkpoint
from sentryfuse.gate import ImportanceScorer
from sentryfuse.models import build_model, model_config_for


def make_checkpoint(data, backbone, attention, out, *, scorer=True, seed=0):
    """A real checkpoint on disk without the training run: seeded random backbone and
    (optionally) a seeded random scorer, so pruning mechanics are tested in milliseconds."""
    torch.manual_seed(seed)
    model = build_model(model_config_for(data, backbone, attention, "tiny")).eval()
    sc = None
    if scorer:
        sc = ImportanceScorer.for_model(model, hidden=16)
        with torch.no_grad():
            for p in sc.parameters():
                p.normal_(0.0, 0.5)
    save_checkpoint(out, model, sc, {"dataset": {"name": data.name}, "train": {}}, {})
    return out
