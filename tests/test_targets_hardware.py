"""Real-hardware checks: run where the hardware exists, skipped with the reason elsewhere."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from targets import get_target

CUDA = get_target("cuda").availability()
JETSON = get_target("jetson").availability()
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = (
            torch.nn.Linear(3, 8),
            torch.nn.Linear(2, 8),
            torch.nn.Linear(8, 4),
        )

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.a(x["acc"]).mean(1) + self.b(x["gyro"]).mean(1))


def batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "acc": rng.standard_normal((8, 16, 3), dtype=np.float32),
        "gyro": rng.standard_normal((8, 16, 2), dtype=np.float32),
    }


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA.ok, reason=CUDA.reason or "no CUDA")
def test_cuda_torch_runner_parity_and_energy(tmp_path):
    torch.manual_seed(0)
    target = get_target("cuda")
    runner = target.export(Tiny(), batch(), "torch", tmp_path)
    prepared = runner.prepare(batch())
    assert runner(prepared).shape == (8, 4)
    runner.synchronize()
    print("fingerprint:", target.fingerprint())
    sensor = target.energy_sensor()
    if sensor.available().ok:
        with sensor.window() as w:
            for _ in range(200):
                runner(prepared)
            runner.synchronize()
        print("energy:", w.reading)
    print("power modes:", target.power_modes().available())
    print("memory:", target.memory(runner))


@pytest.mark.cuda
@pytest.mark.tensorrt
@pytest.mark.skipif(not (CUDA.ok and HAS_TRT), reason=CUDA.reason or "TensorRT is not installed")
def test_tensorrt_engine_parity(tmp_path):
    torch.manual_seed(0)
    runner = get_target("cuda").export(Tiny(), batch(), "tensorrt", tmp_path)
    assert runner(batch()).shape == (8, 4) and (tmp_path / "model.engine").exists()
    small = {k: v[:2] for k, v in batch().items()}
    assert runner(small).shape == (2, 4)


@pytest.mark.jetson
@pytest.mark.skipif(not JETSON.ok, reason=JETSON.reason or "not a Jetson")
def test_jetson_sensor_and_modes_on_the_board():
    target = get_target("jetson")
    print("fingerprint:", target.fingerprint())
    sensor = target.energy_sensor()
    assert sensor.available().ok, sensor.available().reason
    with sensor.window() as w:
        import time

        time.sleep(0.5)
    assert w.reading.samples >= 2 and w.reading.total_mj > 0
    assert [m.name for m in target.power_modes().list()]
