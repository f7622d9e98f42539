"""The SentryGate scorer: shapes, JSON rebuild, the alignment loss, and what it learns."""

from __future__ import annotations

import json

import pytest
import torch

from sentryfuse.checkpoint import load_checkpoint
from sentryfuse.data import load_dataset
from sentryfuse.errors import ModelError, PruneError
from sentryfuse.gate.saliency import unit_saliency
from sentryfuse.gate.scorer import ImportanceScorer, alignment_loss
from sentryfuse.models import build_model, model_config_for
from sentryfuse.train import TrainConfig, train


def test_scorer_shapes_follow_model_and_rebuild_from_json() -> None:
    ds = load_dataset("synthetic", max_train=16, max_test=16)
    model = build_model(model_config_for(ds, "bottleneck", "sentryattend", size="tiny"))
    scorer = ImportanceScorer.for_model(model, hidden=16)
    out = scorer(torch.tensor([True, False, True]))
    assert list(out) == [name for name, _ in model.blocks()]
    for name, blk in model.blocks():
        assert out[name][0].shape == blk.attn.head_gate.shape
        assert out[name][1].shape == blk.mlp.ffn_gate.shape
    batched = scorer(torch.ones(5, 3, dtype=torch.bool))
    assert batched["stream.a.0"][1].shape == (5, blk.mlp.ffn_gate.numel())
    rebuilt = ImportanceScorer.from_config(json.loads(json.dumps(scorer.config())))
    rebuilt.load_state_dict(scorer.state_dict())
    mask = torch.tensor([False, True, True])
    assert all(torch.equal(rebuilt(mask)[k][1], scorer(mask)[k][1]) for k in out)
    with pytest.raises(PruneError, match="valid: a, b, c"):
        scorer.scores_for(["a", "z"])


