"""Connect to a Ray cluster (``--cluster HOST:PORT``) or start a throwaway local one
(``--cluster local:N``: N simulated CPU devices on this machine, loopback only).

Ray resolves ``127.0.0.1`` to the machine's interface address unless clustering is
"disabled" for the process, which would expose the nodes on the network and break on
hosts whose interface address is not routable; for loopback addresses we switch that
off before Ray reads it, so the GCS, raylets and driver all stay on 127.0.0.1. The
address is probed with a plain TCP connect first, because ``ray.init`` on an
unreachable address retries for minutes instead of saying so.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.fleet import orphans
from harness.fleet.resources import devices_by_kind, node_resources
from sentryfuse.errors import HarnessError

LOOPBACK = "127.0.0.1"
MAX_LOCAL_DEVICES = 16
_PROBE_TIMEOUT_S = 3.0


@dataclass
class FleetCluster:
    """A connected cluster: where it is, and (for local:N) the handle that owns it."""

    address: str
    local: Any = None  # ray.cluster_utils.Cluster when we started it
    local_devices: list[str] = field(default_factory=list)
    session_dir: str | None = None  # a local cluster's Ray session directory
    record: Path | None = None  # its ownership record (harness.fleet.orphans)

    def resources(self) -> dict[str, float]:
        import ray

        return dict(ray.cluster_resources())

    def alive_devices(self) -> dict[str, list[str]]:
        """``{target: [device ids]}`` of the nodes alive now."""
        import ray

        merged: dict[str, float] = {}
        for node in ray.nodes():
            if node.get("Alive"):
                merged.update(node.get("Resources", {}))
        return devices_by_kind(merged)


def parse_spec(spec: str) -> tuple[str, int | None]:
    """``("local", N)`` or ``("host:port", None)``; anything else is a one-line error."""
    if spec.startswith("local:"):
        n = spec.removeprefix("local:")
        if not n.isdigit() or not 1 <= int(n) <= MAX_LOCAL_DEVICES:
            raise HarnessError(
                f"--cluster {spec}: N must be a whole number from 1 to {MAX_LOCAL_DEVICES} "
                "(e.g. --cluster local:2)"
            )
        return "local", int(n)
    host, sep, port = spec.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise HarnessError(
            f"--cluster {spec}: expected HOST:PORT of a Ray head (e.g. 10.0.0.5:6379) or local:N"
        )
    return spec, None


def keep_ray_on_loopback() -> None:
    """Make Ray bind and advertise 127.0.0.1 in this process and the nodes it starts."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:  # Ray already imported: it read the variable at import
        constants.ENABLE_RAY_CLUSTER = False


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def probe(address: str, timeout_s: float = _PROBE_TIMEOUT_S) -> None:
    """One TCP connect to the head's port; a one-line error when nothing answers."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HarnessError(
            f"--cluster {address}: no Ray head answers there ({reason}); start one with "
            "`ray start --head --port PORT` or try --cluster local:N"
        ) from None


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise HarnessError("--cluster needs Ray: pip install 'sentryfuse-bench[fleet]'") from None
    return ray


def _init(ray: Any, address: str, loopback: bool) -> None:
    kwargs: dict[str, Any] = {"_node_ip_address": LOOPBACK} if loopback else {}
    ray.init(
        address=address,
        logging_level="ERROR",
        log_to_driver=False,
        configure_logging=False,
        **kwargs,
    )


def start_local(n_devices: int, stream: TextIO | None = None) -> FleetCluster:
    """Head plus nodes, each one simulated CPU device ``local-<i>``, all on 127.0.0.1.

    First stops what an earlier ``local:N`` whose driver was killed left behind; the
    cluster is recorded as this driver's until it is stopped (``harness.fleet.orphans``)."""
    keep_ray_on_loopback()
    _ray()
    from ray.cluster_utils import Cluster

    stopped = orphans.sweep()
    if stopped:
        print(
            f"stopped {len(stopped)} Ray processes left by a killed --cluster local:N driver",
            file=stream or sys.stderr,
        )
    devices = [f"local-{i + 1}" for i in range(n_devices)]
    common = {"node_ip_address": LOOPBACK, "num_cpus": 1}
    local = Cluster(
        initialize_head=True,
        head_node_args={
            **common,
            "include_dashboard": False,
            # notice a dead simulated device in seconds, not Ray's default ~30 s
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
            "resources": node_resources("cpu", devices[0]),
        },
    )
    session_dir = local.head_node.get_session_dir_path()
    mine = orphans.record(session_dir)
    try:
        for device in devices[1:]:
            local.add_node(**common, resources=node_resources("cpu", device))
        local.wait_for_nodes()
    except BaseException:
        stop_local(local, mine)
        raise
    return FleetCluster(local.address, local, devices, session_dir, mine)


def stop_local(local: Any, record: Path | None) -> None:
    """Stop the cluster we started, then drop its record (nothing is left to sweep)."""
    local.shutdown()
    if record is not None:
        record.unlink(missing_ok=True)


@contextlib.contextmanager
def connect(spec: str) -> Iterator[FleetCluster]:
    """Connected for the block; a local cluster is stopped on any exit."""
    where, n_local = parse_spec(spec)
    loopback = n_local is not None or _is_loopback(where.rpartition(":")[0])
    if loopback:
        keep_ray_on_loopback()
    ray = _ray()
    if n_local is not None:
        cluster = start_local(n_local)
    else:
        probe(where)
        cluster = FleetCluster(where)
    try:
        _init(ray, cluster.address, loopback)
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        if cluster.local is not None:
            stop_local(cluster.local, cluster.record)
