"""What one ONNX model *is*: its ``.onnx`` file and the external-data files it points at.

Models over 2 GB, and many exported with ``save_as_external_data``, keep their weights
outside the protobuf: each tensor names a ``location`` relative to the model's folder.
The graph alone is then not the model — two files with the same graph and different
weights hash alike — so everything that keys, caches or ships a user's model uses the
content digest here: a resumed run, a TensorRT engine cache and a fleet node all see a
weights-only change.

The digest of a model without external data is the plain SHA-256 of its file (what it
was before external data counted), so existing keys and engine caches stay valid. With
external data it is the SHA-256 over the file's hash and each location with its hash,
in sorted order. Locations must stay inside the model's folder (ONNX Runtime refuses
the others too): an absolute path or one climbing out with ``..`` is an error, never
read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from sentryfuse.errors import TargetError

_CHUNK = 1 << 20


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph: initializers, node attributes, and those of subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def _safe_location(path: Path, location: str) -> str:
    pure = PurePosixPath(location.replace("\\", "/"))
    if not pure.parts or pure.is_absolute() or ".." in pure.parts or ":" in pure.parts[0]:
        raise TargetError(
            f"{path}: external data location {location!r} is not inside the model's folder; "
            "re-save the model with a relative location"
        )
    return str(pure)


def external_locations(path: Path, model: Any | None = None) -> tuple[str, ...]:
    """The external-data files ``path``'s tensors live in, relative to its folder, sorted;
    every one must exist. ``model``: the already loaded proto (without external data)."""
    if model is None:
        model = _load_graph(path)
        if model is None:
            raise TargetError(f"{path}: not a valid ONNX model")
    found = set()
    for t in _tensors(model.graph):
        if t.data_location != 1:  # TensorProto.EXTERNAL
            continue
        entries = {e.key: e.value for e in t.external_data}
        found.add(_safe_location(path, entries.get("location", "")))
    folder = Path(path).parent
    for loc in sorted(found):
        if not (folder / loc).is_file():
            raise TargetError(
                f"{path}: tensor data file {loc!r} is missing; keep it next to the model"
            )
    return tuple(sorted(found))


def _load_graph(path: Path) -> Any | None:
    """The proto without its external data; None when the file is not ONNX at all, or
    when the ``onnx`` package is absent (a device that only runs our own exports, which
    never use external data; a user's file needs ``onnx`` to be read at all)."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        return None
    try:
        return onnx.load(str(path), load_external_data=False)
    except DecodeError:
        return None


def _file_sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def _combine(onnx_digest: bytes, external: Mapping[str, bytes]) -> str:
    if not external:
        return onnx_digest.hex()
    h = hashlib.sha256(b"onnx\0" + onnx_digest)
    for loc in sorted(external):
        h.update(loc.encode() + b"\0" + external[loc])
    return h.hexdigest()


def content_sha256(path: Path, locations: tuple[str, ...] | None = None) -> str:
    """The model's content digest read from disk (module docstring). A file that does
    not parse as ONNX hashes as its bytes: whoever reads it next says what is wrong."""
    path = Path(path)
    if locations is None:
        model = _load_graph(path)
        locations = () if model is None else external_locations(path, model)
    locs = locations
    return _combine(_file_sha256(path), {loc: _file_sha256(path.parent / loc) for loc in locs})


def content_sha256_of(onnx: bytes, external: Mapping[str, bytes]) -> str:
    """The same digest over bytes in memory (a shipped model, checked on arrival)."""
    return _combine(
        hashlib.sha256(onnx).digest(), {k: hashlib.sha256(v).digest() for k, v in external.items()}
    )


def content_bytes(path: Path, locations: tuple[str, ...] | None = None) -> int:
    """The model's size on disk: its file and its external-data files (``locations``
    when the caller read them already)."""
    path = Path(path)
    locs = external_locations(path) if locations is None else locations
    return path.stat().st_size + sum((path.parent / loc).stat().st_size for loc in locs)


def write_model_dir(onnx: bytes, external: Mapping[str, bytes], folder: Path, name: str) -> Path:
    """Lay a shipped model out as it was: ``folder/name`` and each location under
    ``folder`` (locations re-checked: a shipped name never leaves the folder)."""
    for loc in external:
        _safe_location(folder / name, loc)
    folder.mkdir(parents=True, exist_ok=True)
    for loc, data in external.items():
        (folder / loc).parent.mkdir(parents=True, exist_ok=True)
        (folder / loc).write_bytes(data)
    (folder / name).write_bytes(onnx)
    return folder / name
