"""A user's ONNX file: inputs read from the graph, shapes resolved, ORT device binding.

Real ONNX Runtime on CPU. ``OrtDeviceRunner`` is the CUDA provider's runner; on CPU it
binds to the ``cpu`` device through the same I/O-binding calls, which checks the
binding path and its H2D / compute / D2H accounting without a GPU.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from sentryfuse.errors import TargetError
from targets.onnx_file import (
    OnnxFileRunner,
    OrtDeviceRunner,
    example_batches,
    onnx_file_runner,
    read_onnx_inputs,
    resolve_shapes,
)


class TwoInputs(torch.nn.Module):
    """Token ids (int64, dynamic batch and length) and a float feature vector (fixed batch 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(20, 6)
        self.fc = torch.nn.Linear(6 + 4, 3)

    def forward(self, tokens: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.cat([self.emb(tokens).mean(1), feats.expand(tokens.shape[0], -1)], 1))


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("onnx") / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TwoInputs().eval(), (torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, 4)),
            str(path), input_names=["tokens", "feats"], output_names=["out"],
            dynamic_axes={"tokens": {0: "batch", 1: "seq"}, "out": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    return path


def test_inputs_and_shapes_come_from_the_graph(onnx_path):
    inputs, outputs = read_onnx_inputs(onnx_path)
    assert [(i.name, i.dtype, i.dims) for i in inputs] == [
        ("tokens", np.dtype(np.int64), ("batch", "seq")),
        ("feats", np.dtype(np.float32), (1, 4)),
    ]
    assert outputs == ["out"]
    with pytest.raises(TargetError, match=r"--shape tokens=1xN"):
        resolve_shapes(inputs, 1, {})
    shapes = resolve_shapes(inputs, 3, {"tokens": (3, 7)})
    assert shapes == {"tokens": (3, 7), "feats": (1, 4)}
    with pytest.raises(TargetError, match="no input has a dynamic batch axis"):
        resolve_shapes([inputs[1]], 3, {})
    with pytest.raises(TargetError, match="does not fit its dims"):
        resolve_shapes(inputs, 1, {"tokens": (1, 5), "feats": (2, 4)})
    batch = example_batches(inputs, shapes, count=1)[0]
    assert batch["tokens"].dtype == np.int64 and set(np.unique(batch["tokens"])) <= {0, 1}


def test_device_binding_matches_plain_ort_and_times_each_part(onnx_path):
    inputs, _ = read_onnx_inputs(onnx_path)
    shapes = resolve_shapes(inputs, 2, {"tokens": (2, 6)})
    batch = example_batches(inputs, shapes, count=1)[0]
    ticks = itertools.count()
    runner = OrtDeviceRunner(
        onnx_path, tuple(shapes), 0, providers=["CPUExecutionProvider"], device="cpu",
        clock=lambda: next(ticks) * 1e-3,  # every clock read is 1 ms later
    )  # fmt: skip
    prepared = runner.prepare(batch)
    assert runner.prepare(prepared) is prepared  # idempotent
    runner(prepared)  # before the window: not counted
    runner.mark_window()
    got = [runner(prepared) for _ in range(3)]
    want = OnnxFileRunner(onnx_path, tuple(shapes), 0)(batch)
    for g in got:
        np.testing.assert_allclose(g, want, rtol=1e-6)
    t = runner.device_timings_ms()
    assert t == {"h2d_ms": [pytest.approx(1.0)], "compute_ms": [pytest.approx(1.0)] * 3,
                 "d2h_ms": [pytest.approx(1.0)] * 3}  # fmt: skip


def test_runtime_names_are_checked_per_target(onnx_path, tmp_path):
    with pytest.raises(TargetError, match="valid: onnxruntime"):
        onnx_file_runner(
            "cpu", onnx_path, {"tokens": (1, 5), "feats": (1, 4)}, "tensorrt", tmp_path
        )
    with pytest.raises(TargetError, match="no CUDAExecutionProvider"):
        onnx_file_runner(
            "cuda", onnx_path, {"tokens": (1, 5), "feats": (1, 4)}, "onnxruntime", tmp_path
        )
