"""CPU target end to end: a tiny dict-input model through every CPU runtime, for real."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sentryfuse.errors import PowerModeError, TargetError
from targets import TARGETS, describe_targets, get_target
from targets.cpu_energy import ActiveCoresEstimateSensor, RaplSensor


class TinyMultimodal(torch.nn.Module):
    """Two modality encoders + a head; a missing modality is skipped, not zero-filled."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = torch.nn.ModuleDict(
            {"acc": torch.nn.Linear(3, 16), "gyro": torch.nn.Linear(2, 16)}
        )
        self.head = torch.nn.Linear(16, 5)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = [torch.relu(self.enc[m](x)).mean(dim=1) for m, x in inputs.items()]  # (B, 16) each
        return self.head(torch.stack(pooled).sum(0))  # (B, 5)


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "acc": rng.standard_normal((4, 8, 3), dtype=np.float32),
        "gyro": rng.standard_normal((4, 8, 2), dtype=np.float32),
    }


@pytest.fixture(scope="module")
def model() -> TinyMultimodal:
    torch.manual_seed(0)
    return TinyMultimodal().eval()


@pytest.mark.parametrize("runtime", ["torch", "torch-compiled", "onnxruntime"])
def test_every_cpu_runtime_matches_torch_and_runs(runtime, model, batch, tmp_path):
    target = get_target("cpu")
    runner = target.export(model, batch, runtime, tmp_path)
    with torch.inference_mode():
        expected = model({k: torch.from_numpy(v) for k, v in batch.items()}).numpy()
    out = runner(runner.prepare(batch))
    assert out.shape == (4, 5)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # a different batch size works (dynamic batch axis in the ONNX export)
    small = {k: v[:1] for k, v in batch.items()}
    np.testing.assert_allclose(runner(small), expected[:1], atol=1e-4)
    runner.synchronize()
    assert target.memory(runner).weights_mb == pytest.approx(
        sum(p.numel() * 4 for p in model.parameters()) / 2**20
    )
    if runtime == "onnxruntime":
        assert (tmp_path / "model.onnx").exists()


def test_onnx_export_that_disagrees_with_torch_is_refused_before_timing(batch, tmp_path):
    class Nondeterministic(TinyMultimodal):
        def forward(self, inputs):  # traced once; eager differs on every call
            return super().forward(inputs) + torch.rand(1)

    with pytest.raises(TargetError, match="differ from torch"):
        get_target("cpu").export(Nondeterministic().eval(), batch, "onnxruntime", tmp_path)


def test_runner_refuses_a_batch_missing_an_exported_modality(model, batch, tmp_path):
    runner = get_target("cpu").export(model, batch, "onnxruntime", tmp_path)
    with pytest.raises(TargetError, match="lacks modalities"):
        runner({"acc": batch["acc"]})


def test_unknown_runtime_and_target_list_valid_names(model, batch, tmp_path):
    with pytest.raises(TargetError, match="valid: onnxruntime, torch, torch-compiled"):
        get_target("cpu").export(model, batch, "tensorflow", tmp_path)
    with pytest.raises(TargetError, match="valid: cpu, cuda, jetson"):
        get_target("tpu")


def test_cpu_power_modes_restore_threads_and_affinity(model, batch, tmp_path):
    import os

    modes = get_target("cpu").power_modes()
    names = [m.name for m in modes.list()]
    assert names[0] == "max" and all(m.emulated for m in modes.list())
    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    with modes.apply("single"):
        assert torch.get_num_threads() == 1 and len(os.sched_getaffinity(0)) == 1
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before
    with (
        pytest.raises(PowerModeError, match="valid: " + ", ".join(sorted(names))),
        modes.apply("turbo"),
    ):
        pass
    # ORT follows the thread count the mode set
    runner = get_target("cpu").export(model, batch, "onnxruntime", tmp_path)
    with modes.apply("single"):
        runner(batch)
        assert runner.threads == 1


