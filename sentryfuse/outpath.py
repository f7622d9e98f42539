"""Can an output folder be created here? Asked before any work, so a bad ``--out``
costs one line and exit code 2 instead of a traceback after minutes of training."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sentryfuse.errors import SentryFuseError


class OutputPathError(SentryFuseError):
    """An output location is a file, read-only, or cannot be created."""


def check_can_create(path: Path | str, flag: str = "--out") -> None:
    """Raise ``OutputPathError`` unless ``path`` exists as a writable folder or could be
    created (its nearest existing ancestor is a writable folder). Leaves nothing behind
    (a probe folder is made and removed at once)."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputPathError(f"{flag} {path} is a file, not a folder; pass a new folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(
                f"{flag} {path} is not writable; choose a folder you can write to"
            )
        return
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(
            f"cannot create {flag} {path}: {parent} is a file, not a folder; choose another path"
        )
    if not os.access(parent, os.W_OK | os.X_OK) or not _can_mkdir(parent):
        raise OutputPathError(
            f"cannot create {flag} {path}: {parent} is not writable (read-only or not yours); "
            "choose another path"
        )


def _can_mkdir(parent: Path) -> bool:
    """Try it: ``access`` says yes to root on a read-only mount or under /proc."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sentryfuse-probe-", dir=parent))
    except OSError:
        return False
    return True


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and a rename, so a reader (or
    a process killed mid-write) never sees a partial file; the temporary file is removed
    when the write fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
