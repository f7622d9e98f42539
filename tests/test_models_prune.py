"""Physical pruning: identity with zeroed gates, shapes, unit costs, speed."""

from __future__ import annotations

import copy
import itertools
import time

import pytest
import torch

from sentryfuse.errors import PruneError
from sentryfuse.models import (
    ATTENTIONS,
    BACKBONES,
    KeepSet,
    ModalityInput,
    build_model,
    count_gflops,
    count_params,
    model_config_for,
    prune_model,
    unit_costs,
)

SPECS = [
    ModalityInput("acc", 16, 3, 2),
    ModalityInput("gyro", 16, 3, 2),
    ModalityInput("hr", 8, 1, 1),
]
NAMES = [m.name for m in SPECS]
GRID = list(itertools.product(BACKBONES, ATTENTIONS))


def tiny(backbone: str, attention: str, **kw):
    torch.manual_seed(0)
    model = build_model(
        model_config_for(SPECS, backbone, attention, "tiny", num_classes=5, **kw)
    ).eval()
    with torch.no_grad():  # non-1 gates must survive pruning
        for _, block in model.blocks():
            block.attn.head_gate.uniform_(0.5, 1.5)
            block.mlp.ffn_gate.uniform_(0.5, 1.5)
    return model


def batch(n: int = 4) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {m.name: torch.randn(n, m.steps, m.features, generator=g) for m in SPECS}


def random_keep(model, seed: int, frac: float = 0.5) -> dict[str, KeepSet]:
    g = torch.Generator().manual_seed(seed)
    keep = {}
    for name, block in model.blocks():
        nh, ff = block.attn.n_head, block.mlp.d_ff
        heads = torch.randperm(nh, generator=g)[: max(1, int(nh * frac))].tolist()
        chans = torch.randperm(ff, generator=g)[: max(1, int(ff * frac))].tolist()
        keep[name] = KeepSet(heads, chans)
    return keep


