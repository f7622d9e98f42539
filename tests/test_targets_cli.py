"""``sentryfuse targets``: the table, JSON, and one-line exit-2 errors."""

from __future__ import annotations

import json

from harness.cli import main


def test_table_lists_every_target_with_runtimes(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in ("cpu", "cuda", "jetson"):
        assert name in out
    assert "torch-compiled" in out and "power modes: max" in out


def test_json_output(capsys):
    assert main(["targets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["cpu", "cuda", "jetson"]
    assert rows[0]["availability"]["ok"] is True


def test_unavailable_target_exits_2_with_one_line(capsys, tmp_path):
    code = main(["targets", "jetson", "--sysfs-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "not a Jetson" in err and "Traceback" not in err


def test_unknown_target_exits_2_listing_valid(capsys):
    assert main(["targets", "tpu"]) == 2
    assert "valid: cpu, cuda, jetson" in capsys.readouterr().err


def test_jetson_available_on_a_fake_board(capsys, tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 4.1\n")
    assert main(["targets", "jetson", "--sysfs-root", str(tmp_path)]) == 0
    assert "jetson  available" in capsys.readouterr().out
