"""The deployed runtime: parity before timing (through a run), gate folding, runtime
preference per target, claims quoted for the fastest runtime."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from profile_helpers import tiny_profile

from harness.commands import run as run_cmd
from reports.claims import claims_table
from reports.store import load_store
from sentryfuse.models import ModalityInput, build_model, model_config_for, prune_model
from sentryfuse.models.fold import fold_gates
from targets.base import Availability
from targets.cpu import CpuTarget
from targets.cuda import CudaTarget
from targets.export import export_onnx
from targets.preference import fastest_runtime, ranked

PROFILE = tiny_profile(
    "parity",
    grid={"attentions": ["dense"], "runtimes": ["onnxruntime"]},
    eval={"calib_samples": None},
)

SPECS = [ModalityInput("acc", 32, 3), ModalityInput("gyro", 32, 3)]


def _run(tmp_path: Path, target: CpuTarget) -> list[tuple]:
    tmp_path.mkdir(parents=True)
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    out = tmp_path / "out"
    args = argparse.Namespace(profile=path, out=out, resume=False, dry_run=False)
    run_cmd.run(args, target_factory=lambda name: target)
    db = sqlite3.connect(out / "results.sqlite")
    rows = db.execute(
        "SELECT c.status, c.error, c.latency_n,"
        " (SELECT count(*) FROM latency_samples s WHERE s.cell_key = c.cell_key) FROM cells c"
    ).fetchall()
    db.close()
    return rows


@pytest.mark.slow
def test_a_variant_failing_parity_is_a_failed_cell_with_its_largest_difference(tmp_path):
    # Exact agreement demanded: ONNX Runtime's float sums differ from torch's in the last
    # bits, so every exported cell must be refused before it is timed.
    rows = _run(tmp_path / "strict", CpuTarget(parity_atol=0.0, parity_rtol=0.0))
    assert len(rows) == 2  # dense + magnitude@0.5
    for status, error, latency_n, samples in rows:
        assert status == "failed" and latency_n is None and samples == 0
        assert "onnxruntime outputs differ from torch by up to" in error
        diff = float(error.split("by up to ")[1].split(" ")[0])
        assert 0 < diff < 1e-3  # the largest |difference|, a rounding-sized one
    ok = _run(tmp_path / "default", CpuTarget())
    assert [(r[0], r[3] > 0) for r in ok] == [("ok", True)] * 2


def _model(attention: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(model_config_for(SPECS, "early", attention, "tiny", num_classes=4))
    with torch.no_grad():  # non-trivial gates, so folding has something to fold
        for name, p in model.named_parameters():
            if name.endswith("_gate"):
                p.uniform_(0.2, 1.5)
    return model.eval()


@pytest.mark.parametrize("attention", ["dense", "sentryattend"])
def test_folded_gates_give_the_same_outputs_and_leave_no_gate_ops(attention, tmp_path):
    import onnx
    import onnxruntime as ort

    model = _model(attention)
    keep = {n: prune_keep(b) for n, b in model.blocks()}
    for m in (model, prune_model(model, keep).eval()):
        x = {s.name: torch.randn(2, s.steps, s.features) for s in SPECS}
        folded = fold_gates(m)
        with torch.inference_mode():
            np.testing.assert_allclose(folded(x), m(x), atol=1e-5)
            assert all(not getattr(a, "gated", False) for a in folded.modules())
            assert any(getattr(a, "gated", False) for a in m.modules())  # original untouched
        xs = {k: v.numpy() for k, v in x.items()}
        path = tmp_path / f"{attention}.onnx"
        export_onnx(m, xs, path, dynamic_batch=False)
        graph = onnx.load(str(path)).graph
        inits = {i.name for i in graph.initializer}
        assert not [n for n in inits if n.endswith("_gate")]  # folded into o / fc2
        assert all(d.dim_value == 2 for d in graph.input[0].type.tensor_type.shape.dim[:1])
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, xs)
        with torch.inference_mode():
            np.testing.assert_allclose(got[0], m(x).numpy(), atol=1e-4)


def prune_keep(block):
    from sentryfuse.models import KeepSet

    return KeepSet(list(range(0, block.attn.n_head, 2)), list(range(0, block.mlp.d_ff, 2)))


def test_an_ort_runner_builds_and_checks_a_graph_per_batch_size(tmp_path):
    model = _model("sentryattend")
    rng = np.random.default_rng(0)
    batch = {s.name: rng.standard_normal((3, s.steps, s.features), dtype=np.float32) for s in SPECS}
    runner = CpuTarget().export(model, batch, "onnxruntime", tmp_path)
    one = {k: v[:1] for k, v in batch.items()}
    with torch.inference_mode():
        expected = model({k: torch.from_numpy(v) for k, v in batch.items()}).numpy()
    np.testing.assert_allclose(runner(one), expected[:1], atol=1e-4)
    assert sorted(p.name for p in tmp_path.glob("*.onnx")) == ["model-b1.onnx", "model.onnx"]


def test_gpu_preference_tensorrt_then_ort_cuda_then_torch():
    def cuda(trt: bool, providers: list[str]) -> CudaTarget:
        return CudaTarget(
            ort_providers=lambda: providers,
            tensorrt_installed=lambda: trt,
            torch_cuda=lambda: Availability(True),
        )

    gpu_ort = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert fastest_runtime(cuda(True, gpu_ort)) == "tensorrt"
    assert fastest_runtime(cuda(False, gpu_ort)) == "onnxruntime"
    assert fastest_runtime(cuda(False, ["CPUExecutionProvider"])) == "torch"
    reason = cuda(False, ["CPUExecutionProvider"]).runtime_availability()["onnxruntime"].reason
    assert "no CUDAExecutionProvider" in reason and "onnxruntime-gpu" in reason
    assert fastest_runtime(CpuTarget()) == "onnxruntime"
    cpu = {"torch": Availability(True), "onnxruntime": Availability(False, "not installed")}
    assert ranked("cpu", cpu) == ["torch"]


def test_latency_claim_is_quoted_for_the_fastest_runtime():
    from tests.test_reports_write import REPORT_STORE

    cells = load_store(REPORT_STORE).cells
    fast = cells.copy()
    fast["runtime"] = "onnxruntime"
    fast["cell_key"] = fast["cell_key"] + "-ort"
    for col in [c for c in fast.columns if c.startswith("latency_ms_")]:
        fast[col] = fast[col] * 0.4
    text = claims_table(pd.concat([cells, fast])).set_index("claim")
    measured = text.loc["latency vs the dense model", "measured"]
    first, rest = measured.split(" (fastest runtime); also ")
    assert first.endswith("/onnxruntime") and "/torch" in rest