def gated(model, keep):
    """The dense model with every removed unit's gate set to 0."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for name, block in ref.blocks():
            if name not in keep:
                continue
            hm = torch.zeros(block.attn.n_head)
            hm[keep[name].heads] = 1
            cm = torch.zeros(block.mlp.d_ff)
            cm[keep[name].channels] = 1
            block.attn.head_gate.mul_(hm)
            block.mlp.ffn_gate.mul_(cm)
    return ref


@pytest.mark.parametrize("backbone,attention", GRID)
@pytest.mark.parametrize("present", [None, ["acc", "hr"]])
def test_pruned_equals_gates_zeroed(backbone, attention, present):
    model = tiny(backbone, attention)
    x = batch()
    for seed in range(3):  # different subsets: uneven GQA groups, dropped KV heads
        keep = random_keep(model, seed, frac=0.4 + 0.1 * seed)
        pruned = prune_model(model, keep, present)
        ref = gated(model, keep)
        x_ref = x if present is None else {k: x[k] for k in present}
        torch.testing.assert_close(pruned(x), ref(x_ref), atol=1e-5, rtol=1e-5)
        mask = torch.tensor(
            [[True, True, True], [False, True, True], [True, False, True], [True, True, False]]
        )
        if present is not None:
            mask[:, 1] = False  # gyro is gone from the pruned model
        torch.testing.assert_close(pruned(x, mask), ref(x_ref, mask), atol=1e-5, rtol=1e-5)
        assert count_params(pruned) < count_params(model)


def test_uneven_groups_and_dropped_kv_heads_are_recorded():
    model = tiny("early", "sentryattend")  # tiny: 4 query heads over 2 KV heads
    name = model.blocks()[0][0]
    pruned = prune_model(model, {name: KeepSet([0, 1, 3], list(range(10)))})
    shape = pruned.config.blocks[name]
    assert (shape.n_head, shape.n_kv, shape.kv_index, shape.d_ff) == (3, 2, [0, 0, 1], 10)
    pruned = prune_model(model, {name: KeepSet([2, 3], [0])})
    shape = pruned.config.blocks[name]
    assert (shape.n_head, shape.n_kv, shape.kv_index) == (2, 1, [0, 0])
    attn = dict(pruned.blocks())[name].attn
    assert attn.k.weight.shape[0] == 1 * model.config.head_dim


@pytest.mark.parametrize("backbone", BACKBONES)
def test_blocks_with_no_heads_or_channels_still_match(backbone):
    model = tiny(backbone, "dense")
    keep = {name: KeepSet([], []) for name, _ in model.blocks()}
    pruned = prune_model(model, keep)
    torch.testing.assert_close(pruned(batch()), gated(model, keep)(batch()), atol=1e-5, rtol=1e-5)


def test_dropped_modality_loses_its_weights_and_is_ignored():
    model = tiny("late", "dense")
    pruned = prune_model(model, {}, present=["gyro"])
    assert pruned.config.present == ["gyro"]
    assert not any(k.startswith(("tok.acc", "enc.acc", "tok.hr")) for k in pruned.state_dict())
    x = batch()
    torch.testing.assert_close(pruned(x), model({"gyro": x["gyro"]}), atol=1e-5, rtol=1e-5)
    assert count_gflops(pruned, x) < count_gflops(model, x)


def test_prune_errors():
    model = tiny("early", "dense")
    with pytest.raises(PruneError, match="every modality"):
        prune_model(model, {}, present=[])
    with pytest.raises(PruneError, match="unknown modality 'eeg'"):
        prune_model(model, {}, present=["eeg"])
    with pytest.raises(PruneError, match="out of range"):
        prune_model(model, {"joint.0": KeepSet([7], [0])})
    with pytest.raises(PruneError, match="unknown block"):
        prune_model(model, {"joint.9": KeepSet([0], [0])})


def test_unit_costs_track_measured_flops():
    """Removing half the channels of every block saves what unit_costs predicts."""
    model = tiny("early", "dense")
    costs = unit_costs(model)
    x = batch(1)
    keep = {
        n: KeepSet(list(range(b.attn.n_head)), list(range(b.mlp.d_ff // 2)))
        for n, b in model.blocks()
    }
    saved = sum(costs[n].channel_flops * (b.mlp.d_ff - b.mlp.d_ff // 2) for n, b in model.blocks())
    measured = (count_gflops(model, x) - count_gflops(prune_model(model, keep), x)) * 1e9
    assert measured == pytest.approx(saved, rel=0.02)
    keep = {n: KeepSet([0, 1], list(range(b.mlp.d_ff))) for n, b in model.blocks()}
    saved = sum(costs[n].head_flops * 2 for n, _ in model.blocks())
    measured = (count_gflops(model, x) - count_gflops(prune_model(model, keep), x)) * 1e9
    assert measured == pytest.approx(saved, rel=0.02)


def test_reprune_is_fast_on_the_small_model():
    specs = [ModalityInput("acc", 128, 3), ModalityInput("gyro", 128, 3)]
    model = build_model(
        model_config_for(specs, "bottleneck", "dense", "small", num_classes=6)
    ).eval()
    keep = random_keep(model, 0)
    prune_model(model, keep, ["acc"])  # warm-up
    start = time.perf_counter()
    for _ in range(5):
        prune_model(model, keep, ["acc"])
    per_call_ms = (time.perf_counter() - start) / 5 * 1e3
    assert per_call_ms < 100  # measured 5-9 ms on 2 cores; bound leaves room for slow CI


def test_pruning_a_pruned_model_composes():
    """Re-pruning a variant (indices relative to it) equals its gates zeroed too."""
    model = tiny("bottleneck", "sentryattend")
    first = prune_model(model, random_keep(model, 0, frac=0.75), present=["acc", "gyro"])
    keep = random_keep(first, 1, frac=0.5)
    second = prune_model(first, keep, present=["gyro"])
    x = batch()
    torch.testing.assert_close(
        second(x), gated(first, keep)({"gyro": x["gyro"]}), atol=1e-5, rtol=1e-5
    )
    assert second.config.present == ["gyro"]
