"""GPU benchmark for scripts/device-check.sh: torch CUDA, ONNX Runtime CUDA, TensorRT.

One small CNN (unrelated to SentryFuse, seeded) exported to ONNX, then measured through
the harness's own paths — the cuda target's torch runner measured in trials (``harness.trials``), and
``sentryfuse bench`` for ONNX Runtime's CUDA provider and TensorRT — so the figures
printed are the ones a user's run would store: p50/p99 latency per query (inputs on the
device), and the device's own H2D / compute / D2H event timings. A runtime that is not
installed is reported as skipped with the reason, never as a number.

    python benchmarks/device_check.py --out /tmp/devcheck [--duration-s 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


class CNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(32, 64, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(64, 128, 3, stride=2, padding=1), torch.nn.ReLU(),
        )  # fmt: skip
        self.fc = torch.nn.Linear(128, 10)

    def forward(self, x: dict[str, torch.Tensor] | torch.Tensor) -> torch.Tensor:
        x = x["image"] if isinstance(x, dict) else x
        return self.fc(self.body(x).mean((2, 3)))


def torch_cuda(model: CNN, batch: int, duration_s: float) -> dict:
    from harness.devicetiming import device_extra, window_start
    from harness.profile_schema import MeasureSettings
    from harness.trials import Subject, measure_trials
    from targets import get_target

    target = get_target("cuda")
    avail = target.availability()
    if not avail.ok:
        return {"skipped": avail.reason}
    example = {
        "image": np.random.default_rng(0).standard_normal((batch, 3, 64, 64)).astype(np.float32)
    }
    runner = target.export(model, example, "torch", Path("."))
    settings = MeasureSettings(warmup_s=0.2, min_duration_s=duration_s / 5, min_count=100)
    subject = Subject(
        runner, [example], synchronize=runner.synchronize, energy_sensor=target.energy_sensor(),
        memory=target.memory, memory_reset=window_start(target, runner),
    )  # fmt: skip
    m = measure_trials(subject, settings)
    extra = device_extra(runner)
    return {
        "p50_ms": m.latency_ms_p50, "p99_ms": m.latency_ms_p99, "n": m.pooled.n,
        "trials": len(m.trials), "unstable": m.unstable_reason,
        "energy_mj_per_query": m.energy_mj_per_inference, "energy_source": m.window.energy_source,
        **extra, "fingerprint": target.fingerprint(),
    }  # fmt: skip


def bench(onnx: Path, runtime: str, batch: int, duration_s: float, out: Path) -> dict:
    from harness.cli import main

    run_dir = out / f"bench-{runtime}"
    argv = ["bench", str(onnx), "--target", "cuda", "--runtime", runtime, "--batch", str(batch),
            "--duration-s", str(duration_s), "--out", str(run_dir)]  # fmt: skip
    rc = main(argv)
    return {"exit": rc, "store": str(run_dir / "results.sqlite")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--duration-s", type=float, default=2.0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = CNN().eval()
    onnx = args.out / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.randn(1, 3, 64, 64),), str(onnx), input_names=["image"],
            output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    results: dict[str, dict] = {"torch-cuda": torch_cuda(model, args.batch, args.duration_s)}
    print("torch-cuda:", json.dumps(results["torch-cuda"], default=str))
    import importlib.util

    try:
        import onnxruntime as ort

        has_ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    except ImportError:
        has_ort_cuda = False
    for runtime, present, why in [
        ("onnxruntime", has_ort_cuda, "onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu)"),
        ("tensorrt", importlib.util.find_spec("tensorrt") is not None, "TensorRT not installed"),
    ]:
        results[runtime] = (
            bench(onnx, runtime, args.batch, args.duration_s, args.out)
            if present
            else {"skipped": why}
        )
        print(f"{runtime}:", json.dumps(results[runtime]))
    (args.out / "device_check.json").write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
