"""Which physical GPU a runner uses, as NVML sees it.

CUDA and NVML number GPUs differently: CUDA ordinals are relative to
``CUDA_VISIBLE_DEVICES`` (indices *or* ``GPU-…``/``MIG-…`` UUIDs, possibly abbreviated,
parsing stopping at the first invalid entry) and, unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``,
ordered fastest first; NVML ignores the variable and counts in PCI bus order. So index 0
in NVML is often not the GPU the model runs on. The reliable key is the device's own UUID
or PCI bus id, asked of the CUDA runtime in use (torch or pycuda); the variable is parsed
only when no runtime can answer. Every input (NVML module, environment, CUDA runtime
query) is a parameter, so tests replay a two-GPU machine without one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sentryfuse.errors import SensorError

# (uuid "GPU-…", pci bus id "0000:3b:00.0") of CUDA ordinal i, or None when no CUDA runtime answers.
CudaIds = Callable[[int], "tuple[str | None, str | None] | None"]


@dataclass(frozen=True)
class GpuRef:
    """An NVML handle and how it was found (recorded in the fingerprint)."""

    handle: Any
    uuid: str | None
    pci_bus_id: str | None
    how: str


def visible_entries(value: str | None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as CUDA reads it; None when unset (every GPU visible).

    Entries are integers or UUIDs; CUDA stops at the first entry that is neither (e.g.
    ``0,-1,1`` exposes only GPU 0), and an empty value hides every GPU.
    """
    if value is None:
        return None
    out: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if re.fullmatch(r"\d+", entry) or re.fullmatch(r"(GPU|MIG)-[0-9A-Za-z/-]+", entry):
            out.append(entry)
        else:
            break
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _by_uuid(nvml: Any, uuid: str) -> Any:
    """Full UUIDs go straight to NVML; an abbreviated one (CUDA accepts unique prefixes)
    is matched against every device's UUID."""
    try:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    except Exception:
        matches = []
        for i in range(int(nvml.nvmlDeviceGetCount())):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            if _text(nvml.nvmlDeviceGetUUID(h)).lower().startswith(uuid.lower()):
                matches.append(h)
        if len(matches) != 1:
            raise SensorError(
                f"NVML knows no single GPU with UUID '{uuid}' ({len(matches)} match); "
                "check CUDA_VISIBLE_DEVICES against `nvidia-smi -L`"
            ) from None
        return matches[0]


def _by_pci(nvml: Any, bus_id: str) -> Any:
    fn = (
        getattr(nvml, "nvmlDeviceGetHandleByPciBusId_v2", None)
        or nvml.nvmlDeviceGetHandleByPciBusId
    )
    try:
        return fn(bus_id)
    except Exception as exc:
        raise SensorError(f"NVML knows no GPU at PCI bus id {bus_id}: {exc}") from exc


def _describe(nvml: Any, handle: Any, how: str) -> GpuRef:
    try:
        uuid = _text(nvml.nvmlDeviceGetUUID(handle))
    except Exception:
        uuid = None
    try:
        bus = _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
    except Exception:
        bus = None
    return GpuRef(handle, uuid, bus, how)


def locate_gpu(
    nvml: Any,
    ordinal: int = 0,
    *,
    env: Mapping[str, str] | None = None,
    cuda_ids: CudaIds | None = None,
) -> GpuRef:
    """The NVML handle of CUDA device ``ordinal`` (``cuda:ordinal``) of this process."""
    ids = cuda_ids(ordinal) if cuda_ids is not None else None
    if ids is not None:
        uuid, bus = ids
        if uuid:
            return _describe(
                nvml, _by_uuid(nvml, uuid), f"cuda:{ordinal} UUID from the CUDA runtime"
            )
        if bus:
            return _describe(
                nvml, _by_pci(nvml, bus), f"cuda:{ordinal} PCI bus id from the CUDA runtime"
            )
    env = os.environ if env is None else env
    raw = env.get("CUDA_VISIBLE_DEVICES")
    entries = visible_entries(raw)
    if entries is None:
        entry = str(ordinal)
        how = f"cuda:{ordinal}, CUDA_VISIBLE_DEVICES unset"
    elif ordinal >= len(entries):
        raise SensorError(
            f"CUDA_VISIBLE_DEVICES='{raw}' exposes {len(entries)} GPU(s); cuda:{ordinal} "
            "is not among them"
        )
    else:
        entry = entries[ordinal]
        how = f"cuda:{ordinal} = CUDA_VISIBLE_DEVICES entry '{entry}'"
    if not entry.isdigit():
        return _describe(nvml, _by_uuid(nvml, entry), how + " (UUID)")
    if env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID" and int(nvml.nvmlDeviceGetCount()) > 1:
        how += " (CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA may order GPUs differently from NVML)"
    return _describe(nvml, nvml.nvmlDeviceGetHandleByIndex(int(entry)), how)


def runtime_cuda_ids(ordinal: int) -> tuple[str | None, str | None] | None:
    """UUID / PCI bus id of ``cuda:ordinal`` from torch, else pycuda, else None.

    Only asks a runtime that is already importable and has a device; never creates a
    CUDA context of its own beyond pycuda's *primary* one.
    """
    try:
        import torch

        if torch.version.cuda is not None and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(ordinal)
            uuid = getattr(props, "uuid", None)
            try:  # recent torch exposes the PCI location; older builds only the UUID
                bus = (
                    f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
                )
            except AttributeError:
                bus = None
            return (f"GPU-{uuid}" if uuid is not None else None), bus
    except Exception:
        pass
    try:
        import pycuda.driver as cuda

        cuda.init()
        return None, _text(cuda.Device(ordinal).pci_bus_id())
    except Exception:
        return None
