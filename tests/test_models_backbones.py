"""Backbones and SentryAttend: shapes, missing modalities, FLOPs, config round trip."""

from __future__ import annotations

import itertools

import pytest
import torch

from sentryfuse.errors import ModelError
from sentryfuse.models import (
    ATTENTIONS,
    BACKBONES,
    ModalityInput,
    ModelConfig,
    build_model,
    count_gflops,
    count_params,
    model_config_for,
    set_gates_trainable,
)

SPECS = [
    ModalityInput("acc", 16, 3, 2),
    ModalityInput("gyro", 16, 3, 2),
    ModalityInput("hr", 8, 1, 1),
]
GRID = list(itertools.product(BACKBONES, ATTENTIONS))


def tiny(backbone: str, attention: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(model_config_for(SPECS, backbone, attention, "tiny", num_classes=5)).eval()


def batch(n: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m.name: torch.randn(n, m.steps, m.features, generator=g) for m in SPECS}


@pytest.mark.parametrize("backbone,attention", GRID)
def test_forward_shape_and_block_names(backbone, attention):
    model = tiny(backbone, attention)
    assert model(batch()).shape == (4, 5)
    names = [n for n, _ in model.blocks()]
    prefix = {"early": "joint.0", "late": "enc.acc.0", "bottleneck": "stream.acc.0"}[backbone]
    assert names[0] == prefix
    for _name, block in model.blocks():
        assert block.attn.head_gate.shape == (block.attn.n_head,)
        assert block.mlp.ffn_gate.shape == (block.mlp.d_ff,)
        assert not block.attn.head_gate.requires_grad


@pytest.mark.parametrize("backbone,attention", GRID)
def test_masking_a_modality_equals_skipping_it(backbone, attention):
    """present[:, j] False for every sample gives the same logits as leaving j out."""
    model = tiny(backbone, attention)
    x = batch()
    present = torch.tensor([[True, False, True]] * 4)
    masked = model(x, present)
    skipped = model({"acc": x["acc"], "hr": x["hr"]})
    torch.testing.assert_close(masked, skipped, atol=1e-5, rtol=1e-5)
    # and the masked modality's content cannot leak into the output
    x2 = dict(x, gyro=torch.randn_like(x["gyro"]) * 100)
    torch.testing.assert_close(model(x2, present), masked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backbone,attention", GRID)
def test_per_sample_mask_matches_rowwise_subsets(backbone, attention):
    model = tiny(backbone, attention)
    x = batch()
    present = torch.tensor(
        [[True, True, True], [False, True, True], [True, False, False], [False, False, True]]
    )
    out = model(x, present)
    assert torch.isfinite(out).all()
    names = [m.name for m in SPECS]
    for i in range(4):
        sub = {n: x[n][i : i + 1] for j, n in enumerate(names) if present[i, j]}
        torch.testing.assert_close(out[i : i + 1], model(sub), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backbone,attention", GRID)
def test_gates_scale_outputs_and_take_gradients(backbone, attention):
    model = tiny(backbone, attention)
    set_gates_trainable(model, True)
    x = batch()
    model(x).sum().backward()
    name, block = model.blocks()[0]
    assert block.attn.head_gate.grad is not None and block.mlp.ffn_gate.grad is not None
    before = model(x).detach()
    with torch.no_grad():
        block.attn.head_gate[0] = 0.0
    assert not torch.allclose(model(x), before)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_sentryattend_has_fewer_flops_and_params(backbone):
    x = batch(2)
    dense, sparse = tiny(backbone, "dense"), tiny(backbone, "sentryattend")
    assert count_gflops(sparse, x) < count_gflops(dense, x)
    assert count_params(sparse) < count_params(dense)


def test_attention_flops_are_counted():
    """The CPU SDPA kernel is counted: a longer sequence costs quadratically more."""
    specs = [ModalityInput("a", 64, 2, 1)]
    model = build_model(
        model_config_for(specs, "early", "dense", "tiny", num_classes=2, patches={"a": 1})
    ).eval()
    flops = count_gflops(model, {"a": torch.randn(1, 64, 2)})
    linear_only = 2 * 65 * 2 * (4 * 32 * 32 + 2 * 32 * 64) * 1e-9  # 2 blocks
    assert flops > linear_only * 1.2


def test_config_round_trip_and_errors():
    cfg = model_config_for(SPECS, "late", "sentryattend", "tiny", num_classes=5)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ModelError, match="valid: bottleneck, early, late"):
        model_config_for(SPECS, "middle", "dense", num_classes=5)
    with pytest.raises(ModelError, match="valid: dense, sentryattend"):
        model_config_for(SPECS, "early", "sparse", num_classes=5)
    with pytest.raises(ModelError, match="unknown keys"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_bad_inputs_are_model_errors():
    model = tiny("early", "dense")
    with pytest.raises(ModelError, match="unknown modality 'eeg'"):
        model({"eeg": torch.randn(1, 4, 4)})
    with pytest.raises(ModelError, match="expected"):
        model({"acc": torch.randn(1, 15, 3)})
    with pytest.raises(ModelError, match="present"):
        model(batch(2), torch.ones(2, 2, dtype=torch.bool))


def test_small_preset_shapes_for_the_real_datasets():
    hapt = [ModalityInput("acc", 128, 3), ModalityInput("gyro", 128, 3)]
    cfg = model_config_for(hapt, "early", "dense", "small", num_classes=6)
    assert [m.patch for m in cfg.modalities] == [8, 8] and cfg.d_model == 128
