"""cuda target's NVML paths on a fake NVML holding recorded values (tests/traces/nvml_*.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentryfuse.errors import PowerModeError
from targets import get_target
from targets.fakes import FakeNvml

VALUES = Path(__file__).parent / "traces" / "nvml_h100_values.json"


def test_power_limit_modes_within_constraints_and_restore():
    nvml = FakeNvml.from_file(VALUES)
    modes = get_target("cuda", nvml=nvml).power_modes()
    assert modes.available().ok
    limits = {m.name: m.description for m in modes.list()}
    assert limits["tdp"] == "power limit 700 W" and limits["tdp-50"] == "power limit 350 W"
    assert modes.current() == "tdp"
    with modes.apply("tdp-50-locked"):
        assert nvml.limit_mw == 350_000 and nvml.locked_clocks == (1755, 1755)
        assert modes.current() == "tdp-50-locked"
    assert nvml.limit_mw == 700_000 and nvml.locked_clocks is None


def test_without_root_power_modes_are_unavailable_with_the_reason():
    modes = get_target("cuda", nvml=FakeNvml.from_file(VALUES, root=False)).power_modes()
    avail = modes.available()
    assert not avail.ok and "no permission (needs root)" in avail.reason
    with pytest.raises(PowerModeError, match="no permission"):
        modes.set("tdp-75")


def test_failing_set_restores_previous_limit_and_clocks():
    nvml = FakeNvml.from_file(VALUES)
    modes = get_target("cuda", nvml=nvml).power_modes()
    with modes.apply("tdp-75-locked"):
        pass
    nvml.limit_mw = 600_000  # someone else's setting before our run
    nvml.fail_next_set = True
    with pytest.raises(PowerModeError, match="cannot set GPU power mode"), modes.apply("tdp-50"):
        pytest.fail("body must not run")
    assert nvml.limit_mw == 600_000 and nvml.locked_clocks is None


def test_energy_is_the_total_energy_counter_difference():
    nvml = FakeNvml.from_file(VALUES)
    ticks = iter([10.0, 10.5])
    sensor = get_target("cuda", nvml=nvml, clock=lambda: next(ticks)).energy_sensor()
    assert sensor.available().ok  # consumes the first recorded value
    with sensor.window() as w:
        pass
    assert w.reading.total_mj == 75_000 and w.reading.source == "measured"
    assert w.reading.sensor == "nvml-total-energy" and w.reading.elapsed_s == 0.5


def test_energy_not_supported_says_so():
    sensor = get_target(
        "cuda", nvml=FakeNvml.from_file(VALUES, energy_supported=False)
    ).energy_sensor()
    assert "not supported" in sensor.available().reason
