"""Jetson paths on a fake sysfs tree and recorded, real-format command output (tests/traces/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentryfuse.errors import PowerModeError, TargetError
from targets import get_target
from targets.fakes import ScriptedRunner
from targets.hw import CommandResult
from targets.ina3221 import Ina3221Sensor, discover_rails
from targets.nvpmodel import parse_conf, parse_default, parse_query, parse_verbose
from targets.tegrastats import parse_line

TRACES = Path(__file__).parent / "traces"


def trace_lines(name: str) -> list[str]:
    return [ln for ln in (TRACES / name).read_text().splitlines() if ln and not ln.startswith("#")]


def make_board(
    root: Path, model: str = "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super"
) -> None:
    """A fake Orin Nano sysfs/etc tree: device-tree model, L4T release, INA3221 hwmon."""
    (root / "proc/device-tree").mkdir(parents=True)
    (root / "proc/device-tree/model").write_text(model + "\x00")
    (root / "etc").mkdir()
    (root / "etc/nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic, EABI: aarch64\n"
    )
    (root / "etc/nvpmodel.conf").write_text(
        (TRACES / "nvpmodel_conf_orin_nano_super.txt").read_text()
    )
    hw = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    hw.mkdir(parents=True)
    (hw / "update_interval").write_text("10\n")
    for ch, label, mv, ma in [
        (1, "VDD_IN", 5000, 1000),
        (2, "VDD_CPU_GPU_CV", 5000, 160),
        (3, "VDD_SOC", 5000, 240),
        (4, "NC", 0, 0),
        (7, "sum of shunt voltages", 1, 1),
    ]:
        (hw / f"in{ch}_label").write_text(label + "\n")
        (hw / f"in{ch}_input").write_text(f"{mv}\n")
        (hw / f"curr{ch}_input").write_text(f"{ma}\n")


def set_power(root: Path, rails_mw: dict[str, float]) -> None:
    hw = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for ch, label in [(1, "VDD_IN"), (2, "VDD_CPU_GPU_CV"), (3, "VDD_SOC")]:
        (hw / f"in{ch}_input").write_text("5000\n")
        (hw / f"curr{ch}_input").write_text(f"{rails_mw[label] / 5.0:g}\n")  # 5 V × mA = mW


# -- tegrastats ------------------------------------------------------------------------
def test_tegrastats_jetpack7_three_value_rails():
    agx, nano = (parse_line(ln) for ln in trace_lines("tegrastats_jp7.txt"))
    assert agx.rails_mw == {"VDD_GPU_SOC": 5139, "VDD_CPU_CV": 3268, "VIN_SYS_5V0": 5500}
    assert agx.third_mw["VDD_GPU_SOC"] == 5139 and agx.timestamp == "07-25-2026 09:08:28"
    assert nano.rails_mw == {"VDD_IN": 9761, "VDD_CPU_GPU_CV": 4238, "VDD_SOC": 1825}


def test_tegrastats_jetpack5_6_current_and_average():
    jp5, jp6, agx = (parse_line(ln) for ln in trace_lines("tegrastats_jp56.txt"))
    assert jp5.rails_mw == {"VDD_IN": 4915, "VDD_CPU_GPU_CV": 449, "VDD_SOC": 1431}
    assert jp6.rails_mw == {"VDD_IN": 2957, "VDD_CPU_GPU_CV": 486, "VDD_SOC": 1012}
    assert agx.rails_mw["VDD_CPU_CV"] == 14312 and agx.average_mw["VDD_CPU_CV"] == 12415
    assert set(agx.rails_mw) == {
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VIN_SYS_5V0",
        "VDDQ_VDD2_1V8AO",
    }  # no RAM/SWAP


def test_tegrastats_jetpack4_unitless_rails():
    xavier, nano = (parse_line(ln) for ln in trace_lines("tegrastats_jp4.txt"))
    assert xavier.rails_mw["VDD_IN"] == 14025 and xavier.average_mw["VDD_IN"] == 14416
    assert "RAM" not in xavier.rails_mw and "SWAP" not in xavier.rails_mw
    assert nano.rails_mw == {"POM_5V_IN": 4520, "POM_5V_GPU": 0, "POM_5V_CPU": 1078}


# -- nvpmodel ----------------------------------------------------------------------------
def test_nvpmodel_parsers_on_recorded_output():
    assert parse_query((TRACES / "nvpmodel_q_orin_nano.txt").read_text()).name == "15W"
    q = parse_query((TRACES / "nvpmodel_q_agx_orin.txt").read_text())  # a warning line precedes
    assert (q.id, q.name) == (2, "MODE_30W")
    verbose = (TRACES / "nvpmodel_p_verbose_agx_orin.txt").read_text()
    assert [(m.id, m.name) for m in parse_verbose(verbose)] == [
        (0, "MAXN"),
        (1, "MODE_15W"),
        (2, "MODE_30W"),
        (3, "MODE_50W"),
    ]
    assert parse_default(verbose).name == "MODE_30W"
    conf = parse_conf((TRACES / "nvpmodel_conf_orin_nano_super.txt").read_text())
    assert [(m.id, m.name) for m in conf] == [(0, "15W"), (1, "25W"), (2, "MAXN_SUPER"), (3, "7W")]


class Board:
    """A scripted nvpmodel/jetson_clocks that keeps its mode, like the real tool."""

    def __init__(self, mode: int = 0, reboot_ids: tuple[int, ...] = (), root: bool = True) -> None:
        self.mode, self.reboot_ids, self.root = mode, reboot_ids, root
        self.names = {
            m.id: m.name
            for m in parse_conf((TRACES / "nvpmodel_conf_orin_nano_super.txt").read_text())
        }
        self.locked = False

    def runner(self) -> ScriptedRunner:
        table = {
            ("nvpmodel", "-p", "--verbose"): CommandResult(
                1, "", "NVPM ERROR: verbose parse unsupported"
            ),
            ("nvpmodel", "-q"): lambda argv: CommandResult(
                0, f"NV Power Mode: {self.names[self.mode]}\n{self.mode}\n", ""
            ),
        }
        for i in self.names:
            table[("nvpmodel", "-m", str(i))] = lambda argv, i=i: self._set(i)
        table[("jetson_clocks", "--store", "/tmp/sentryfuse-jetson_clocks.conf")] = CommandResult(
            0, "", ""
        )
        table[("jetson_clocks",)] = lambda argv: self._lock(True)
        table[("jetson_clocks", "--restore", "/tmp/sentryfuse-jetson_clocks.conf")] = lambda argv: (
            self._lock(False)
        )
        return ScriptedRunner(table)

    def _set(self, i: int) -> CommandResult:
        if not self.root:
            return CommandResult(
                1,
                "",
                "NVPM ERROR: failed to write /sys/devices/system/cpu/cpu0/online: Permission denied",
            )
        if i in self.reboot_ids:
            return CommandResult(0, (TRACES / "nvpmodel_m_needs_reboot.txt").read_text(), "")
        self.mode = i
        return CommandResult(0, "", "")

    def _lock(self, on: bool) -> CommandResult:
        self.locked = on
        return CommandResult(0, "", "")


def test_power_modes_by_name_from_nvpmodel_conf(tmp_path):
    make_board(tmp_path)
    board = Board(mode=2)
    target = get_target("jetson", sysfs_root=tmp_path, runner=board.runner())
    modes = target.power_modes()
    assert [m.name for m in modes.list()][:4] == ["15W", "25W", "MAXN_SUPER", "7W"]
    with modes.apply("7W"):
        assert board.mode == 3 and modes.current() == "7W"
    assert board.mode == 2
    with modes.apply("25W+jetson_clocks"):
        assert board.mode == 1 and board.locked
    assert board.mode == 2 and not board.locked


def test_unknown_jetson_mode_lists_valid_names(tmp_path):
    make_board(tmp_path)
    modes = get_target("jetson", sysfs_root=tmp_path, runner=Board().runner()).power_modes()
    with pytest.raises(
        PowerModeError, match=r"unknown power mode '10W'.*valid: 15W, 15W\+jetson_clocks, 25W"
    ):
        modes.set("10W")


def test_mode_needing_reboot_is_refused_and_previous_mode_kept(tmp_path):
    make_board(tmp_path)
    board = Board(mode=0, reboot_ids=(2,))
    modes = get_target("jetson", sysfs_root=tmp_path, runner=board.runner()).power_modes()
    with pytest.raises(PowerModeError, match="needs a reboot"), modes.apply("MAXN_SUPER"):
        pass
    assert board.mode == 0


def test_no_permission_is_one_line_with_what_to_do(tmp_path):
    make_board(tmp_path)
    modes = get_target(
        "jetson", sysfs_root=tmp_path, runner=Board(root=False).runner()
    ).power_modes()
    with pytest.raises(PowerModeError, match="needs root") as err:
        modes.set("7W")
    assert "\n" not in str(err.value)


# -- detection, rails, fingerprint ---------------------------------------------------------
def test_detection_and_fingerprint_on_fake_tree(tmp_path):
    assert not get_target("jetson", sysfs_root=tmp_path).availability().ok
    make_board(tmp_path)
    target = get_target("jetson", sysfs_root=tmp_path, runner=Board(mode=2).runner())
    assert target.availability().ok
    fp = target.fingerprint()
    assert (
        fp["board"].startswith("NVIDIA Jetson Orin Nano")
        and fp["l4t"] == "36.4.3"
        and fp["jetpack"] == "6"
    )
    assert fp["power_mode"] == "MAXN_SUPER" and fp["clocks_locked"] is False
    assert fp["energy_sensor"] == "ina3221-sysfs" and fp["ina3221_update_interval_ms"] == 10


def test_export_on_a_machine_that_is_not_a_jetson_says_why(tmp_path):
    with pytest.raises(TargetError, match="not a Jetson"):
        get_target("jetson", sysfs_root=tmp_path).export(None, {"acc": None}, "torch", tmp_path)


def test_rail_discovery_skips_nc_and_sum_channels(tmp_path):
    make_board(tmp_path)
    rails, update_ms = discover_rails(tmp_path)
    assert [r.name for r in rails] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert rails[0].read_mw() == 5000.0 and update_ms == 10.0


def test_jetpack4_iio_layout(tmp_path):
    d = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    d.mkdir(parents=True)
    for ch, name, mw in [(0, "POM_5V_IN", 4520), (1, "POM_5V_GPU", 0), (2, "POM_5V_CPU", 1078)]:
        (d / f"rail_name_{ch}").write_text(name + "\n")
        (d / f"in_power{ch}_input").write_text(f"{mw}\n")
    rails, _ = discover_rails(tmp_path)
    assert {r.name: r.read_mw() for r in rails} == {
        "POM_5V_IN": 4520,
        "POM_5V_GPU": 0,
        "POM_5V_CPU": 1078,
    }


def test_sampler_thread_integrates_rails_on_the_fake_tree(tmp_path):
    """The background sampler, the injectable clock and the sysfs files together: power
    steps 5 W → 9 W at t = 0.5 s, integrated within 1 %."""
    make_board(tmp_path)
    import threading

    lock = threading.Lock()
    state = {"t": 0.0}

    def clock() -> float:  # each reading advances 5 ms of simulated time and sets the rails
        with lock:
            state["t"] += 0.005
            t = state["t"]
            vin = 5000.0 if t < 0.5 else 9000.0
            set_power(tmp_path, {"VDD_IN": vin, "VDD_CPU_GPU_CV": vin / 5, "VDD_SOC": 1000.0})
            return t

    sensor = Ina3221Sensor(tmp_path, clock=clock, interval_s=0.0005)
    import time

    with sensor.window() as w:
        while state["t"] < 1.0:
            time.sleep(0.0005)
    r = w.reading
    t0, t1 = 0.005, r.elapsed_s + 0.005
    expected = 5000 * (0.5 - t0) + 9000 * (t1 - 0.5)  # mW × s = mJ
    assert r.total_mj == pytest.approx(expected, rel=0.01)
    assert r.rails_mj["VDD_IN"] == r.total_mj and r.source == "measured" and r.samples > 50
    assert r.update_interval_ms == 10.0
