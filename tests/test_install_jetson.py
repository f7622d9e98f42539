"""scripts/install.sh on a fake Jetson tree: detection, system site packages, torch kept.

The script runs for real (bash, via subprocess) in ``--dry-run`` mode, which prints the
plan instead of running pip; the Jetson markers are read under ``--sysroot`` from a tree
laid out as JetPack 6 writes it (Orin Nano, L4T R36.4.3).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install.sh"
NV_TEGRA_RELEASE = (
    "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
    "DATE: Wed Jan  8 01:49:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n"
)
COMPATIBLE = b"nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00"


def fake_repo(tmp_path: Path) -> Path:
    """A checkout with only the script, so the plan is computed from scratch (no .venv)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "scripts" / "install.sh")
    return repo


def plan(repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "SENTRYFUSE_TORCH")}
    return subprocess.run(
        ["bash", str(repo / "scripts" / "install.sh"), "--dry-run", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


@pytest.fixture
def jetson_root(tmp_path: Path) -> Path:
    root = tmp_path / "jetson"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "nv_tegra_release").write_text(NV_TEGRA_RELEASE)
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "compatible").write_bytes(COMPATIBLE)
    (root / "proc" / "device-tree" / "model").write_bytes(
        b"NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super\x00"
    )
    return root


def test_jetson_tree_gets_system_site_packages_and_keeps_torch(tmp_path, jetson_root):
    r = plan(fake_repo(tmp_path), "--sysroot", str(jetson_root))
    assert r.returncode == 0, r.stderr
    assert "Jetson detected" in r.stdout
    assert "-m venv --system-site-packages .venv" in r.stdout
    assert "--no-deps -e .[datasets,onnx,jetson]" in r.stdout
    assert "except torch" in r.stdout
    assert "torch==" not in r.stdout  # JetPack's torch is never replaced


def test_device_tree_alone_is_enough(tmp_path, jetson_root):
    (jetson_root / "etc" / "nv_tegra_release").unlink()
    r = plan(fake_repo(tmp_path), "--sysroot", str(jetson_root))
    assert r.returncode == 0, r.stderr
    assert "--system-site-packages" in r.stdout


def test_desktop_tree_gets_plain_venv_and_cpu_torch(tmp_path):
    root = tmp_path / "desktop"
    (root / "proc" / "device-tree").mkdir(parents=True)
    (root / "proc" / "device-tree" / "compatible").write_bytes(
        b"raspberrypi,5-model-b\x00brcm,bcm2712\x00"
    )
    r = plan(fake_repo(tmp_path), "--sysroot", str(root))
    assert r.returncode == 0, r.stderr
    assert "Jetson detected" not in r.stdout
    assert "-m venv .venv" in r.stdout and "--system-site-packages" not in r.stdout
    assert "pip install -q torch==2.13.0" in r.stdout


def test_jetson_flag_and_skip_on_desktop(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    repo = fake_repo(tmp_path)
    r = plan(repo, "test", "--jetson", "--sysroot", str(empty))
    assert "--system-site-packages" in r.stdout
    assert "[datasets,onnx,jetson,test,fleet]" in r.stdout
    r = plan(repo, "--sysroot", str(empty), SENTRYFUSE_TORCH="skip")
    assert "--no-deps -e .[datasets,onnx]" in r.stdout
    assert "torch==" not in r.stdout


def test_existing_venv_without_system_site_packages_is_refused_on_jetson(tmp_path, jetson_root):
    repo = fake_repo(tmp_path)
    (repo / ".venv").mkdir()
    (repo / ".venv" / "pyvenv.cfg").write_text("include-system-site-packages = false\n")
    r = plan(repo, "--sysroot", str(jetson_root))
    assert r.returncode == 2
    assert "rm -rf .venv" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_unknown_argument_is_one_line_exit_2(tmp_path):
    r = plan(fake_repo(tmp_path), "--frobnicate")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
