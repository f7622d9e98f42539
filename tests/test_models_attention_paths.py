"""Attention execution paths: every path equals a naive reference, caches follow the
weights, and SentryAttend keeps its FLOPs reduction.

The fast paths (fused q/k/v, GQA query rows, one-KV-head path, masked vs block-sparse
SentryAttend) must all compute the same function, so each is checked against a plain
per-head softmax with an explicit pattern matrix."""

from __future__ import annotations

import copy
import itertools
import warnings

import numpy as np
import pytest
import torch

from sentryfuse.models import (
    ATTENTIONS,
    BACKBONES,
    KeepSet,
    ModalityInput,
    build_model,
    count_gflops,
    model_config_for,
    prune_model,
    unit_costs,
)
from sentryfuse.models import attention_kernels as kernels
from sentryfuse.models.attention import Attention, KeyMask, Layout
from sentryfuse.models.export import export_onnx

SPECS = [ModalityInput("acc", 16, 3, 2), ModalityInput("gyro", 16, 3, 2), ModalityInput("hr", 8, 1)]
NAMES = [m.name for m in SPECS]
KV_SHAPES = {  # name: (n_kv, kv_index) for 4 query heads
    "mha": (4, [0, 1, 2, 3]),
    "gqa": (2, [0, 0, 1, 1]),
    "mqa": (1, [0, 0, 0, 0]),
    "uneven": (2, [0, 0, 0, 1]),
}


@pytest.fixture(params=["masked", "kernel"])
def sparse_path(request, monkeypatch):
    """Force SentryAttend's block-sparse kernel on every length, or never."""
    monkeypatch.setattr(
        kernels, "SPARSE_KERNEL_MIN_TOKENS", 0 if request.param == "kernel" else 10**9
    )
    return request.param


def reference(attn: Attention, x, layout: Layout, key_mask) -> torch.Tensor:
    """Naive attention: K/V per query head, explicit (S, S) pattern, per-head softmax."""
    B, S, _ = x.shape
    nh, hs = attn.n_head, attn.head_dim
    q = attn.q(x).view(B, S, nh, hs).transpose(1, 2)
    k = attn.k(x).view(B, S, attn.n_kv, hs).transpose(1, 2)[:, attn.kv_index]
    v = attn.v(x).view(B, S, attn.n_kv, hs).transpose(1, 2)[:, attn.kv_index]
    allowed = torch.ones(B, S, S, dtype=torch.bool)
    valid = torch.ones(B, S, dtype=torch.bool) if key_mask is None else key_mask
    G, W = layout.n_global, layout.block
    for i, j in itertools.product(range(S), range(S)):
        if attn.sparse and i >= G:  # local query: globals + own block; own block never masked
            own = j >= G and (i - G) // W == (j - G) // W
            allowed[:, i, j] = own | ((j < G) & valid[:, j])
        else:
            allowed[:, i, j] = valid[:, j]
    scores = (q @ k.transpose(-1, -2)) / hs**0.5
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    y = scores.softmax(-1) @ v  # (B, nh, S, hs)
    y = y * attn.head_gate.view(1, nh, 1, 1)
    return attn.o(y.transpose(1, 2).reshape(B, S, nh * hs))


def make_attention(kind: str, sparse: bool, seed: int = 0) -> Attention:
    torch.manual_seed(seed)
    n_kv, kv_index = KV_SHAPES[kind]
    attn = Attention(16, 4, 4, n_kv, kv_index, sparse).eval()
    with torch.no_grad():
        attn.head_gate.copy_(torch.tensor([1.3, 0.0, 0.7, 1.0]))
    return attn


@pytest.mark.parametrize("kind", list(KV_SHAPES))
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_global,segments", [(1, (8, 4)), (3, (4, 8)), (4, (6,))])
@pytest.mark.parametrize("masked_keys", [False, True])
def test_every_path_matches_the_reference(
    sparse_path, kind, sparse, n_global, segments, masked_keys
):
    attn = make_attention(kind, sparse)
    layout = Layout.make(n_global, segments, window=2)
    S = layout.length
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, S, 16, generator=g)
    key_mask = None
    if masked_keys:
        key_mask = torch.rand(3, S, generator=g) > 0.4
        key_mask[:, 0] = True  # the CLS / first global is always valid
    want = reference(attn, x, layout, key_mask)
    with torch.inference_mode():
        got = attn(x, layout, key_mask)
        prepared = None if key_mask is None else KeyMask.build(layout, key_mask, sparse)
        got_prepared = attn(x, layout, prepared)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_prepared, want, atol=1e-5, rtol=1e-5)
    got_grad_mode = attn(x, layout, key_mask)  # autograd path: per-call concatenation
    torch.testing.assert_close(got_grad_mode, want, atol=1e-5, rtol=1e-5)


