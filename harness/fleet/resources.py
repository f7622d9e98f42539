"""Names of the Ray custom resources a device node advertises, and the join one-liner.

A node advertises its kind (``sentryfuse/jetson: 1``) so scheduling by target works, and
its identity (``sentryfuse/jetson:orin-nano-01: 1``) so results and progress name the
device. Quantity 1 and a request of 1 per task is what makes a device run one unit at a
time. One device per node: a host with two GPUs runs two nodes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping

PREFIX = "sentryfuse/"
_DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def kind_resource(target: str) -> str:
    """The resource every node of device kind ``target`` advertises, e.g. ``sentryfuse/cpu``."""
    return f"{PREFIX}{target}"


def device_resource(target: str, device_id: str) -> str:
    """The resource naming one device, e.g. ``sentryfuse/jetson:orin-nano-01``."""
    return f"{PREFIX}{target}:{device_id}"


def valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_ID.match(device_id))


def node_resources(target: str, device_id: str) -> dict[str, float]:
    """What a device node passes to ``ray start --resources``."""
    return {kind_resource(target): 1.0, device_resource(target, device_id): 1.0}


def devices_by_kind(resources: Mapping[str, float]) -> dict[str, list[str]]:
    """``{target: [device ids]}`` from one node's (or the cluster's) resource map."""
    out: dict[str, list[str]] = {}
    for name in resources:
        if not name.startswith(PREFIX) or ":" not in name:
            continue
        target, device_id = name[len(PREFIX) :].split(":", 1)
        out.setdefault(target, []).append(device_id)
    return {k: sorted(v) for k, v in sorted(out.items())}


def node_device(resources: Mapping[str, float], target: str) -> str | None:
    """The id of the ``target`` device this node advertises (None if it advertises none)."""
    ids = devices_by_kind(resources).get(target, [])
    return ids[0] if ids else None


def missing_kinds(needed: Iterable[str], cluster_resources: Mapping[str, float]) -> list[str]:
    """Targets no node of the cluster advertises."""
    return sorted(t for t in set(needed) if cluster_resources.get(kind_resource(t), 0.0) < 1.0)


def join_command(address: str, target: str, device_id: str) -> str:
    """The documented one-liner a device runs to join the fleet."""
    res = json.dumps(node_resources(target, device_id), separators=(",", ":"))
    return f"ray start --address {shlex.quote(address)} --resources {shlex.quote(res)}"
