"""The node side of a fleet run: one Ray task measures one unit on this node's device.

The task rebuilds the profile from its TOML text (checked against the driver's hash, so
node and driver agree on every cell key; a node on another git commit than the driver
is refused, since the cells' code would differ), picks its cells by key, receives the shipped
artefacts, and runs the unit with the suite's own runner. It answers with plain JSON:
the results and who measured them — device id, Ray node id, the node's own target
fingerprint and its hash, and the node's git commit. Per-process state (profile,
datasets, loaded checkpoints, target) is kept between tasks, since Ray reuses workers.
Work directories live under ``CACHE/<fingerprint hash>/``; TensorRT engines are built
here, on the device that measures them, into ``CACHE/engines/`` keyed by their ONNX
content and the device's engine fields (``targets.engine_cache``), so every later cell of
the same variant on a device like this one reuses them and no other device does.

Quiet while measuring: the task is one synchronous call with no threads of ours; its
cluster calls (``ray.nodes()`` for the device id, the artefacts' fetch) come before the
unit's first window, its answer after the last.
"""

from __future__ import annotations

import importlib
import json
import socket
from pathlib import Path
from typing import Any

from harness import registry
from harness.fleet.resources import kind_resource, node_device
from harness.fleet.shipping import ShippedArtifacts, models_from_wire
from harness.fleet.units import dumps, result_to_wire, run_unit
from harness.store import CellResult, fingerprint_hash, git_commit, utc_now
from harness.suite import ENGINES_DIR, use_engine_cache

DEFAULT_CACHE = Path.home() / ".cache" / "sentryfuse" / "fleet"
_STATE: dict[str, Any] = {}


def resolve_factory(ref: str | None) -> Any:
    """``module:function`` → the target factory (tests inject one); None → the registry."""
    if not ref:
        return registry.default_target_factory
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _state(req: dict[str, Any]) -> dict[str, Any]:
    key = req["profile_hash"] + "|" + (req.get("factory") or "")
    if key not in _STATE:
        from harness.cells import expand
        from harness.profile import parse_profile, tomllib

        factory = resolve_factory(req.get("factory"))
        models = models_from_wire(req["models"]) if req.get("models") else None
        profile = parse_profile(
            tomllib.loads(req["profile_toml"]), req["profile_source"], target_factory=factory,
            models=models,  # their files arrive by content hash (shipping.pack_model)
        )  # fmt: skip
        if profile.profile_hash() != req["profile_hash"]:
            raise RuntimeError(
                "the profile parsed on this node differs from the driver's: install the "
                "same sentryfuse-bench version on the node"
            )
        commit = git_commit()
        if req.get("git_commit") and commit and commit != req["git_commit"]:
            raise RuntimeError(
                f"this node runs sentryfuse-bench commit {commit[:12]}, the driver "
                f"{req['git_commit'][:12]}: install the driver's version on the node"
            )
        cache = Path(req.get("cache_dir") or DEFAULT_CACHE)
        _STATE.clear()  # one profile at a time per worker process
        _STATE[key] = {
            "profile": profile,
            "cells": {c.key: c for c in expand(profile)},
            "art": ShippedArtifacts(profile, cache / "artifacts"),
            "factory": factory,
            "targets": {},
            "cache": cache,
            "git_commit": commit,
        }
    return _STATE[key]


def _device(target_name: str, target: Any, commit: str | None) -> dict[str, Any]:
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    resources = next((n["Resources"] for n in ray.nodes() if n["NodeID"] == node_id), {})
    fp = target.fingerprint()
    return {
        "device_id": node_device(resources, target_name) or f"node-{node_id[:8]}",
        "resource": kind_resource(target_name),
        "node_id": node_id,
        "host": socket.gethostname(),
        "fingerprint": fp,
        "fingerprint_hash": fingerprint_hash({target_name: fp}),
        "git_commit": commit,
    }


def run_unit_task(request_json: str, *packages: dict[str, Any]) -> str:
    """Ray task body: measure the unit's cells on this node; answer JSON (see module doc)."""
    req = json.loads(request_json)
    st = _state(req)
    st["art"].receive(list(packages))
    cells = [st["cells"][k] for k in req["cell_keys"]]
    name = req["target"]
    target = st["targets"].get(name) or st["factory"](name)
    st["targets"][name] = target
    use_engine_cache(target, st["cache"] / ENGINES_DIR)  # built here, kept per device
    avail = target.availability() if target is not None else None
    device = _device(name, target, st["git_commit"]) if avail is not None and avail.ok else None
    if device is None:
        reason = avail.reason if avail is not None else "not implemented in this checkout"
        now = utc_now()
        msg = f"TargetError: target '{name}' is not available on node {socket.gethostname()}: {reason}"
        results = [CellResult("failed", now, now, error=msg[:500]) for _ in cells]
        return dumps({"device": None, "results": [result_to_wire(r) for r in results]})
    out_dir = st["cache"] / device["fingerprint_hash"][:16]
    results = run_unit(cells, st["art"], target, out_dir)
    wire = []
    for r in results:
        tb = None
        if r.status != "ok":
            path = json.loads(r.columns.get("extra_json") or "{}").get("traceback_file")
            if path and Path(path).is_file():
                tb = Path(path).read_text(errors="replace")
        wire.append(result_to_wire(r, tb))
    return dumps({"device": device, "results": wire})
