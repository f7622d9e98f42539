"""Fakes that implement the hardware access points fully, for tests and demos.

They live next to what they fake (as Zeus keeps its fake GPUs): ``ScriptedRunner`` is a
``CommandRunner`` that replays recorded command output, and ``FakeNvml`` offers the
``pynvml`` functions the adapters call, holding recorded values and enforcing NVML's
rules (limits within constraints, permission errors when not root).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from targets.hw import CommandResult

Responder = Callable[[Sequence[str]], CommandResult]


class ScriptedRunner:
    """Answers each argv from a table of recorded outputs (or a responder function) and
    keeps the call log, so tests can assert what would have run on the device."""

    def __init__(
        self, table: dict[tuple[str, ...], CommandResult | Responder] | None = None
    ) -> None:
        self.table = dict(table or {})
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout_s: float = 30.0) -> CommandResult:
        key = tuple(argv)
        self.calls.append(key)
        answer = self.table.get(key)
        if answer is None:
            return CommandResult(127, "", f"{argv[0]}: not scripted")
        return answer(key) if callable(answer) else answer


class NVMLError(Exception):
    """Shape of ``pynvml.NVMLError``: the NVML return code in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeNvml:
    """The subset of ``pynvml`` the cuda target uses, backed by recorded values."""

    NVML_ERROR_INVALID_ARGUMENT = 2
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NO_PERMISSION = 4
    NVML_ERROR_NOT_FOUND = 6
    NVML_CLOCK_GRAPHICS = 0
    NVMLError = NVMLError

    def __init__(
        self, values: dict[str, Any], root: bool = True, energy_supported: bool = True
    ) -> None:
        self.values = values
        self.root = root
        self.energy_supported = energy_supported
        self.limit_mw = int(values["default_power_limit_mw"])
        self.locked_clocks: tuple[int, int] | None = None
        self._energy = list(values["total_energy_mj_series"])
        self.set_calls: list[int] = []
        self.fail_next_set = False
        # Devices in NVML (PCI bus) order; one device unless the values list several.
        self.devices: list[dict[str, Any]] = list(
            values.get("devices")
            or [
                {
                    "uuid": values.get("uuid", "GPU-00000000-0000-0000-0000-000000000000"),
                    "pci_bus_id": values.get("pci_bus_id", "00000000:01:00.0"),
                }
            ]
        )
        self.touched: list[int] = []  # handles whose limits/energy were read or set

    @classmethod
    def from_file(cls, path: Path, **kwargs: Any) -> FakeNvml:
        return cls(json.loads(Path(path).read_text()), **kwargs)

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        pass

    def nvmlShutdown(self) -> None:  # noqa: N802
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        if not 0 <= index < len(self.devices):
            raise NVMLError(self.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> int:  # noqa: N802
        """Full UUIDs only (``GPU-…`` or ``MIG-…``), as NVML."""
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for i, d in enumerate(self.devices):
            if d["uuid"] == text:
                return i
        raise NVMLError(self.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetHandleByPciBusId_v2(self, bus_id: str | bytes) -> int:  # noqa: N802
        """NVML parses the hex fields, so case and a 4- or 8-digit domain do not matter."""
        text = bus_id.decode() if isinstance(bus_id, bytes) else bus_id
        for i, d in enumerate(self.devices):
            if _pci_key(d["pci_bus_id"]) == _pci_key(text):
                return i
        raise NVMLError(self.NVML_ERROR_NOT_FOUND)

    nvmlDeviceGetHandleByPciBusId = nvmlDeviceGetHandleByPciBusId_v2  # noqa: N815

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return self.devices[handle]["uuid"]

    def nvmlDeviceGetPciInfo(self, handle: int) -> Any:  # noqa: N802
        return _PciInfo(self.devices[handle]["pci_bus_id"])

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        return self.devices[handle].get("name", self.values["name"])

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return self.values["driver"]

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: int) -> tuple[int, int]:  # noqa: N802
        low, high = self.values["power_limit_constraints_mw"]
        return int(low), int(high)

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: int) -> int:  # noqa: N802
        return int(self.values["default_power_limit_mw"])

    def nvmlDeviceGetPowerManagementLimit(self, handle: int) -> int:  # noqa: N802
        self.touched.append(handle)
        return self.limit_mw

    def nvmlDeviceSetPowerManagementLimit(self, handle: int, limit_mw: int) -> None:  # noqa: N802
        if not self.root:
            raise NVMLError(self.NVML_ERROR_NO_PERMISSION)
        if self.fail_next_set:
            self.fail_next_set = False
            raise NVMLError(999)
        low, high = self.nvmlDeviceGetPowerManagementLimitConstraints(handle)
        if not low <= limit_mw <= high:
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        self.set_calls.append(int(limit_mw))
        self.limit_mw = int(limit_mw)

    def nvmlDeviceGetDefaultApplicationsClock(self, handle: int, clock_type: int) -> int:  # noqa: N802
        return int(self.values["default_graphics_clock_mhz"])

    def nvmlDeviceSetGpuLockedClocks(self, handle: int, min_mhz: int, max_mhz: int) -> None:  # noqa: N802
        if not self.root:
            raise NVMLError(self.NVML_ERROR_NO_PERMISSION)
        self.locked_clocks = (min_mhz, max_mhz)

    def nvmlDeviceResetGpuLockedClocks(self, handle: int) -> None:  # noqa: N802
        self.locked_clocks = None

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        if not self.energy_supported:
            raise NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        self.touched.append(handle)
        value = self._energy[0]
        if len(self._energy) > 1:
            self._energy.pop(0)
        return value