def test_cpu_energy_is_an_estimate_never_measured_without_rapl():
    sensor = get_target(
        "cpu", sysfs_root=__import__("pathlib").Path("/nonexistent")
    ).energy_sensor()
    assert isinstance(sensor, ActiveCoresEstimateSensor)
    with sensor.window() as w:
        sum(i * i for i in range(200_000))
    assert w.reading.source == "estimated" and w.reading.sensor == "cpu-active-cores-estimate"
    assert w.reading.total_mj > 0 and w.reading.model.startswith("cpu-active-cores-v1: 8 W/core")


def test_active_cores_estimate_uses_the_documented_per_core_figure():
    clock = iter([0.0, 2.0])
    sensor = ActiveCoresEstimateSensor(
        cpu_watts_per_core=4.0, base_watts=1.0, clock=lambda: next(clock), threads=lambda: 3
    )
    with sensor.window() as w:
        pass
    assert w.reading.total_mj == pytest.approx(2.0 * (4.0 * 3 + 1.0) * 1000)  # 2 s × 13 W
    assert w.reading.elapsed_s == 2.0
    assert w.reading.model == "cpu-active-cores-v1: 4 W/core × 3 threads + 1 W base"


def test_active_cores_follow_the_power_mode_threads():
    modes = get_target("cpu").power_modes()
    sensor = ActiveCoresEstimateSensor()
    with modes.apply("single"), sensor.window() as w:
        pass
    assert "× 1 threads" in w.reading.model


def test_rapl_counters_wrap_and_sum_packages(tmp_path):
    for i, (e0, name) in enumerate([(999_000_000, "package-0"), (5_000_000, "package-1")]):
        z = tmp_path / f"sys/class/powercap/intel-rapl:{i}"
        z.mkdir(parents=True)
        (z / "energy_uj").write_text(f"{e0}\n")
        (z / "max_energy_range_uj").write_text("1000000000\n")
        (z / "name").write_text(name + "\n")
    (tmp_path / "sys/class/powercap/intel-rapl:0:0").mkdir()  # a sub-zone: must not be counted
    sensor = get_target("cpu", sysfs_root=tmp_path).energy_sensor()
    assert isinstance(sensor, RaplSensor)
    with sensor.window() as w:
        (tmp_path / "sys/class/powercap/intel-rapl:0/energy_uj").write_text("1000000\n")  # wrapped
        (tmp_path / "sys/class/powercap/intel-rapl:1/energy_uj").write_text("6500000\n")
    assert w.reading.rails_mj == {
        "package-0": pytest.approx(2000.0),
        "package-1": pytest.approx(1500.0),
    }
    assert w.reading.source == "measured" and w.reading.total_mj == pytest.approx(3500.0)


def test_cpufreq_mode_records_and_restores_exactly(tmp_path):
    for cpu in (0, 1):
        d = tmp_path / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        d.mkdir(parents=True)
        for name, value in [
            ("scaling_governor", "schedutil"),
            ("scaling_max_freq", "2800000"),
            ("cpuinfo_max_freq", "3000000"),
            ("cpuinfo_min_freq", "400000"),
        ]:
            (d / name).write_text(value + "\n")
    modes = get_target("cpu", sysfs_root=tmp_path).power_modes()
    if len(__import__("os").sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs for the half-lowfreq mode")
    assert "half-lowfreq" in [m.name for m in modes.list()]
    with modes.apply("half-lowfreq"):
        assert (
            tmp_path / "sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq"
        ).read_text().strip() == "1500000"
    for cpu in (0, 1):
        d = tmp_path / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        assert (d / "scaling_max_freq").read_text().strip() == "2800000"
        assert (d / "scaling_governor").read_text().strip() == "schedutil"


def test_describe_targets_covers_every_target_and_says_why_not():
    infos = {i.name: i for i in describe_targets()}
    assert tuple(infos) == TARGETS
    assert infos["cpu"].availability.ok and "onnxruntime" in infos["cpu"].runtimes
    for name in ("cuda", "jetson"):
        if not infos[name].availability.ok:
            assert infos[name].availability.reason and "\n" not in infos[name].availability.reason


def test_cpu_fingerprint_names_the_device_and_versions():
    fp = get_target("cpu").fingerprint()
    assert fp["cpu_model"] and fp["torch"] == torch.__version__
    assert fp["power_mode_emulated"] is True and "power_mode" in fp
