"""jtop (jetson-stats) as the optional Jetson controller: power modes, clocks, board data.

jtop talks to its own service over a socket; where the service answers it sets nvpmodel
modes by name and toggles jetson_clocks without this process needing root, and reports
the board (module, L4T, JetPack, CUDA/TensorRT versions). Its mode changes are
asynchronous (a service thread), so a change is confirmed by polling until the mode is
reported, and a mode the service refuses without ``force`` (a different power mask: it
needs a reboot) is refused here too — ``force=True`` would reboot the board. Energy is
never read from jtop (its ``avg`` is a blend, not an integral). ``jtop_factory`` is a
parameter so tests pass a fake service.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sentryfuse.errors import PowerModeError
from targets.base import Availability, PowerMode, PowerModes
from targets.nvpmodel import LOCKED_SUFFIX

JtopFactory = Callable[[], contextlib.AbstractContextManager]
SETTLE_POLLS = 20  # jtop intervals to wait for a mode change (20 × 0.5 s)


def default_jtop_factory(interval_s: float = 0.5) -> JtopFactory:
    """The real ``jtop(interval=...)``; jtop is stable only at ≥0.5 s intervals."""

    def make() -> contextlib.AbstractContextManager:
        try:
            from jtop import jtop
        except ImportError as exc:
            raise PowerModeError(
                "jtop is not installed: pip install 'sentryfuse-bench[jetson]'"
            ) from exc
        return jtop(interval=max(0.5, interval_s))

    return make


class JtopPowerModes(PowerModes):
    """nvpmodel modes by name and ``NAME+jetson_clocks`` variants, through the jtop service."""

    controller = "jtop"

    def __init__(self, jtop_factory: JtopFactory | None = None) -> None:
        self.factory = jtop_factory or default_jtop_factory()

    @contextlib.contextmanager
    def _session(self) -> Any:
        try:
            cm = self.factory()
            handle = cm.__enter__()
        except PowerModeError:
            raise
        except Exception as exc:  # jtop raises JtopException when its service is down
            raise PowerModeError(f"jtop service not answering: {exc}") from exc
        try:
            if not handle.ok():
                raise PowerModeError("jtop service not answering (no data)")
            if handle.nvpmodel is None:
                raise PowerModeError("jtop reports no nvpmodel on this board")
            yield handle
        finally:
            cm.__exit__(None, None, None)

    def available(self) -> Availability:
        try:
            with self._session():
                return Availability(True)
        except PowerModeError as exc:
            return Availability(False, str(exc))

    def list(self) -> list[PowerMode]:
        with self._session() as j:
            models = [str(m) for m in j.nvpmodel.models]
        plain = [PowerMode(m, f"nvpmodel id {i} via jtop") for i, m in enumerate(models)]
        locked = [
            PowerMode(m + LOCKED_SUFFIX, f"nvpmodel id {i} via jtop, clocks locked")
            for i, m in enumerate(models)
        ]
        return plain + locked

    def current(self) -> str:
        name, locked = self.snapshot()
        return name + LOCKED_SUFFIX if locked else name

    def snapshot(self) -> tuple[str, bool]:
        with self._session() as j:
            return str(j.nvpmodel.name), bool(j.jetson_clocks)

    def restore(self, snapshot: tuple[str, bool]) -> None:
        name, locked = snapshot
        with self._session() as j:
            if bool(j.jetson_clocks) and not locked:
                self._clocks(j, False)
            if str(j.nvpmodel.name) != name:
                self._switch(j, name)
            if locked and not bool(j.jetson_clocks):
                self._clocks(j, True)

    def set(self, name: str) -> None:
        self.mode(name)
        lock = name.endswith(LOCKED_SUFFIX)
        base = name[: -len(LOCKED_SUFFIX)] if lock else name
        with self._session() as j:
            if bool(j.jetson_clocks) and not lock:
                self._clocks(j, False)
            if str(j.nvpmodel.name) != base:
                self._switch(j, base)
            if lock and not bool(j.jetson_clocks):
                self._clocks(j, True)

    def _switch(self, j: Any, name: str) -> None:
        models = [str(m) for m in j.nvpmodel.models]
        idx = models.index(name)
        j.nvpmodel.set_nvpmodel_name(name, force=False)  # force=True would reboot the board
        for _ in range(SETTLE_POLLS):
            j.ok()  # one jtop interval: the service thread applies the mode
            status = list(getattr(j.nvpmodel, "status", []) or [])
            if idx < len(status) and not status[idx]:
                raise PowerModeError(
                    f"power mode '{name}' (id {idx}) needs a reboot on this board; "
                    f"run 'sudo nvpmodel -m {idx}', reboot, then rerun"
                )
            running = getattr(j.nvpmodel, "is_running", lambda: False)()
            if not running and str(j.nvpmodel.name) == name:
                return
        raise PowerModeError(
            f"jtop did not switch to power mode '{name}' (board reports '{j.nvpmodel.name}')"
        )

    def _clocks(self, j: Any, on: bool) -> None:
        j.jetson_clocks = on
        for _ in range(SETTLE_POLLS):
            j.ok()
            if bool(j.jetson_clocks) == on:
                return
        raise PowerModeError(f"jtop could not turn jetson_clocks {'on' if on else 'off'}")

    def board(self) -> dict[str, Any]:
        """Board metadata as jtop reports it (module, L4T, JetPack, library versions)."""
        with self._session() as j:
            board = dict(getattr(j, "board", {}) or {})
        hw = dict(board.get("hardware", {}) or {})
        libs = dict(board.get("libraries", {}) or {})
        keys = ("Model", "Module", "SoC", "P-Number", "L4T", "Jetpack", "CUDA Arch BIN")
        out = {k: hw[k] for k in keys if k in hw}
        out.update({f"lib {k}": v for k, v in libs.items() if k in ("CUDA", "cuDNN", "TensorRT")})
        return out
