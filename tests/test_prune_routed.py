"""Per-sample dropout: every sample runs on the sub-network pruned for its own pattern."""

from __future__ import annotations

import numpy as np
from checkpoint_helpers import make_checkpoint

from harness.dropout import parse_condition as parse_stream_condition
from sentryfuse.checkpoint import load_checkpoint
from sentryfuse.conditions import ALL, Condition, parse_condition
from sentryfuse.data import load_dataset
from sentryfuse.evaluate import predict
from sentryfuse.prune import prune
from sentryfuse.prune.routed import present_patterns, routed_accuracy, routed_predict


def test_patterns_are_the_seeded_mask_evaluate_draws(tmp_path) -> None:
    names = ["a", "b", "c"]
    for cond in (parse_condition("random:0.4"), parse_stream_condition("burst:0.3:5")):
        groups = present_patterns(cond, names, 200, seed=7)
        mask = cond.present_mask(200, names, np.random.default_rng(7))
        rows = np.concatenate([r for _, r in groups])
        assert sorted(rows.tolist()) == list(range(200))  # each sample exactly once
        for present, r in groups:
            expect = np.array([m in present for m in names])
            assert (mask[r] == expect).all()
        assert len(groups) > 2  # genuinely per-sample


def test_each_sample_is_predicted_by_its_patterns_sentrygate_variant(tmp_path) -> None:
    ds = load_dataset("synthetic", max_train=32, max_test=120, seed=2)
    ckpt = load_checkpoint(make_checkpoint(ds, "late", "dense", tmp_path / "ck"))
    names = list(ds.modality_names)
    cond = parse_condition("random:0.4")
    asked: list[tuple[str, ...]] = []
    models = {}

    def variant_for(present):
        asked.append(present)
        models[present] = prune(ckpt, "sentrygate", 0.5, present=list(present)).model
        return models[present]

    pred, k = routed_predict(variant_for, ds.test, cond, names, seed=3)
    groups = present_patterns(cond, names, len(ds.test), 3)
    assert k == len(groups) == len(set(asked)) == len(asked)
    assert sorted(asked) == sorted(p for p, _ in groups)
    for present, rows in groups:
        absent = tuple(m for m in names if m not in present)
        static = Condition("drop", dropped=absent) if absent else ALL
        alone = predict(models[present], ds.test.take(rows), static)
        assert (pred[rows] == alone).all()
        # the sub-network has no encoder for what the pattern lacks
        assert set(models[present].config.present or names) == set(present)
    acc, _ = routed_accuracy(variant_for, ds.test, cond, names, seed=3)
    assert acc == float((pred == ds.test.y).mean())