def test_alignment_loss_is_minimal_at_the_saliency_distribution() -> None:
    sal = {"x": (torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0, 1.0])),
           "y": (torch.tensor([0.5, 0.5]), torch.tensor([0.0, 4.0, 4.0]))}  # fmt: skip
    # exp(score) ∝ share of all saliency of its kind: the exact optimum of both terms
    ideal = {k: (h.clamp_min(1e-12).log(), c.clamp_min(1e-12).log()) for k, (h, c) in sal.items()}
    flat = {k: (torch.zeros(2), torch.zeros(3)) for k in sal}
    assert alignment_loss(ideal, sal).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment_loss(flat, sal).item() > 0.1
    # gradient descent on free scores recovers the ranking
    free = {
        k: (torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)) for k in sal
    }
    opt = torch.optim.Adam([t for pair in free.values() for t in pair], lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        alignment_loss(free, sal).backward()
        opt.step()
    assert free["x"][0][1] > free["x"][0][0] and free["y"][1][1] > free["y"][1][0]
    assert torch.logsumexp(free["y"][1], 0) > torch.logsumexp(free["x"][1], 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny late-fusion checkpoint trained briefly on synthetic data (a few seconds).

    The scorer keeps learning to the end and is refit on the final weights
    (``subnet_freeze_epochs=0``), so "predicts the final model's saliency" is what it was
    trained for. The default freezes it where the sub-network passes start; the backbone
    then adapts to its ranking, and the final saliency drifts from it by design."""
    ds = load_dataset("synthetic", max_train=384, max_test=256, seed=1)
    cfg = model_config_for(ds, "late", "dense", size="tiny")
    tc = TrainConfig(epochs=8, warmup_epochs=1, ramp_epochs=2, seed=1, threads=1,
                     scorer_final_steps=70, subnet_freeze_epochs=0.0)  # fmt: skip
    return ds, load_checkpoint(
        train(ds, cfg, tc, tmp_path_factory.mktemp("ck") / "ck", progress=False)
    )


def test_trained_scorer_lowers_units_of_an_absent_modality(trained) -> None:
    """Late fusion: enc.<m>.* heads/channels read modality m alone, so their scores must
    drop when m is absent, below the still-present encoders' units."""
    _, ck = trained
    scorer = ck.scorer
    assert scorer is not None
    full = scorer.scores_for(["a", "b", "c"])
    for gone in ("a", "b", "c"):
        rest = [m for m in ("a", "b", "c") if m != gone]
        without = scorer.scores_for(rest)
        for kind in (0, 1):
            drop = torch.logsumexp(full[f"enc.{gone}.0"][kind], 0) - torch.logsumexp(
                without[f"enc.{gone}.0"][kind], 0
            )
            assert drop > 0.5, (gone, kind, float(drop))
            others = torch.cat([without[f"enc.{m}.0"][kind] for m in rest])
            assert without[f"enc.{gone}.0"][kind].mean() < others.mean(), (gone, kind)
        # the absent modality's most important channels are the ones that lose
        top = full[f"enc.{gone}.0"][1].topk(8).indices
        assert (without[f"enc.{gone}.0"][1][top] < full[f"enc.{gone}.0"][1][top]).all()


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = a.argsort().argsort().double()
    rb = b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def test_scorer_ranks_channels_like_held_out_saliency(trained) -> None:
    """From the mask alone, the scorer must rank each present block's FFN channels like the
    saliency measured on unseen test data under that mask (Spearman)."""
    ds, ck = trained
    x = {k: torch.from_numpy(v) for k, v in ds.test.x.items()}
    y = torch.from_numpy(ds.test.y)
    for present in (["a", "b", "c"], ["b", "c"], ["a", "c"], ["a", "b"]):
        mask = ck.scorer.mask_for(present)
        sal = unit_saliency(ck.model, x, y, mask, groups=16)
        scores = ck.scorer.scores_for(present)
        rhos = [_spearman(sal[n][1], scores[n][1]) for n in sal if float(sal[n][1].sum()) > 0]
        assert min(rhos) > 0.6 and sum(rhos) / len(rhos) > 0.8, (present, rhos)


def test_a_pinned_pattern_answers_its_scores_at_pin_time_and_the_rest_learn_on() -> None:
    """``pin`` freezes one modality pattern's ranking (training pins the all-present one
    where the sub-network passes start); the other patterns keep training, and the pin
    survives the config/state-dict round trip a checkpoint makes."""
    torch.manual_seed(0)
    scorer = ImportanceScorer(["a", "b"], {"x": [2, 3], "y": [1, 4]}, hidden=8)
    for p in scorer.parameters():
        torch.nn.init.normal_(p)
    both, only_a = torch.tensor([True, True]), torch.tensor([True, False])
    pinned = {k: (h.clone(), c.clone()) for k, (h, c) in scorer(both).items()}
    scorer.pin(both)
    assert scorer.is_pinned([True, True]) and not scorer.is_pinned(only_a)
    before = scorer(only_a)["x"][1].clone()
    opt = torch.optim.SGD(scorer.parameters(), lr=0.5)
    for _ in range(3):  # alignment steps on both patterns: only the unpinned one moves
        loss = sum(s.square().sum() for m in (both, only_a) for pair in scorer(m).values()
                   for s in pair)  # fmt: skip
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.allclose(scorer(only_a)["x"][1], before)
    for name, (h, c) in scorer(both).items():
        assert torch.equal(h, pinned[name][0]) and torch.equal(c, pinned[name][1])
    batch = scorer(torch.stack([only_a, both]))  # per-row: the pinned row answers its pin
    assert torch.equal(batch["y"][1][1], pinned["y"][1])
    assert torch.equal(batch["y"][1][0], scorer(only_a)["y"][1])
    again = ImportanceScorer.from_config(scorer.config())
    again.load_state_dict(scorer.state_dict(), strict=True)
    assert scorer.config()["pinned"] == ["11"]
    assert torch.equal(again(both)["x"][0], pinned["x"][0])
    assert torch.equal(again(only_a)["x"][0], scorer(only_a)["x"][0])
    assert "pinned" not in ImportanceScorer(["a"], {"x": [1, 1]}).config()  # old configs


def test_a_malformed_pin_in_a_config_is_a_model_error() -> None:
    base = {"modalities": ["a", "b"], "blocks": {"x": [1, 2]}}
    for bad in (["1"], ["00"], ["1x"], ["11", "11"]):
        with pytest.raises(ModelError, match="pattern"):
            ImportanceScorer.from_config({**base, "pinned": bad})
