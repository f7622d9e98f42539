"""Shape manifests round-trip; every backbone exports to ONNX and matches torch."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest
import torch

from sentryfuse.errors import ModelError
from sentryfuse.models import (
    ATTENTIONS,
    BACKBONES,
    KeepSet,
    ModalityInput,
    build_model,
    load_variant,
    model_config_for,
    prune_model,
    save_variant,
)
from sentryfuse.models.export import export_onnx

SPECS = [
    ModalityInput("acc", 16, 3, 2),
    ModalityInput("gyro", 16, 3, 2),
    ModalityInput("hr", 8, 1, 1),
]
GRID = list(itertools.product(BACKBONES, ATTENTIONS))


def tiny(backbone: str, attention: str):
    torch.manual_seed(0)
    return build_model(model_config_for(SPECS, backbone, attention, "tiny", num_classes=5)).eval()


def batch(n: int, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m.name: torch.randn(n, m.steps, m.features, generator=g) for m in SPECS}


def pruned(backbone: str, attention: str):
    model = tiny(backbone, attention)
    keep = {n: KeepSet([0, 1, 3], list(range(0, b.mlp.d_ff, 3))) for n, b in model.blocks()}
    return prune_model(model, keep, present=["acc", "hr"])


@pytest.mark.parametrize("backbone,attention", GRID)
def test_manifest_round_trip(tmp_path, backbone, attention):
    model = pruned(backbone, attention)
    save_variant(model, tmp_path / "v", meta={"method": "test"})
    manifest = json.loads((tmp_path / "v" / "config.json").read_text())
    assert manifest["meta"] == {"method": "test"} and manifest["model"]["present"] == ["acc", "hr"]
    loaded = load_variant(tmp_path / "v")
    assert loaded.config == model.config
    x = batch(3)
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    assert not list(tmp_path.glob("v/.*tmp"))


def test_load_variant_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_variant(tmp_path)
    save_variant(pruned("early", "dense"), tmp_path)
    other = tiny("early", "dense")
    from safetensors.torch import save_file

    save_file(
        {k: v.contiguous() for k, v in other.state_dict().items()},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(ModelError, match="does not match its manifest"):
        load_variant(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_variant(tmp_path)


@pytest.mark.parametrize("backbone,attention", GRID)
def test_onnx_export_matches_torch(tmp_path, backbone, attention):
    ort = pytest.importorskip("onnxruntime")
    model = pruned(backbone, attention)  # pruned variants (uneven groups) must export too
    path = str(tmp_path / "m.onnx")
    present = torch.tensor([[True, True, True], [False, False, True]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = export_onnx(model, batch(2), path, present=present)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = batch(5, seed=2)  # a different batch size: the batch axis is dynamic
    mask = torch.tensor(
        [
            [True, True, True],
            [False, True, True],
            [True, False, False],
            [True] * 3,
            [False, True, True],
        ]
    )
    feeds = {n: (mask if n == "present" else x[n]).numpy() for n in names}
    out = session.run(None, feeds)[0]
    np.testing.assert_allclose(out, model(x, mask).detach().numpy(), atol=1e-4, rtol=1e-4)