class _PciInfo:
    """``nvmlPciInfo_t``: only ``busId`` is read."""

    def __init__(self, bus_id: str) -> None:
        self.busId = bus_id  # noqa: N815 - NVML's field name


def _pci_key(bus_id: str) -> tuple[int, ...]:
    domain, bus, rest = bus_id.split(":")
    device, function = rest.split(".")
    return tuple(int(x, 16) for x in (domain, bus, device, function))


class FakeJtopService:
    """The jtop service's state on one board: nvpmodel modes and their power masks,
    jetson_clocks, board metadata. Changes are applied one interval later (on the next
    ``ok()``), as jtop's service thread does; a mode whose mask differs from the current
    one is refused without ``force`` (it needs a reboot) and marked False in ``status``."""

    def __init__(
        self,
        models: Sequence[str],
        current: int,
        masks: Sequence[int] | None = None,
        board: dict[str, Any] | None = None,
        alive: bool = True,
    ) -> None:
        self.models = list(models)
        self.current = current
        self.masks = list(masks or [0] * len(self.models))
        self.status = [True] * len(self.models)
        self.clocks = False
        self.board = board or {}
        self.alive = alive
        self.pending: list[tuple[str, Any]] = []
        self.log: list[tuple[str, Any]] = []

    def tick(self) -> None:
        for kind, value in self.pending:
            self.log.append((kind, value))
            if kind == "nvp":
                if self.masks[value] != self.masks[self.current]:
                    self.status[value] = False
                else:
                    self.status[value] = True
                    self.current = value
            else:
                self.clocks = bool(value)
        self.pending.clear()

    def __call__(self) -> FakeJtop:
        """The factory ``JtopPowerModes`` takes: a new client connection."""
        return FakeJtop(self)


class JtopException(Exception):
    """Shape of ``jtop.JtopException`` (raised when the service socket is absent)."""


class _FakeNvpmodel:
    def __init__(self, service: FakeJtopService) -> None:
        self._s = service

    @property
    def models(self) -> list[str]:
        return list(self._s.models)

    @property
    def name(self) -> str:
        return self._s.models[self._s.current]

    @property
    def id(self) -> int:
        return self._s.current

    @property
    def status(self) -> list[bool]:
        return list(self._s.status)

    def is_running(self) -> bool:
        return bool(self._s.pending)

    def set_nvpmodel_name(self, name: str, force: bool = False) -> None:
        if name not in self._s.models:
            raise JtopException(f"NV Power Model {name} does not exists!")
        if force:
            raise AssertionError("force=True reboots the board; never used by the harness")
        if name != self.name:
            self._s.pending.append(("nvp", self._s.models.index(name)))


class FakeJtop:
    """A jtop client: ``with jtop() as j: j.ok(), j.nvpmodel, j.jetson_clocks, j.board``."""

    def __init__(self, service: FakeJtopService) -> None:
        self._s = service

    def __enter__(self) -> FakeJtop:
        if not self._s.alive:
            raise JtopException(
                "The jtop.service is not active. Please run: sudo systemctl restart jtop.service"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def ok(self) -> bool:
        self._s.tick()
        return self._s.alive

    @property
    def nvpmodel(self) -> _FakeNvpmodel:
        return _FakeNvpmodel(self._s)

    @property
    def jetson_clocks(self) -> bool:
        return self._s.clocks

    @jetson_clocks.setter
    def jetson_clocks(self, value: bool) -> None:
        self._s.pending.append(("clocks", bool(value)))

    @property
    def board(self) -> dict[str, Any]:
        return self._s.board
