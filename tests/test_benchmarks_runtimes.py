"""The runtime benchmark times an A/A pair (the unpruned model exported twice) with the rest."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")

from benchmarks.runtimes import AA, main  # noqa: E402


def test_runtimes_benchmark_has_an_aa_row(tmp_path) -> None:
    out = tmp_path / "rows.json"
    args = ["--shapes", "hapt", "--backbones", "early", "--attentions", "dense",
            "--runtimes", "onnxruntime", "--rounds", "2", "--round-size", "3",
            "--warmup", "1", "--sparsities", "0.5", "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    rows = json.loads(out.read_text())
    by_sparsity = {r["sparsity"]: r for r in rows}
    assert set(by_sparsity) == {0.0, AA, 0.5}
    aa, pruned = by_sparsity[AA], by_sparsity[0.5]
    assert aa["gflops_limit"] == pytest.approx(1.0)  # the same graph: no speedup possible
    assert aa["speedup"] > 0 and aa["n"] == pruned["n"] == 6  # timed in the same loop
    assert pruned["gflops_limit"] > 1.5
    assert main(["--render", str(out)]) == 0
