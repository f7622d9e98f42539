"""TensorRT engines built on the device that measures them, cached per device.

An engine is only valid for the TensorRT version and the GPU (compute capability) it was
built on, and building one costs seconds to minutes, so a suite's second cell of the
same variant on the same device, and a ``--resume``, must reuse it while any other
device must not. The key is the SHA-256 of the ONNX content the engine is built from
(weights, shapes and graph; external-data weights included, ``targets.onnx_content``),
the build options, and
the fields of the device's fingerprint that an engine depends on (``ENGINE_DEVICE_FIELDS``:
GPU name and compute capability, driver, CUDA, TensorRT, and a Jetson's board and L4T
release) — not its power mode or clock lock, which change the measurement, not the
engine. Files are raw engine bytes plus a JSON sidecar saying what built them, each
written to a temporary name and renamed, so a killed build leaves no half engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sentryfuse.outpath import write_bytes_atomically
from targets.onnx_content import content_sha256

ENGINE_DEVICE_FIELDS = (
    "target",
    "gpu",
    "compute_capability",
    "driver",
    "cuda",
    "tensorrt",
    "board",
    "l4t",
)


def engine_device(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a target's fingerprint an engine is bound to."""
    return {k: fingerprint.get(k) for k in ENGINE_DEVICE_FIELDS}


def engine_key(onnx_sha256: str, options: Mapping[str, Any], device: Mapping[str, Any]) -> str:
    """SHA-256 over the ONNX content (``targets.onnx_content.content_sha256``: the file
    and its external weights), the build options and the engine's device."""
    head = json.dumps(
        {"onnx_sha256": onnx_sha256, "options": options, "device": dict(device)},
        sort_keys=True, separators=(",", ":"), default=str,
    )  # fmt: skip
    return hashlib.sha256(head.encode()).hexdigest()


class EngineCache:
    """``ROOT/<key>.engine`` (raw bytes) and ``ROOT/<key>.json`` (what built it).

    ``device`` is the target's fingerprint (or its engine fields); ``builds`` and
    ``hits`` count what this instance did, for the cell's provenance and for tests."""

    def __init__(self, root: Path, device: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.device = engine_device(device)
        self.builds = 0
        self.hits = 0

    def path(self, key: str) -> Path:
        return self.root / f"{key}.engine"

    def engine(
        self, onnx_path: Path, options: Mapping[str, Any], build: Callable[[], bytes]
    ) -> tuple[bytes, str, bool]:
        """``(engine bytes, key, reused)``; ``build()`` runs only on a miss."""
        key = engine_key(content_sha256(Path(onnx_path)), options, self.device)
        path = self.path(key)
        if path.is_file():
            self.hits += 1
            return path.read_bytes(), key, True
        data = build()
        self.builds += 1
        self.root.mkdir(parents=True, exist_ok=True)
        meta = {"key": key, "options": dict(options), "device": self.device, "bytes": len(data)}
        write_bytes_atomically(
            self.root / f"{key}.json", json.dumps(meta, sort_keys=True, default=str).encode()
        )
        write_bytes_atomically(path, data)  # last: an engine file present means a complete entry
        return data, key, False
