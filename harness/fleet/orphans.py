"""Ray processes of a ``--cluster local:N`` whose driver was killed: found and stopped.

A local cluster's GCS and raylets die with the driver, but ``kill -9`` of the driver
leaves the raylets' agents (``ray::RuntimeEnvAgent`` for good, ``ray::DashboardAgent``
for a minute or more) re-parented to init: observed with Ray 2.60 on this machine. Ray
retitles its processes (``setproctitle``), which overwrites their command line and most
of their ``/proc/PID/environ``, so neither says whose they are. What they keep is their
log files, open under the cluster's session directory. So the driver leaves a record,
``RECORDS/<session>.json`` = ``{"owner": "<pid>:<start time>", "session_dir": ...}``,
removed again when it stops the cluster; the next ``local:N`` (``sweep()``) takes each
record whose owner is dead and stops every process with a file open (or its working
directory) in that session directory. The start time (``/proc/PID/stat`` field 22)
keeps a recycled pid from passing for the dead driver. Other people's Ray clusters have
no record and are never touched. Linux ``/proc`` only; elsewhere it finds nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from sentryfuse.outpath import write_bytes_atomically

PROC = Path("/proc")
RECORDS = Path(tempfile.gettempdir()) / "sentryfuse-local-clusters"
_GRACE_S = 2.0


def start_time(pid: int, proc: Path = PROC) -> str | None:
    """The process's start time in clock ticks since boot (None if it is gone)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_mark(pid: int | None = None, proc: Path = PROC) -> str:
    """A process's mark: ``<pid>:<start time>`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_time(pid, proc)}"


def owner_alive(mark: str, proc: Path = PROC) -> bool:
    pid, _, started = mark.partition(":")
    return pid.isdigit() and start_time(int(pid), proc) == started


def record(session_dir: str | Path, records: Path = RECORDS) -> Path:
    """Say that this process owns the cluster of ``session_dir``; returns the record."""
    records.mkdir(parents=True, exist_ok=True)
    path = records / f"{Path(session_dir).name}.json"
    body = {"owner": owner_mark(), "session_dir": str(session_dir)}
    write_bytes_atomically(path, json.dumps(body).encode())
    return path


def processes_in(session_dir: str | Path, proc: Path = PROC) -> list[int]:
    """Pids (other than this one) with a file open, or their cwd, under ``session_dir``."""
    root = str(session_dir).rstrip("/") + "/"
    out = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [os.readlink(entry / "cwd")]
            links += [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone, or not ours to read
            continue
        if any((link + "/").startswith(root) for link in links):
            out.append(int(entry.name))
    return sorted(out)


def orphans(records: Path = RECORDS, proc: Path = PROC) -> dict[Path, list[int]]:
    """``{record: pids}`` for each recorded cluster whose driver is dead."""
    out: dict[Path, list[int]] = {}
    for path in sorted(records.glob("*.json")) if records.is_dir() else ():
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not owner_alive(body.get("owner", ""), proc):
            out[path] = processes_in(body["session_dir"], proc)
    return out


def sweep(records: Path = RECORDS, proc: Path = PROC, grace_s: float = _GRACE_S) -> list[int]:
    """SIGTERM the dead drivers' processes, SIGKILL what is left after ``grace_s``,
    drop their records; the pids stopped."""
    found = orphans(records, proc)
    pids = sorted({p for ps in found.values() for p in ps})
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    left = list(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if running(p, proc)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for path in found:
        path.unlink(missing_ok=True)
    return pids


def running(pid: int, proc: Path = PROC) -> bool:
    """Alive and not a zombie."""
    try:
        return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
