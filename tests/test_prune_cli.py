"""``sentryfuse prune``: bad input → one line + exit 2; a written variant rebuilds exactly."""

from __future__ import annotations

import json

import pytest
import torch
from checkpoint_helpers import make_checkpoint

from harness.cli import main
from sentryfuse.checkpoint import load_checkpoint
from sentryfuse.data import load_dataset
from sentryfuse.models import load_variant
from sentryfuse.prune import prune


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    data = load_dataset("synthetic", max_train=128, max_test=32, seed=0)
    return make_checkpoint(data, "late", "dense", tmp_path_factory.mktemp("cli") / "ck")


@pytest.fixture(scope="module")
def bare_ckpt_dir(tmp_path_factory):
    """A checkpoint trained without the SentryGate scorer."""
    data = load_dataset("synthetic", max_train=64, max_test=32, seed=0)
    return make_checkpoint(
        data, "early", "dense", tmp_path_factory.mktemp("bare") / "ck", scorer=False
    )


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--method", "sentrygate", "--sparsity", "1.0"], "sparsity"),
        (["--method", "sentrygate", "--sparsity", "-0.1"], "sparsity"),
        (["--method", "sentrygate", "--sparsity", "half"], "sparsity"),
        (
            ["--method", "sentrygate", "--sparsity", "0.3", "--drop", "a", "b", "c"],
            "every modality",
        ),
        (["--method", "sentrygate", "--sparsity", "0.3", "--drop", "gyro"], "unknown modality"),
        (["--method", "fishr", "--sparsity", "0.3"], "did you mean 'fisher'"),
        (["--method", "random", "--sparsity", "0.3", "--budget", "watts"], "unknown budget"),
    ],
)
def test_bad_input_is_one_line_exit_2(ckpt_dir, tmp_path, capsys, extra, needle):
    out = tmp_path / "variant"
    rc = main(["prune", str(ckpt_dir), *extra, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and needle in err
    assert not out.exists()


def test_sentrygate_without_scorer_exit_2(bare_ckpt_dir, tmp_path, capsys):
    out = tmp_path / "variant"
    rc = main(["prune", str(bare_ckpt_dir), "--method", "sentrygate", "--sparsity", "0.3",
               "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "no SentryGate scorer" in err
    assert not out.exists()


def test_missing_checkpoint_exit_2(tmp_path, capsys):
    rc = main(["prune", str(tmp_path / "nope"), "--method", "random", "--sparsity", "0.3",
               "--out", str(tmp_path / "v")])  # fmt: skip
    assert rc == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["sentrygate", "fisher"])
def test_prune_cli_writes_a_variant_that_rebuilds_identically(ckpt_dir, tmp_path, capsys, method):
    out = tmp_path / "variant"
    argv = ["prune", str(ckpt_dir), "--method", method, "--sparsity", "0.4", "--drop", "c",
            "--budget", "flops", "--calib-samples", "16", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "params:" in text and "GFLOPs/sample:" in text and "prune time:" in text
    manifest = json.loads((out / "config.json").read_text())
    assert manifest["meta"]["method"] == method and manifest["meta"]["present"] == ["a", "b"]
    rebuilt = load_variant(out)
    data = load_dataset("synthetic", max_train=128, max_test=32, seed=0)
    x = {m: torch.from_numpy(data.test.x[m][:8]) for m in ("a", "b")}
    if method == "sentrygate":  # deterministic and data-free: the in-process result matches
        ref = prune(
            load_checkpoint(ckpt_dir), "sentrygate", 0.4, present=["a", "b"], budget="flops"
        )
        torch.testing.assert_close(rebuilt(x), ref.model(x), atol=0, rtol=0)
    assert rebuilt(x).shape == (8, data.num_classes)
    blocks = dict(rebuilt.blocks())
    assert not any(n.startswith("enc.c.") for n in blocks)
