"""Checkpoints: round trip through safetensors + JSON, malformed files, atomic writes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from sentryfuse.checkpoint import load_checkpoint, save_checkpoint
from sentryfuse.conditions import parse_condition
from sentryfuse.data import load_dataset
from sentryfuse.errors import ModelError
from sentryfuse.evaluate import evaluate_accuracy
from sentryfuse.gate.scorer import ImportanceScorer
from sentryfuse.models import build_model, model_config_for


@pytest.fixture(scope="module")
def ds():
    return load_dataset("synthetic", max_train=32, max_test=48, seed=2)


@pytest.fixture()
def saved(ds, tmp_path):
    torch.manual_seed(0)
    model = build_model(model_config_for(ds, "early", "sentryattend", size="tiny")).eval()
    scorer = ImportanceScorer.for_model(model, hidden=8)
    with torch.no_grad():
        for p in scorer.parameters():
            p.normal_()
    meta = {"train": {"epochs": 1}, "dataset": {"name": ds.name}}
    out = save_checkpoint(tmp_path / "ck", model, scorer, meta, {"accuracy": {"all": 0.5}})
    return model, scorer, out


def test_round_trip_is_exact_and_pickle_free(ds, saved) -> None:
    model, scorer, out = saved
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
    ]
    tensors = load_file(str(out / "model.safetensors"))  # plain safetensors, no pickle
    assert any(k.startswith("scorer.") for k in tensors)
    config = json.loads((out / "config.json").read_text())
    assert set(config) == {"model", "train", "dataset", "scorer"}
    ck = load_checkpoint(out)
    assert ck.metrics == {"accuracy": {"all": 0.5}} and ck.modalities == ["a", "b", "c"]
    x = {k: torch.from_numpy(v[:8]) for k, v in ds.test.x.items()}
    with torch.no_grad():
        assert torch.equal(ck.model(x), model(x))
    mask = torch.tensor([True, False, True])
    assert torch.equal(ck.scorer(mask)["joint.1"][1], scorer(mask)["joint.1"][1])
    for cond in ("all", "drop:b", "random:0.3"):
        c = parse_condition(cond)
        assert evaluate_accuracy(ck.model, ds.test, c) == evaluate_accuracy(model, ds.test, c)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda d: (d / "config.json").unlink(), "config.json is missing"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\x00garbage"), "safetensors"),
        (lambda d: (d / "model.safetensors").unlink(), "model.safetensors is missing"),
    ],
)
def test_malformed_checkpoint_is_one_line_model_error(saved, damage, fragment) -> None:
    _, _, out = saved
    damage(out)
    with pytest.raises(ModelError, match=fragment) as err:
        load_checkpoint(out)
    assert "\n" not in str(err.value)


def test_weights_that_do_not_fit_the_config_are_rejected(saved) -> None:
    _, _, out = saved
    cfg = json.loads((out / "config.json").read_text())
    cfg["model"]["d_ff"] = cfg["model"]["d_ff"] * 2
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="do not match config.json"):
        load_checkpoint(out)


def test_save_refuses_a_foreign_directory_and_leaves_no_temp(ds, saved, tmp_path) -> None:
    model, scorer, out = saved
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(ModelError, match="not a checkpoint directory"):
        save_checkpoint(foreign, model, scorer, {}, {})
    assert [p.name for p in foreign.iterdir()] == ["cat.jpg"]
    save_checkpoint(out, model, None, {}, {"v": 2})  # overwriting a checkpoint is fine
    assert load_checkpoint(out).scorer is None and load_checkpoint(out).metrics == {"v": 2}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
