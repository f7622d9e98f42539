"""NVML opens the GPU the runner uses: by UUID / PCI bus id, honouring CUDA_VISIBLE_DEVICES.

A fake two-GPU machine (NVML order = PCI bus order) whose values are laid out as
``nvidia-smi -L`` / ``nvmlDeviceGetPciInfo`` print them; energy and power limits must
land on the GPU the process computes on, not on NVML index 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentryfuse.errors import SensorError
from targets import get_target
from targets.fakes import FakeNvml
from targets.gpu_select import locate_gpu, visible_entries

VALUES = json.loads((Path(__file__).parent / "traces" / "nvml_h100_values.json").read_text())
GPU0 = {"uuid": "GPU-5f0c39a2-8d1e-4b7f-9a51-2c6e0f3d7a11", "pci_bus_id": "00000000:18:00.0"}
GPU1 = {"uuid": "GPU-c2a7e4b9-1f03-4d58-b6e2-90a4d1c8f5e3", "pci_bus_id": "00000000:3B:00.0"}


def two_gpus() -> FakeNvml:
    return FakeNvml({**VALUES, "devices": [GPU0, GPU1]})


NO_RUNTIME = None  # cuda_ids=None: no CUDA runtime to ask, only the environment


@pytest.mark.parametrize(
    ("value", "entries"),
    [
        (None, None),
        ("", []),
        ("1", ["1"]),
        ("1,0", ["1", "0"]),
        ("0,-1,1", ["0"]),  # CUDA stops at the first invalid entry
        ("GPU-c2a7e4b9", ["GPU-c2a7e4b9"]),
        (" 1 , GPU-5f0c", ["1", "GPU-5f0c"]),
    ],
)
def test_visible_entries_follow_cuda_parsing(value, entries):
    assert visible_entries(value) == entries


def test_index_form_picks_the_physical_gpu():
    nvml = two_gpus()
    env = {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    ref = locate_gpu(nvml, 0, env=env, cuda_ids=NO_RUNTIME)
    assert ref.handle == 1 and ref.uuid == GPU1["uuid"]
    assert "entry '1'" in ref.how and "may order" not in ref.how


def test_index_form_without_pci_order_says_so():
    ref = locate_gpu(two_gpus(), 0, env={"CUDA_VISIBLE_DEVICES": "1"}, cuda_ids=NO_RUNTIME)
    assert ref.handle == 1 and "CUDA_DEVICE_ORDER is not PCI_BUS_ID" in ref.how


@pytest.mark.parametrize("uuid", [GPU1["uuid"], GPU1["uuid"][:12], GPU1["uuid"].upper()[:12]])
def test_uuid_form_full_and_abbreviated(uuid):
    ref = locate_gpu(two_gpus(), 0, env={"CUDA_VISIBLE_DEVICES": uuid}, cuda_ids=NO_RUNTIME)
    assert ref.handle == 1 and ref.pci_bus_id == GPU1["pci_bus_id"]


def test_second_ordinal_of_a_reordered_list():
    env = {"CUDA_VISIBLE_DEVICES": f"{GPU1['uuid']},{GPU0['uuid']}"}
    assert locate_gpu(two_gpus(), 1, env=env, cuda_ids=NO_RUNTIME).handle == 0


def test_runtime_answer_wins_over_the_environment():
    ids = {0: (None, "0000:3b:00.0")}  # pycuda's Device.pci_bus_id() spelling
    ref = locate_gpu(two_gpus(), 0, env={"CUDA_VISIBLE_DEVICES": "0"}, cuda_ids=ids.get)
    assert ref.handle == 1 and "PCI bus id from the CUDA runtime" in ref.how
    ref = locate_gpu(two_gpus(), 0, env={}, cuda_ids=lambda i: (GPU1["uuid"], None))
    assert ref.handle == 1 and "UUID" in ref.how


def test_hidden_or_unknown_gpu_is_one_line_error():
    with pytest.raises(SensorError, match="exposes 0 GPU"):
        locate_gpu(two_gpus(), 0, env={"CUDA_VISIBLE_DEVICES": ""}, cuda_ids=NO_RUNTIME)
    with pytest.raises(SensorError, match="no single GPU with UUID 'GPU-ffff'"):
        locate_gpu(two_gpus(), 0, env={"CUDA_VISIBLE_DEVICES": "GPU-ffff"}, cuda_ids=NO_RUNTIME)


def test_cuda_target_energy_and_limits_go_to_the_visible_gpu():
    nvml = two_gpus()
    env = {"CUDA_VISIBLE_DEVICES": GPU1["uuid"]}
    target = get_target("cuda", nvml=nvml, env=env, cuda_ids=NO_RUNTIME)
    sensor = target.energy_sensor()
    assert sensor.available().ok
    with sensor.window() as w:
        pass
    modes = target.power_modes()
    with modes.apply("tdp-50"):
        pass
    assert w.reading.total_mj == 75_000
    assert nvml.touched and set(nvml.touched) == {1}
    fp = target.fingerprint()
    assert fp["gpu_uuid"] == GPU1["uuid"] and fp["gpu_pci_bus_id"] == GPU1["pci_bus_id"]
    assert "UUID" in fp["nvml_device"]
