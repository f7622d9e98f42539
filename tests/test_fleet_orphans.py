"""``kill -9`` of a ``--cluster local:N`` driver: its Ray processes are found and stopped.

The real case runs a driver subprocess that starts ``local:1`` on loopback, SIGKILLs it
and sweeps; the marks and the recycled-pid rule are checked on a written ``/proc`` tree.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.fleet import orphans

ROOT = Path(__file__).resolve().parent.parent

DRIVER = """
import sys, time
from harness.fleet.cluster import connect
with connect("local:1") as c:
    print("READY", flush=True)
    time.sleep(120)
"""


def _fake_proc(root: Path, pid: int, start: str, env: dict[str, str] | None = None) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    fields = ["S"] + ["0"] * 18 + [start]  # field 3 is the state, field 22 the start time
    (d / "stat").write_text(f"{pid} (ray::thing) {' '.join(fields)} 0 0\n")
    text = "\0".join(f"{k}={v}" for k, v in (env or {}).items())
    (d / "environ").write_bytes(text.encode() + b"\0")


def test_only_marked_processes_of_a_dead_driver_are_orphans(tmp_path):
    proc = tmp_path / "proc"
    _fake_proc(proc, 100, "5000")  # a live driver
    _fake_proc(proc, 101, "5001", {orphans.OWNER_ENV: "100:5000"})  # its agent: kept
    _fake_proc(proc, 102, "5002", {orphans.OWNER_ENV: "200:4000"})  # driver gone
    _fake_proc(proc, 103, "5003", {orphans.OWNER_ENV: "100:4999"})  # pid 100 was recycled
    _fake_proc(proc, 104, "5004", {"RAY_RAYLET_PID": "9"})  # someone else's Ray: no mark
    assert orphans.owner_alive("100:5000", proc) and not orphans.owner_alive("200:4000", proc)
    assert orphans.orphans(proc) == [102, 103]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_kill_9_of_a_local_driver_leaves_nothing_after_the_sweep():
    pytest.importorskip("ray", reason="the fleet extra is not installed (pip install '.[fleet]')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE, text=True,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    mark = orphans.owner_mark(driver.pid)
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "READY" not in line and driver.poll() is None:
            line = driver.stdout.readline()
        assert "READY" in line, "the local cluster did not start"
        ours = {p for p, m in orphans.marked_processes().items() if m == mark}
        assert ours, "the cluster's processes carry no mark"
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        time.sleep(3.0)  # GCS and raylets follow the driver; the agents stay
        left = [
            p for p in ours if Path(f"/proc/{p}").exists() and not orphans._zombie(p, Path("/proc"))
        ]
        stopped = orphans.sweep()
        assert set(left) <= set(stopped)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(30)
        orphans.sweep()  # never leave Ray processes behind, even when an assert failed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [p for p, m in orphans.marked_processes().items() if m == mark]
        if not alive:
            break
        time.sleep(0.2)
    assert not alive, f"Ray processes of the killed driver still run: {alive}"
