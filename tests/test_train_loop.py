"""The training loop: deterministic given a seed, honours max_train, rejects mismatches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from sentryfuse.data import load_dataset
from sentryfuse.errors import ModelError
from sentryfuse.models import model_config_for
from sentryfuse.train import TrainConfig, train


@pytest.fixture(scope="module")
def ds():
    return load_dataset("synthetic", max_train=96, max_test=32, seed=4)


def test_same_seed_same_weights_and_metrics(ds, tmp_path) -> None:
    cfg = model_config_for(ds, "early", "dense", size="tiny")
    tc = TrainConfig(epochs=2, batch_size=16, warmup_epochs=0.5, ramp_epochs=0.5, seed=5,
                     threads=1, saliency_every=1, scorer_final_steps=5, max_train=64)  # fmt: skip
    runs = [train(ds, cfg, tc, tmp_path / f"r{i}", progress=False) for i in range(2)]
    a, b = (load_file(str(r / "model.safetensors")) for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in runs)
    assert ma["accuracy"] == mb["accuracy"] and ma["train_samples"] == 64
    assert ma["steps"] == 2 * 4  # 64 samples / batch 16, two epochs
    other = train(
        ds, cfg, TrainConfig(**{**tc.__dict__, "seed": 6}), tmp_path / "r2", progress=False
    )
    c = load_file(str(other / "model.safetensors"))
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_backbone_weights_do_not_depend_on_the_scorer(ds, tmp_path) -> None:
    """The scorer has its own optimizer; saliency passes must not alter task training.

    (The prunability-aware recipe couples them on purpose: its sub-network passes remove
    the units the scorer ranks lowest. ``subnet=False`` is the recipe this test is about.)
    """
    cfg = model_config_for(ds, "late", "dense", size="tiny")
    base = dict(epochs=2, batch_size=32, seed=1, threads=1, scorer_final_steps=0, warmup_epochs=0,
                subnet=False)  # fmt: skip
    with_gate = train(
        ds, cfg, TrainConfig(**base, saliency_every=1), tmp_path / "g", progress=False
    )
    cfg_plain = TrainConfig(**base, saliency_every=0)
    without = train(ds, cfg, cfg_plain, tmp_path / "p", progress=False)
    a = load_file(str(with_gate / "model.safetensors"))
    b = load_file(str(without / "model.safetensors"))
    backbone = [k for k in a if not k.startswith("scorer.")]
    assert backbone and all(torch.equal(a[k], b[k]) for k in backbone)
    assert any(k.startswith("scorer.") for k in a) and not any(k.startswith("scorer.") for k in b)


def test_model_config_for_another_dataset_is_rejected(ds, tmp_path) -> None:
    other = load_dataset("synthetic", max_train=8, max_test=8)
    cfg = model_config_for(other, "early", "dense", size="tiny", num_classes=7)
    with pytest.raises(ModelError, match="does not match dataset"):
        train(ds, cfg, TrainConfig(epochs=1), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
