"""Artefacts built once on the driver and shipped to devices as safetensors + JSON bytes.

Training and zero-shot pruning are built where it is cheapest (the driver, which also
keeps them under ``OUT/checkpoints`` for ``--resume``) and travel through Ray's object
store as ``{file name: bytes}`` — the same files ``save_variant``/``train`` write, rebuilt
on the node by the model code. Never a pickled module of ours: a device node may run a
different torch build (JetPack), and a pickle would tie the two together and execute
whatever it holds. On the node, files land in a content-addressed cache so a later run
reuses them. A user's ``[[models]]`` ONNX file travels the same way, as its bytes keyed
by its content digest, into ``CACHE/artifacts/models/<sha256>.onnx`` — or, with external
weights, the file and its data files laid out as they were under
``CACHE/artifacts/models/<sha256>/`` — so a node needs no shared filesystem and no file
at the driver's path; anything not shipped (a failed build, a
replay cell's per-segment variants, fine-tuning, which is metered on the device) is
derived on the node as on one machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.artifacts import Artifacts
from harness.cells import Cell
from harness.profile_schema import Profile, UserModel
from sentryfuse.outpath import write_bytes_atomically
from targets.onnx_content import content_sha256_of, write_model_dir

Files = dict[str, bytes]


def read_dir(path: Path) -> Files:
    """Every regular file directly under ``path`` (checkpoints and variants are flat)."""
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def write_dir(files: Files, final: Path) -> Path:
    """Write ``files`` into ``final`` atomically (temporary sibling, then rename)."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    for name, data in files.items():
        if "/" in name or name.startswith("."):
            raise ValueError(f"refusing a shipped file name {name!r}")
        (tmp / name).write_bytes(data)
    try:
        os.replace(tmp, final)
    except OSError:  # another worker of this node won the race: same content key
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def digest(files: Files) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def variant_key(ckpt_key: str, method: str, sparsity: float, present: Any, seed: int) -> str:
    """The string form of ``Artifacts.variant``'s cache key (JSON-safe for the wire)."""
    return json.dumps([ckpt_key, method, sparsity, list(present) if present else None, seed])


def models_to_wire(models: tuple[UserModel, ...]) -> list[dict[str, Any]]:
    """The driver's parsed ``[[models]]`` entries as plain data (the node parses none)."""
    return [dataclasses.asdict(m) for m in models]


def models_from_wire(rows: list[dict[str, Any]]) -> tuple[UserModel, ...]:
    return tuple(
        UserModel(
            r["name"],
            r["path"],
            r["sha256"],
            tuple((k, tuple(int(d) for d in v)) for k, v in r["shapes"]),
            int(r["batch"]),
            tuple(r.get("external", ())),
        )  # fmt: skip
        for r in rows
    )


def pack_model(model: UserModel) -> dict[str, Any]:
    """A user's ONNX file (and its external-data files) as bytes, keyed by the content
    digest the profile recorded."""
    path = Path(model.path)
    data = path.read_bytes()
    external = {loc: (path.parent / loc).read_bytes() for loc in model.external}
    if content_sha256_of(data, external) != model.sha256:
        raise ValueError(f"{model.path} changed since the profile was read")
    return {
        "key": f"model:{model.sha256}",
        "sha256": model.sha256,
        "onnx": data,
        "external": external,
        "name": path.name,
    }


def pack_checkpoint(art: Artifacts, ckpt_key: str) -> dict[str, Any]:
    return {"key": ckpt_key, "files": read_dir(art.out_dir / "checkpoints" / ckpt_key)}


def pack_variant(key: str, variant: Any) -> dict[str, Any]:
    """A ``PrunedVariant`` as its manifest + weights and the fields a cell row uses."""
    from sentryfuse.models import save_variant

    meta = {
        "method": variant.method,
        "sparsity": variant.sparsity,
        "present": list(variant.present) if variant.present else None,
        "prune_ms": variant.prune_ms,
        "budget": variant.budget,
        "achieved_sparsity": variant.achieved_sparsity,
    }
    with tempfile.TemporaryDirectory(prefix="sentryfuse-variant-") as tmp:
        save_variant(variant.model, tmp, meta=meta)
        return {"key": key, "meta": meta, "files": read_dir(Path(tmp))}