def test_cached_weights_follow_in_place_updates_and_reloads():
    attn = make_attention("mqa", True)
    layout = Layout.make(1, (8, 4), window=2)
    x = torch.randn(2, layout.length, 16)
    with torch.inference_mode():
        attn(x, layout, None)  # fills the caches
    with torch.no_grad():
        attn.k.weight.mul_(2.0)
        attn.q.bias.add_(0.5)
        attn.head_gate[0] = 0.25
    with torch.inference_mode():
        torch.testing.assert_close(attn(x, layout, None), reference(attn, x, layout, None))
    other = make_attention("mqa", True, seed=5)
    attn.load_state_dict(other.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(attn(x, layout, None), other(x, layout, None))
    attn.load_state_dict(make_attention("mqa", True, seed=6).state_dict(), assign=True)
    with torch.inference_mode():
        torch.testing.assert_close(attn(x, layout, None), reference(attn, x, layout, None))


def test_training_updates_reach_inference_and_gradients_reach_every_weight():
    torch.manual_seed(0)
    model = build_model(model_config_for(SPECS, "early", "sentryattend", "tiny", num_classes=3))
    x = {m.name: torch.randn(4, m.steps, m.features) for m in SPECS}
    model.eval()
    with torch.inference_mode():
        before = model(x)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(x).square().sum().backward()
    attn = model.blocks()[0][1].attn
    for lin in (attn.q, attn.k, attn.v, attn.o):
        assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    opt.step()
    model.eval()
    fresh = copy.deepcopy(model)  # its caches are rebuilt from the stepped weights
    for m in fresh.modules():
        m.__dict__.update({k: None for k in m.__dict__ if k.startswith("_derived_")})
    with torch.inference_mode():
        after = model(x)
        assert not torch.allclose(after, before)
        torch.testing.assert_close(after, fresh(x))


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("n_kv", [1, 2])
def test_kernel_and_masked_sentryattend_agree_on_whole_models(monkeypatch, backbone, n_kv):
    torch.manual_seed(0)
    cfg = model_config_for(SPECS, backbone, "sentryattend", "tiny", num_classes=3, n_kv_head=n_kv)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(2)
    x = {m.name: torch.randn(4, m.steps, m.features, generator=g) for m in SPECS}
    present = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 0, 1]], dtype=torch.bool)
    outs = []
    for min_tokens in (0, 10**9):
        monkeypatch.setattr(kernels, "SPARSE_KERNEL_MIN_TOKENS", min_tokens)
        with torch.inference_mode():
            outs.append((model(x), model(x, present)))
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_unit_costs_match_measured_flops_on_both_sentryattend_paths(sparse_path, backbone):
    """With one KV head per query head a removed head saves exactly its unit cost, so
    this checks the attention-pairs term of ``unit_costs`` on each path."""
    cfg = model_config_for(SPECS, backbone, "sentryattend", "tiny", num_classes=3, n_kv_head=4)
    model = build_model(cfg).eval()
    x = {m.name: torch.randn(1, m.steps, m.features) for m in SPECS}
    costs = unit_costs(model)
    keep = {n: KeepSet([0, 1], list(range(b.mlp.d_ff))) for n, b in model.blocks()}
    saved = sum(costs[n].head_flops * 2 for n, _ in model.blocks())
    measured = (count_gflops(model, x) - count_gflops(prune_model(model, keep), x)) * 1e9
    assert measured == pytest.approx(saved, rel=0.02)


def test_block_sparse_kernel_saves_attention_flops(monkeypatch):
    """The kernel path computes fewer pairs than the masked path (same outputs)."""
    specs = [ModalityInput("a", 64, 2), ModalityInput("b", 64, 2)]
    cfg = model_config_for(
        specs, "early", "sentryattend", "tiny", num_classes=2, patches={"a": 1, "b": 1}
    )
    model = build_model(cfg).eval()
    x = {"a": torch.randn(1, 64, 2), "b": torch.randn(1, 64, 2)}
    flops = {}
    for min_tokens in (0, 10**9):
        monkeypatch.setattr(kernels, "SPARSE_KERNEL_MIN_TOKENS", min_tokens)
        flops[min_tokens] = count_gflops(model, x)
    assert flops[0] < 0.8 * flops[10**9]


# (name, steps, features) as the dataset loaders produce them (benchmarks/prune_latency.py)
DATASET_SHAPES = {
    "hapt": [("acc", 128, 3), ("gyro", 128, 3)],
    "avdigits": [("image", 8, 8), ("audio", 32, 13)],
    "crowdsignals": [("phone", 64, 9), ("watch", 64, 9), ("hr", 8, 1), ("env", 8, 2)],
}


@pytest.mark.parametrize("dataset", list(DATASET_SHAPES))
def test_sentryattend_saves_at_least_15_percent_flops_on_real_shapes(dataset):
    specs = [ModalityInput(*s) for s in DATASET_SHAPES[dataset]]
    x = {n: torch.randn(1, t, c) for n, t, c in DATASET_SHAPES[dataset]}
    for backbone in BACKBONES:
        g = {
            a: count_gflops(build_model(model_config_for(specs, backbone, a, num_classes=5)), x)
            for a in ATTENTIONS
        }
        assert g["sentryattend"] <= 0.85 * g["dense"], (backbone, g)


def test_one_kv_head_sentryattend_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    cfg = model_config_for(SPECS, "late", "sentryattend", "tiny", num_classes=3, n_kv_head=1)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(3)
    x = {m.name: torch.randn(3, m.steps, m.features, generator=g) for m in SPECS}
    present = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 1]], dtype=torch.bool)
    path = str(tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = export_onnx(model, x, path, present=present)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {n: (present if n == "present" else x[n]).numpy() for n in names}
    with torch.inference_mode():
        want = model(x, present).numpy()
    np.testing.assert_allclose(session.run(None, feeds)[0], want, atol=1e-4, rtol=1e-4)
