"""The ``--out`` folder of ``sentryfuse run``: what may be written into, held for the run.

The rule, checked before any work so a mistake costs one line and exit code 2:
- a folder that does not exist yet (and can be created), or an empty one;
- or the folder of an earlier run of the *same* profile (then ``--resume`` continues it);
- anything else is refused: an existing file, a read-only or uncreatable location, a
  folder holding someone's files, a results store of another profile, a ``report/``
  folder this tool did not write.
While a run works in the folder it holds ``OUT/.lock`` (``flock``), so a second run into
it refuses in one line instead of running every cell twice. Temporary leftovers of
killed runs (``checkpoints/.tmp-*``, ``.report.tmp-*``, empty ``work/<hash>``) are swept
when the lock is taken and again when it is released.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from harness.store import STORE_NAME
from reports.write import is_our_report
from sentryfuse.errors import HarnessError
from sentryfuse.outpath import check_can_create

LOCK_NAME = ".lock"
# Every name a run writes directly under OUT; anything else is somebody else's file.
_OURS = {STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal",
         "report", "checkpoints", "variants", "work", "errors", LOCK_NAME}  # fmt: skip
_OUR_PREFIXES = (".report.tmp-", ".report.old-")


def _ours(name: str) -> bool:
    return name in _OURS or name.startswith(_OUR_PREFIXES)


def _connect_ro(store_path: Path) -> sqlite3.Connection:
    """Read a store without writing anything. A plain read-only connection to a WAL store
    still creates its ``-wal``/``-shm`` files; when no run holds the lock and no ``-wal``
    is left (a killed run's, whose cells must be read), nothing can be writing, so the
    store is opened as immutable and not a byte is written."""
    wal = store_path.with_name(store_path.name + "-wal")
    idle = lock_holder(store_path.parent) is None and not wal.exists()
    mode = "immutable=1" if idle else "mode=ro"
    return sqlite3.connect(f"file:{store_path}?{mode}", uri=True, timeout=5.0)


def _stored_profile(store_path: Path) -> str | None:
    """The profile name recorded in an existing store (read-only), None if it has no run."""
    try:
        db = _connect_ro(store_path)
        try:
            row = db.execute("SELECT profile_name FROM runs ORDER BY started_at LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise HarnessError(
            f"{store_path} is not a usable results store ({exc}); choose another --out"
        ) from None
    return None if row is None else str(row[0])


def stored_finished_keys(store_path: Path) -> set[str]:
    """Keys of the finished cells of a store, read-only (a dry run writes nothing)."""
    if not store_path.is_file():
        return set()
    try:
        db = _connect_ro(store_path)
        try:
            return {r[0] for r in db.execute("SELECT cell_key FROM cells WHERE status='ok'")}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise HarnessError(
            f"{store_path} is not a usable results store ({exc}); choose another --out"
        ) from None


def lock_holder(out: Path) -> str | None:
    """Who holds ``OUT/.lock`` ('pid N'), or None when no run holds it. Writes nothing."""
    lock = out / LOCK_NAME
    if not lock.is_file():
        return None
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return f"pid {pid}" if pid.isdigit() else "another process"
    finally:
        os.close(fd)
    return None


def check_out_dir(out: Path, profile_name: str, *, resume: bool) -> None:
    """Apply the ``--out`` rule; raise a one-line ``HarnessError``. Writes nothing."""
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} is a file, not a folder; pass a new or empty folder")
    if not out.exists():
        check_can_create(out, "--out")
        return
    holder = lock_holder(out)
    if holder is not None:
        raise HarnessError(
            f"--out {out} is in use by another sentryfuse run ({holder}); wait for it to "
            "finish or choose another --out"
        )
    if not os.access(out, os.W_OK | os.X_OK):
        raise HarnessError(f"--out {out} is not writable; choose a folder you can write to")
    names = sorted(os.listdir(out))
    foreign = [n for n in names if not _ours(n)]
    if foreign:
        raise HarnessError(
            f"--out {out} holds files that are not a sentryfuse run (e.g. '{foreign[0]}'); "
            "pass a new or empty folder, or the folder of an earlier run of this profile"
        )
    report = out / "report"
    if report.exists() and not is_our_report(report):
        raise HarnessError(
            f"{report} was not written by sentryfuse and would be replaced by the report; "
            "move it away or choose another --out"
        )
    store = out / STORE_NAME
    if not store.exists():
        return
    stored = _stored_profile(store)
    if stored is not None and stored != profile_name:
        raise HarnessError(
            f"--out {out} holds results of profile '{stored}', not '{profile_name}'; "
            "choose another --out"
        )
    if not resume:
        raise HarnessError(
            f"{store} already holds results; pass --resume to continue it "
            "(finished cells are skipped) or choose another --out"
        )


def sweep(out: Path) -> list[Path]:
    """Remove temporary leftovers of killed runs; return what was removed.

    Only called while holding the lock, so no live run owns any of them.
    """
    removed: list[Path] = []
    candidates = list((out / "checkpoints").glob(".tmp-*")) + list(
        (out / "checkpoints").glob(".*.old-*")
    )
    candidates += list(out.glob(".report.tmp-*")) + list(out.glob(".report.old-*"))
    for path in candidates:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    work = out / "work"
    if work.is_dir():
        for path in work.iterdir():
            with contextlib.suppress(OSError):  # not empty: a cell's real files stay
                path.rmdir()
                removed.append(path)
        with contextlib.suppress(OSError):
            work.rmdir()
    return removed


@contextlib.contextmanager
def claimed(out: Path) -> Iterator[Path]:
    """Create ``out`` if needed and hold its lock for the block.

    If the block fails before a results store exists (a preflight error), whatever this
    created is removed again, so bad input leaves nothing behind.
    """
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HarnessError(
            f"cannot write to --out {out} ({exc.strerror}); choose a folder you can write to"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HarnessError(
                f"--out {out} is in use by another sentryfuse run; wait for it to finish "
                "or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        sweep(out)
        ok = False
        try:
            yield out
            ok = True
        finally:
            sweep(out)
            if not ok and created and not (out / STORE_NAME).exists():
                with contextlib.suppress(OSError):
                    (out / LOCK_NAME).unlink()
                    out.rmdir()
    finally:
        os.close(fd)  # releases the flock
