"""The bring-your-own ``.npz`` format, which is also our on-disk cache format.

One file, plain arrays, no pickle (read with ``allow_pickle=False``)::

    x_train__<modality>   (N_train, T, C) or (N_train, T)   numeric
    x_test__<modality>    (N_test,  T, C) or (N_test,  T)   same T and C as train
    y_train, y_test       (N,) integer class ids in [0, K)
    subjects_train/_test  (N,) integer, optional (subject-wise analyses)
    classes               (K,) str, optional (default "0".."K-1")
    modalities            (M,) str, optional: modality order (default: file order)
    meta_json             ()  str, optional: JSON provenance

Using one format for user data and for our cache means the cache path is exercised by
every run, and a user can inspect or replace a cached dataset with numpy alone.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from sentryfuse.data.base import ModalitySpec, MultimodalDataset, Split
from sentryfuse.errors import DatasetError

SEP = "__"
FORMAT_HINT = "see docs/datasets.md for the .npz layout"


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"dataset file '{path}' does not exist; pass an existing .npz path")
    if not zipfile.is_zipfile(path):
        raise DatasetError(
            f"{path.name} is not a readable .npz file (not a zip archive); {FORMAT_HINT}"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except ValueError:  # object arrays need pickle, which we refuse
        raise DatasetError(
            f"{path.name} holds object arrays, which would need pickle; "
            f"store plain numeric/str arrays ({FORMAT_HINT})"
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(
            f"{path.name} is not a readable .npz file ({exc}); {FORMAT_HINT}"
        ) from None


def _labels(arrays: dict[str, np.ndarray], key: str, where: str) -> np.ndarray:
    if key not in arrays:
        raise DatasetError(f"{where}: missing array '{key}' (N,) integer class ids; {FORMAT_HINT}")
    y = arrays[key]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{where}: '{key}' is {y.dtype}{y.shape}, expected integer (N,)")
    return y.astype(np.int64)


def _modality(arrays: dict[str, np.ndarray], key: str, n: int, where: str) -> np.ndarray:
    if key not in arrays:
        raise DatasetError(f"{where}: missing array '{key}' (N, T, C); {FORMAT_HINT}")
    x = arrays[key]
    if x.ndim == 2:
        x = x[:, :, None]
    bad_dtype = not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer))
    if x.ndim != 3 or x.shape[0] != n or bad_dtype or min(x.shape, default=0) == 0:
        raise DatasetError(
            f"{where}: '{key}' is {arrays[key].dtype}{arrays[key].shape}, expected a numeric "
            f"({n}, T, C) or ({n}, T) array (N must match the labels)"
        )
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise DatasetError(f"{where}: '{key}' contains NaN or inf; fill or drop those samples")
    return x


def read_npz(path: Path | str, name: str | None = None) -> MultimodalDataset:
    """Read and validate a bring-your-own (or cached) dataset file."""
    path = Path(path).expanduser()
    arrays = _read(path)
    where = path.name
    found = [k[len("x_train" + SEP) :] for k in arrays if k.startswith("x_train" + SEP)]
    order = [str(m) for m in arrays["modalities"]] if "modalities" in arrays else found
    if not order:
        raise DatasetError(f"{where}: no 'x_train__<modality>' arrays; {FORMAT_HINT}")
    y_train = _labels(arrays, "y_train", where)
    y_test = _labels(arrays, "y_test", where)
    x_train, x_test, specs = {}, {}, []
    for mod in order:
        x_tr = _modality(arrays, f"x_train{SEP}{mod}", len(y_train), where)
        x_te = _modality(arrays, f"x_test{SEP}{mod}", len(y_test), where)
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise DatasetError(
                f"{where}: 'x_test{SEP}{mod}' has (T, C) = {x_te.shape[1:]}, expected "
                f"{x_tr.shape[1:]} as in 'x_train{SEP}{mod}'"
            )
        x_train[mod], x_test[mod] = x_tr, x_te
        specs.append(ModalitySpec(mod, x_tr.shape[1], x_tr.shape[2]))
    n_classes = int(max(y_train.max(initial=-1), y_test.max(initial=-1))) + 1
    classes = [str(c) for c in arrays["classes"]] if "classes" in arrays else []
    classes = classes or [str(i) for i in range(n_classes)]
    for key, y in (("y_train", y_train), ("y_test", y_test)):
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise DatasetError(
                f"{where}: '{key}' holds ids outside [0, {len(classes)}) for {len(classes)} classes"
            )
    subjects = {}
    for split, y in (("train", y_train), ("test", y_test)):
        key = f"subjects_{split}"
        if key in arrays:
            s = arrays[key]
            if s.shape != y.shape or not np.issubdtype(s.dtype, np.integer):
                raise DatasetError(
                    f"{where}: '{key}' is {s.dtype}{s.shape}, expected integer {y.shape}"
                )
            subjects[split] = s.astype(np.int64)
    meta = json.loads(str(arrays["meta_json"])) if "meta_json" in arrays else {}
    meta.setdefault("source", str(path))
    ds = MultimodalDataset(
        name or meta.get("name") or path.stem,
        tuple(specs),
        tuple(classes),
        Split(x_train, y_train, subjects.get("train")),
        Split(x_test, y_test, subjects.get("test")),
        meta,
    )
    return ds.validate()


def write_npz(ds: MultimodalDataset, path: Path) -> Path:
    """Write ``ds`` in the same layout, atomically (temp file + ``os.replace``)."""
    arrays: dict[str, np.ndarray] = {
        "modalities": np.array(ds.modality_names),
        "classes": np.array(ds.classes),
        "y_train": ds.train.y,
        "y_test": ds.test.y,
        "meta_json": np.array(json.dumps(dict(ds.meta, name=ds.name))),
    }
    for split_name, split in (("train", ds.train), ("test", ds.test)):
        for mod in ds.modality_names:
            arrays[f"x_{split_name}{SEP}{mod}"] = split.x[mod]
        if split.subjects is not None:
            arrays[f"subjects_{split_name}"] = split.subjects
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a shared cache should be readable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
