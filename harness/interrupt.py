"""Ctrl-C during a run: the first stops it cleanly, a second stops it now.

The first SIGINT (or SIGTERM, as sent by CI cancellation and ``timeout``) raises
``KeyboardInterrupt`` wherever the run is, so the ``with`` blocks unwind: the power mode
is restored, the runner closed, the store closed (finished cells are already committed).
If that unwinding is itself stuck (a long native call, a device that does not answer) a
second signal ends the process at once with exit code 130 — the store is SQLite in WAL
mode, so a hard stop loses nothing that finished.

The handler is installed explicitly because a process started in the background of a
non-interactive shell (``cmd &``, ``nohup``) inherits SIGINT *ignored*, and Python then
installs no handler: ``kill -INT`` would do nothing at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

HARD_EXIT_CODE = 130


class Interrupted(KeyboardInterrupt):
    """The run was stopped by ``signum``; the exit code is ``128 + signum``."""

    def __init__(self, signum: int, *, reported: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.reported = reported  # the command already printed what to do next

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextlib.contextmanager
def stoppable(prog: str = "sentryfuse run") -> Iterator[None]:
    """Handle SIGINT/SIGTERM as above for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal count
        count += 1
        if count == 1:
            raise Interrupted(signum)
        os.write(
            2, f"{prog}: stopped at once (second interrupt); finished cells are kept\n".encode()
        )
        os._exit(HARD_EXIT_CODE)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
