"""Jetson power modes through ``nvpmodel`` (selected by name) and ``jetson_clocks``.

Mode ids differ per board (mode 0 is 15 W on an Orin Nano Super but MAXN on an AGX
Orin), so users and profiles name modes; the ids come from the board's own
``nvpmodel -p --verbose`` output or ``/etc/nvpmodel.conf``. A mode that needs a reboot
is refused with a message saying so: a benchmark never reboots a board silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sentryfuse.errors import PowerModeError
from targets.base import Availability, PowerMode, PowerModes
from targets.hw import DEFAULT_ROOT, CommandRunner, SubprocessRunner, first_line, read_text, under

LOCKED_SUFFIX = "+jetson_clocks"
_CONF_MODE = re.compile(r"<\s*POWER_MODEL\s+([^>]*)>", re.IGNORECASE)
_VERBOSE_MODE = re.compile(r"POWER_MODEL:\s*ID=(\d+)\s+NAME=(\S+)")
_DEFAULT = re.compile(r"PM_CONFIG:\s*DEFAULT=(\S+?)\((\d+)\)")


@dataclass(frozen=True)
class NvpMode:
    id: int
    name: str


def parse_conf(text: str) -> list[NvpMode]:
    """``< POWER_MODEL ID=2 NAME=MAXN_SUPER >`` lines of /etc/nvpmodel.conf (any key order)."""
    modes = []
    for body in _CONF_MODE.findall(text):
        fields = dict(re.findall(r"(\w+)\s*=\s*([^\s>]+)", body))
        if "ID" in fields and "NAME" in fields:
            modes.append(NvpMode(int(fields["ID"]), fields["NAME"]))
    return modes


def parse_verbose(text: str) -> list[NvpMode]:
    """``NVPM VERB: POWER_MODEL: ID=0 NAME=MAXN`` lines of ``nvpmodel -p --verbose``."""
    return [NvpMode(int(i), n) for i, n in _VERBOSE_MODE.findall(text)]


def parse_default(text: str) -> NvpMode | None:
    """``PM_CONFIG: DEFAULT=MODE_30W(2)`` from ``nvpmodel -p --verbose``."""
    m = _DEFAULT.search(text)
    return NvpMode(int(m.group(2)), m.group(1)) if m else None


def parse_query(text: str) -> NvpMode:
    """``nvpmodel -q``: ``NV Power Mode: NAME`` then the id on the next line (warnings may precede)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("NV Power Mode:"):
            name = line.split(":", 1)[1].strip()
            for follow in lines[i + 1 : i + 3]:
                if follow.isdigit():
                    return NvpMode(int(follow), name)
            raise PowerModeError(
                f"nvpmodel -q printed mode '{name}' without its id; check nvpmodel"
            )
    raise PowerModeError(f"cannot parse nvpmodel -q output: '{first_line(text)}'")


def needs_reboot(text: str) -> bool:
    """nvpmodel asks before a mode change that needs a reboot; stdin is closed, so it declines."""
    return "reboot" in text.lower()


class NvpmodelPowerModes(PowerModes):
    """Modes by name; ``NAME+jetson_clocks`` variants also lock clocks (restored afterwards)."""

    def __init__(
        self,
        runner: CommandRunner | None = None,
        sysfs_root: Path = DEFAULT_ROOT,
        clocks_store: Path | None = None,
    ) -> None:
        self.runner = runner or SubprocessRunner()
        self.root = Path(sysfs_root)
        self.clocks_store = clocks_store or Path("/tmp/sentryfuse-jetson_clocks.conf")
        self._locked = False
        self._modes: list[NvpMode] | None = None

    def modes(self) -> list[NvpMode]:
        if self._modes is None:
            rc, out, err = self.runner(["nvpmodel", "-p", "--verbose"])
            modes = parse_verbose(out + err) if rc == 0 else []
            if not modes:
                modes = parse_conf(read_text(under(self.root, "/etc/nvpmodel.conf")) or "")
            if not modes:
                raise PowerModeError(
                    "no nvpmodel modes found (nvpmodel -p --verbose and /etc/nvpmodel.conf); is this a Jetson?"
                )
            self._modes = modes
        return self._modes

    def available(self) -> Availability:
        try:
            self.modes()
            self.query()
        except PowerModeError as exc:
            return Availability(False, str(exc))
        return Availability(True)

    def list(self) -> list[PowerMode]:
        plain = [PowerMode(m.name, f"nvpmodel id {m.id}") for m in self.modes()]
        locked = [
            PowerMode(m.name + LOCKED_SUFFIX, f"nvpmodel id {m.id}, clocks locked")
            for m in self.modes()
        ]
        return plain + locked

    def query(self) -> NvpMode:
        rc, out, err = self.runner(["nvpmodel", "-q"])
        if rc != 0:
            raise PowerModeError(f"nvpmodel -q failed: {first_line(err or out) or f'exit {rc}'}")
        return parse_query(out)

    def current(self) -> str:
        name = self.query().name
        return name + LOCKED_SUFFIX if self._locked else name

    def snapshot(self) -> tuple[NvpMode, bool]:
        return self.query(), self._locked

    def restore(self, snapshot: tuple[NvpMode, bool]) -> None:
        mode, was_locked = snapshot
        if self._locked and not was_locked:
            self._run(["jetson_clocks", "--restore", str(self.clocks_store)], "restore clocks")
            self._locked = False
        if self.query().id != mode.id:
            self._switch(mode)

    def set(self, name: str) -> None:
        self.mode(name)
        lock = name.endswith(LOCKED_SUFFIX)
        base = name[: -len(LOCKED_SUFFIX)] if lock else name
        target = next(m for m in self.modes() if m.name == base)
        if self._locked and not lock:
            self._run(["jetson_clocks", "--restore", str(self.clocks_store)], "restore clocks")
            self._locked = False
        if self.query().id != target.id:
            self._switch(target)
        if lock and not self._locked:
            self._run(["jetson_clocks", "--store", str(self.clocks_store)], "store clocks")
            self._run(["jetson_clocks"], "lock clocks")
            self._locked = True

    def _switch(self, mode: NvpMode) -> None:
        rc, out, err = self.runner(["nvpmodel", "-m", str(mode.id)])
        if needs_reboot(out + err):
            raise PowerModeError(
                f"power mode '{mode.name}' (id {mode.id}) needs a reboot on this board; "
                f"run 'sudo nvpmodel -m {mode.id}', reboot, then rerun"
            )
        if rc != 0:
            raise PowerModeError(
                f"nvpmodel -m {mode.id} failed: {first_line(err or out) or f'exit {rc}'} (needs root: run with sudo)"
            )
        now = self.query()
        if now.id != mode.id:
            raise PowerModeError(
                f"nvpmodel -m {mode.id} left the board in '{now.name}'; check nvpmodel"
            )

    def _run(self, argv: list[str], what: str) -> None:
        rc, out, err = self.runner(argv)
        if rc != 0:
            raise PowerModeError(
                f"cannot {what}: {' '.join(argv)} → {first_line(err or out) or f'exit {rc}'}"
            )
