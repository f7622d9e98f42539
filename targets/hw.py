"""Hardware access points: a command runner, a clock and a sysfs root.

Every adapter takes these as parameters instead of calling ``subprocess``, ``time`` or
``/sys`` directly, so tests replay recorded command output and fake sysfs trees through
the same code paths the device runs (the habit jetson_stats lacks: no testing switch in
production code, no writes to ``/usr/bin``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

Clock = Callable[[], float]  # monotonic seconds
MONOTONIC: Clock = time.monotonic
DEFAULT_ROOT = Path("/")


class CommandResult(NamedTuple):
    """What a command printed; a tuple so ``rc, out, err = runner(argv)`` works."""

    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs ``argv`` (a list, never a shell string) and returns its result."""

    def __call__(self, argv: Sequence[str], timeout_s: float = 30.0) -> CommandResult: ...


class SubprocessRunner:
    """The real runner: no shell, no stdin (so interactive prompts such as nvpmodel's
    "reboot now?" read EOF and decline instead of hanging), output captured as text."""

    def __call__(self, argv: Sequence[str], timeout_s: float = 30.0) -> CommandResult:
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        except PermissionError as exc:
            return CommandResult(126, "", f"{argv[0]}: {exc}")
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{argv[0]}: timed out after {timeout_s:g} s")
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)


def read_text(path: Path) -> str | None:
    """A sysfs/procfs file's text, or None when it is absent or unreadable."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def read_number(path: Path) -> float | None:
    """A sysfs file holding one number, or None (absent, unreadable, garbled)."""
    text = read_text(path)
    if text is None:
        return None
    try:
        return float(text.strip().split()[0])
    except (ValueError, IndexError):
        return None


def under(root: Path, absolute: str) -> Path:
    """``/sys/...`` relocated under ``root`` (``/`` on a device, a tmp dir in tests)."""
    return root / absolute.lstrip("/")


def first_line(text: str) -> str:
    """The first non-empty line of a command's output, for one-line error messages."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
