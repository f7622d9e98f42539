"""Read the pickled pandas frames that ship inside dataset packages, safely.

The dataset packages store their data as pickled DataFrames, and a pickle runs code when
it is loaded. We never import those packages (one of them unpickles at import time with
the unrestricted ``pickle``) and never hand their files to ``pickle.load``. Instead an
allow-listed unpickler maps the few globals a DataFrame pickle needs onto inert
stand-ins and numpy's own array reconstructor, then the frame is rebuilt from its raw
blocks with the public pandas constructor. That also sidesteps the incompatibility of
old (pandas ~1.0, protocol 2) frame pickles with pandas >= 1.3, including pandas 3.
"""

from __future__ import annotations

import _codecs
import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sentryfuse.errors import DatasetError


class _Inert:
    """Stand-in for a pandas class: records its constructor args and pickled state."""

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _FrameStub(_Inert):
    pass


class _ManagerStub(_Inert):
    pass


class _IndexStub(_Inert):
    pass


class _RangeIndexStub(_IndexStub):
    pass


def _new_index(cls: type, d: dict) -> dict:
    """Replacement for ``pandas.core.indexes.base._new_Index``: keep the raw fields."""
    return {"kind": "RangeIndex" if cls is _RangeIndexStub else "Index", **d}


def _reconstructor(cls: type, base: type, state: Any) -> _Inert:
    """Replacement for ``copyreg._reconstructor`` that only builds our stand-ins."""
    if not (isinstance(cls, type) and issubclass(cls, _Inert)) or base is not object:
        raise DatasetError(f"pickle asks to reconstruct {cls!r}; refused by the allow-list")
    return object.__new__(cls)


def _numpy_reconstruct() -> Any:
    core = getattr(np, "_core", None) or np.core  # numpy 2 moved it; 1.x has np.core
    return core.multiarray._reconstruct


# (module, name) -> the object the unpickler may return. Nothing else resolves.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _codecs.encode,  # py2-era pickles store bytes as latin-1 text
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "slice"): slice,
    ("builtins", "slice"): slice,
    ("pandas.core.frame", "DataFrame"): _FrameStub,
    ("pandas.core.internals.managers", "BlockManager"): _ManagerStub,
    ("pandas.core.internals", "BlockManager"): _ManagerStub,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _IndexStub,
    ("pandas.core.indexes.range", "RangeIndex"): _RangeIndexStub,
}


class AllowListUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in ``_ALLOWED``."""

    def __init__(self, file: Any, source: str) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self._source}: pickle references {module}.{name}, which is not on the "
                "allow-list; the file may be corrupt or tampered with - reinstall its package"
            ) from None


def _axis_values(axis: Any) -> list:
    if isinstance(axis, dict) and axis.get("kind") == "RangeIndex":
        return list(range(axis["start"], axis["stop"], axis.get("step", 1)))
    if isinstance(axis, dict) and "data" in axis:
        return list(axis["data"])
    raise DatasetError(f"unsupported pickled index {axis!r}")


def _rebuild(obj: Any) -> Any:
    """Turn stand-ins back into real objects: frames become ``pd.DataFrame``."""
    if isinstance(obj, _FrameStub):
        state = obj.state if isinstance(obj.state, dict) else {}
        mgr = state.get("_mgr", state.get("_data"))
        if not isinstance(mgr, _ManagerStub) or not isinstance(mgr.state, tuple):
            raise DatasetError("pickled DataFrame has no block manager state")
        axes, block_values, block_items = mgr.state[:3]
        columns = _axis_values(axes[0])
        n_rows = len(_axis_values(axes[1]))
        data: dict[Any, np.ndarray] = {}
        for values, items in zip(block_values, block_items, strict=True):
            values = np.asarray(values).reshape(len(_axis_values(items)), n_rows)
            for name, col in zip(_axis_values(items), values, strict=True):
                data[name] = col
        return pd.DataFrame({c: data[c] for c in columns})
    if isinstance(obj, dict):
        return {k: _rebuild(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rebuild(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_rebuild(v) for v in obj)
    if isinstance(obj, _Inert):
        raise DatasetError(f"pickle holds an unsupported {type(obj).__name__}")
    return obj


def load_frames(path: Path) -> Any:
    """Load a (gzip-)pickled structure of DataFrames through the allow-list."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = AllowListUnpickler(f, source=Path(path).name).load()
    except (OSError, EOFError, pickle.UnpicklingError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}; reinstall its package") from None
    return _rebuild(raw)
