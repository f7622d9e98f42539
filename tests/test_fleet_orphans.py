"""``kill -9`` of a ``--cluster local:N`` driver: its Ray processes are found and stopped.

The real case runs a driver subprocess that starts ``local:1`` on loopback, SIGKILLs it
and sweeps; the records, the open-file match and the recycled-pid rule are checked on a
written ``/proc`` tree.
"""

from __future__ import annotations

import json
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
import time
from harness.fleet.cluster import connect
with connect("local:1") as c:
    print("READY", c.session_dir, flush=True)
    time.sleep(120)
"""


def _fake_proc(root: Path, pid: int, start: str, files: tuple[str, ...] = ()) -> None:
    d = root / str(pid)
    (d / "fd").mkdir(parents=True)
    fields = ["S"] + ["0"] * 18 + [start]  # field 3 is the state, field 22 the start time
    (d / "stat").write_text(f"{pid} (ray::thing) {' '.join(fields)} 0 0\n")
    os.symlink("/", d / "cwd")
    for i, f in enumerate(files):
        os.symlink(f, d / "fd" / str(i + 3))


def _record(records: Path, name: str, owner: str) -> Path:
    records.mkdir(exist_ok=True)
    path = records / f"{name}.json"
    path.write_text(json.dumps({"owner": owner, "session_dir": f"/tmp/ray/{name}"}))
    return path


def test_only_processes_of_a_recorded_dead_drivers_session_are_orphans(tmp_path):
    proc, records = tmp_path / "proc", tmp_path / "records"
    _fake_proc(proc, 100, "5000")  # a live driver
    _fake_proc(proc, 101, "5001", ("/tmp/ray/s-live/logs/raylet.out",))
    _fake_proc(proc, 102, "5002", ("/tmp/ray/s-dead/logs/agent.log", "/dev/null"))
    _fake_proc(proc, 103, "5003", ("/tmp/ray/s-recycled/logs/gcs.out",))
    _fake_proc(proc, 104, "5004", ("/tmp/ray/s-dead-other/logs/x.log",))  # no record
    _fake_proc(proc, 105, "5005", ("/tmp/ray/s-dead2/logs/x.log",))  # s-dead's prefix only
    _record(records, "s-live", "100:5000")
    dead = _record(records, "s-dead", "200:4000")  # the driver is gone
    recycled = _record(records, "s-recycled", "100:4999")  # pid 100 is someone else now
    assert orphans.owner_alive("100:5000", proc) and not orphans.owner_alive("100:4999", proc)
    assert orphans.orphans(records, proc) == {dead: [102], recycled: [103]}


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs Linux /proc")
def test_kill_9_of_a_local_driver_leaves_nothing_after_the_sweep():
    pytest.importorskip("ray", reason="the fleet extra is not installed (pip install '.[fleet]')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE, text=True,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    session = ""
    try:
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline and "READY" not in line and driver.poll() is None:
            line = driver.stdout.readline()
        assert "READY" in line, "the local cluster did not start"
        session = line.split()[1]
        assert orphans.processes_in(session), "no process of the cluster holds its session"
        record = orphans.RECORDS / f"{Path(session).name}.json"
        assert record.is_file()
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        time.sleep(3.0)  # GCS and raylets follow the driver; the agents stay
        left = orphans.processes_in(session)
        assert set(left) <= set(orphans.sweep())
        assert not record.exists()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(30)
        orphans.sweep()  # never leave Ray processes behind, even when an assert failed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and orphans.processes_in(session):
        time.sleep(0.2)
    alive = orphans.processes_in(session)
    for pid in alive:  # still there: the sweep failed; stop them anyway, then fail
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"Ray processes of the killed driver still run: {alive}"
