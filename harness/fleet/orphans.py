"""Ray processes of a ``--cluster local:N`` whose driver was killed: found and stopped.

A local cluster's GCS, raylets and workers die with the driver, but ``kill -9`` of the
driver leaves the raylets' agents (``ray::RuntimeEnvAgent`` for good, and
``ray::DashboardAgent`` for a minute or more) re-parented to init: observed with Ray
2.60 on this machine. Ray retitles its processes (``setproctitle``), so their command
lines do not say whose they are. So the driver marks them: it starts the cluster with
``SENTRYFUSE_LOCAL_OWNER=<pid>:<start time>`` in the environment, which every process
Ray spawns inherits, and the next ``local:N`` (or ``sweep()``) stops each marked process
whose owner is no longer alive. The start time (``/proc/PID/stat`` field 22) keeps a
recycled pid from passing for the dead driver; processes of other people's Ray clusters
carry no mark and are never touched. Linux ``/proc`` only; elsewhere it finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

OWNER_ENV = "SENTRYFUSE_LOCAL_OWNER"
_GRACE_S = 2.0


def start_time(pid: int, proc: Path = Path("/proc")) -> str | None:
    """The process's start time in clock ticks since boot (None if it is gone)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_mark(pid: int | None = None) -> str:
    """This process's mark: ``<pid>:<start time>``."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_time(pid)}"


def owner_alive(mark: str, proc: Path = Path("/proc")) -> bool:
    pid, _, started = mark.partition(":")
    return pid.isdigit() and start_time(int(pid), proc) == started


@contextlib.contextmanager
def marked_environment() -> Iterator[str]:
    """Processes started inside the block inherit this driver's mark."""
    mark = owner_mark()
    old = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = mark
    try:
        yield mark
    finally:
        if old is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = old


def marked_processes(proc: Path = Path("/proc")) -> dict[int, str]:
    """``{pid: owner mark}`` of every process carrying a mark (other than this one)."""
    needle = f"{OWNER_ENV}=".encode()
    out: dict[int, str] = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        for var in env.split(b"\0"):
            if var.startswith(needle):
                out[int(entry.name)] = var[len(needle) :].decode(errors="replace")
                break
    return out


def orphans(proc: Path = Path("/proc")) -> list[int]:
    """Pids of marked processes whose driver is dead."""
    return sorted(p for p, mark in marked_processes(proc).items() if not owner_alive(mark, proc))


def sweep(proc: Path = Path("/proc"), grace_s: float = _GRACE_S) -> list[int]:
    """SIGTERM the orphans, SIGKILL what is left after ``grace_s``; the pids stopped."""
    found = orphans(proc)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    left = list(found)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if (proc / str(p)).exists() and not _zombie(p, proc)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return found


def _zombie(pid: int, proc: Path) -> bool:
    try:
        return (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
