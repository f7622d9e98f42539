"""jtop as the Jetson's optional controller, on a fake jtop service (Orin Nano Super modes).

The fake applies changes one interval later and refuses modes with another power mask
without ``force`` (they need a reboot), as jtop's service does. When the service is
down the target falls back to the nvpmodel/jetson_clocks commands; the fingerprint
says which controller ran.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sentryfuse.errors import PowerModeError
from targets import get_target
from targets.fakes import FakeJtopService, ScriptedRunner
from targets.hw import CommandResult
from targets.jtop_control import JtopPowerModes

TRACES = Path(__file__).parent / "traces"
MODES = ["15W", "25W", "MAXN_SUPER", "7W"]  # Orin Nano Super, /etc/nvpmodel.conf ids 0-3
BOARD = {  # keys as jtop's ``board`` reports them (jetson-stats 4.x)
    "hardware": {
        "Model": "NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super",
        "Module": "NVIDIA Jetson Orin Nano (8GB ram)",
        "SoC": "tegra234",
        "L4T": "36.4.3",
        "Jetpack": "6.2",
    },
    "libraries": {"CUDA": "12.6.68", "TensorRT": "10.3.0.30", "OpenCV": "4.8.0"},
}


def service(**kw) -> FakeJtopService:
    return FakeJtopService(MODES, current=0, masks=[0, 0, 0, 1], board=BOARD, **kw)


def board_root(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.3, GCID: 1\n")
    (tmp_path / "etc/nvpmodel.conf").write_text(
        (TRACES / "nvpmodel_conf_orin_nano_super.txt").read_text()
    )
    return tmp_path


def test_modes_by_name_with_clocks_and_restore():
    svc = service()
    modes = JtopPowerModes(svc)
    assert modes.available().ok
    assert [m.name for m in modes.list()][:4] == MODES
    with modes.apply("MAXN_SUPER+jetson_clocks") as mode:
        assert mode.name == "MAXN_SUPER+jetson_clocks"
        assert svc.current == 2 and svc.clocks
        assert modes.current() == "MAXN_SUPER+jetson_clocks"
    assert svc.current == 0 and not svc.clocks
    assert svc.log == [("nvp", 2), ("clocks", True), ("clocks", False), ("nvp", 0)]


def test_mode_needing_a_reboot_is_refused_and_state_restored():
    svc = service()
    modes = JtopPowerModes(svc)
    with pytest.raises(PowerModeError, match="needs a reboot"), modes.apply("7W"):
        pytest.fail("body must not run")
    assert svc.current == 0 and not svc.clocks


def test_unknown_mode_lists_valid_names():
    with pytest.raises(PowerModeError, match="MAXN_SUPER"):
        JtopPowerModes(service()).set("MAXN")


def test_target_uses_jtop_when_its_service_answers(tmp_path):
    svc = service()
    target = get_target("jetson", sysfs_root=board_root(tmp_path), jtop_factory=svc)
    fp = target.fingerprint()
    assert fp["power_controller"] == "jtop" and fp["power_mode"] == "15W"
    assert fp["jtop_board"]["Jetpack"] == "6.2" and fp["jtop_board"]["lib TensorRT"] == "10.3.0.30"
    assert "lib OpenCV" not in fp["jtop_board"]


def test_target_falls_back_to_nvpmodel_when_jtop_is_down(tmp_path):
    runner = ScriptedRunner(
        {
            ("nvpmodel", "-q"): CommandResult(0, "NV Power Mode: 25W\n1\n", ""),
        }
    )
    target = get_target(
        "jetson", sysfs_root=board_root(tmp_path), runner=runner, jtop_factory=service(alive=False)
    )
    fp = target.fingerprint()
    assert fp["power_controller"] == "nvpmodel" and fp["power_mode"] == "25W"
    assert "jtop service not answering" in fp["jtop"]
    assert ("nvpmodel", "-q") in runner.calls


def test_forced_controller_and_bad_name(tmp_path):
    target = get_target(
        "jetson",
        sysfs_root=board_root(tmp_path),
        power_controller="nvpmodel",
        jtop_factory=service(),
    )
    assert target.controller == "nvpmodel"
    from sentryfuse.errors import TargetError

    with pytest.raises(TargetError, match="power controller"):
        get_target("jetson", power_controller="tegra")