def unit_packages(
    unit: Sequence[Cell], art: Artifacts, put: Callable[[str, Callable[[], Any]], Any]
) -> list[Any]:
    """What ``unit`` needs shipped — its checkpoints, pruned variants and ONNX files —
    each built on the driver and handed to ``put(key, pack)`` (which puts each key into
    the object store once). A build that fails here is not shipped: the node meets the
    same failure and stores it with the same message the single-machine run would."""
    from harness.dropout import parse_condition

    refs: dict[str, Any] = {}
    for cell in unit:
        if cell.kind == "model":  # the user's ONNX file, by content hash
            model = next(m for m in art.profile.models if m.name == cell.backbone)
            key = f"model:{model.sha256}"
            with contextlib.suppress(OSError, ValueError):  # the node says why
                refs[key] = put(key, lambda m=model: pack_model(m))
            continue
        try:
            ckpt_key, ckpt = art.checkpoint(cell.dataset, cell.backbone, cell.attention, cell.seed)
        except Exception:
            continue
        refs[ckpt_key] = put(ckpt_key, lambda k=ckpt_key: pack_checkpoint(art, k))
        if cell.kind != "static" or cell.method == "dense":
            continue
        ds = art.dataset(cell.dataset, cell.seed)
        present = parse_condition(cell.condition).static_present(ds.modality_names)
        vkey = variant_key(ckpt_key, cell.base_method, cell.sparsity, present, cell.seed)
        try:
            variant = art.variant(
                ckpt_key, ckpt, ds, cell.base_method, cell.sparsity, present, cell.seed
            )
        except Exception:
            continue
        refs[vkey] = put(vkey, lambda k=vkey, v=variant: pack_variant(k, v))
    return list(refs.values())


class ShippedArtifacts(Artifacts):
    """The node's ``Artifacts``: shipped checkpoints and variants first, else built here."""

    def __init__(self, profile: Profile, cache_dir: Path) -> None:
        super().__init__(profile, cache_dir, progress=False)
        self._shipped_variants: dict[str, dict[str, Any]] = {}

    def receive(self, packages: list[dict[str, Any]]) -> None:
        for pkg in packages:
            if "onnx" in pkg:  # a user's model: node-local, by content hash
                self._write_model(pkg)
            elif "meta" in pkg:
                self._shipped_variants.setdefault(pkg["key"], pkg)
            else:  # a checkpoint: where Artifacts looks for it before training
                write_dir(pkg["files"], self.out_dir / "checkpoints" / pkg["key"])

    def _model_path(self, sha256: str, name: str | None) -> Path:
        """``models/<sha256>.onnx``; a model with external data keeps its own file name
        in ``models/<sha256>/`` beside its data files (``name`` given)."""
        models = self.out_dir / "models"
        return models / sha256 / name if name else models / f"{sha256}.onnx"

    def _write_model(self, pkg: dict[str, Any]) -> None:
        sha256, data, external = pkg["sha256"], pkg["onnx"], pkg.get("external") or {}
        final = self._model_path(sha256, pkg["name"] if external else None)
        if final.is_file():
            return
        if content_sha256_of(data, external) != sha256:
            raise ValueError(f"a shipped model does not hash to {sha256[:12]}")
        models = self.out_dir / "models"
        models.mkdir(parents=True, exist_ok=True)
        if not external:  # a racing worker of this node writes the same bytes
            write_bytes_atomically(final, data)
            return
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha256[:12]}-", dir=models))
        write_model_dir(data, external, tmp, final.name)
        try:
            os.replace(tmp, final.parent)  # the folder appears whole, or not at all
        except OSError:  # another worker of this node won the race: same content
            shutil.rmtree(tmp, ignore_errors=True)

    def model_file(self, model: UserModel) -> Path:
        """The node's copy (shipped by content hash); the path itself if none came."""
        local = self._model_path(model.sha256, Path(model.path).name if model.external else None)
        return local if local.is_file() else Path(model.path)

    def variant(
        self,
        ckpt_key: str,
        checkpoint: Any,
        dataset: Any,
        method: str,
        sparsity: float,
        present: tuple[str, ...] | None,
        seed: int,
    ) -> Any:
        pkg = self._shipped_variants.get(variant_key(ckpt_key, method, sparsity, present, seed))
        if pkg is None:
            return super().variant(ckpt_key, checkpoint, dataset, method, sparsity, present, seed)
        cache_key = (ckpt_key, method, sparsity, present, seed)
        if cache_key not in self._variants:
            from sentryfuse.models import load_variant
            from sentryfuse.prune import PrunedVariant

            where = write_dir(pkg["files"], self.out_dir / "variants" / digest(pkg["files"])[:24])
            m = pkg["meta"]
            self._variants[cache_key] = PrunedVariant(
                load_variant(where),
                {},
                m["method"],
                m["sparsity"],
                tuple(m["present"]) if m["present"] else None,
                m["prune_ms"],
                m["budget"],
                m["achieved_sparsity"],
                {"built_on": "driver"},
            )
        return self._variants[cache_key]
