"""The in-memory shape every dataset takes.

Every modality is a float32 sequence ``(N, T_m, C_m)``: time steps (or image rows /
patches) by features. Keeping one layout lets one tokenizer design serve motion, audio,
images and physiology, and keeps sample loading outside any timed region.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sentryfuse.errors import DatasetError


@dataclass(frozen=True)
class ModalitySpec:
    """One sensor stream: its name and per-sample shape ``(T, C)``."""

    name: str
    steps: int  # T: time steps / rows / patches per sample
    features: int  # C: channels per step


@dataclass(frozen=True)
class Split:
    """One split: ``x[modality]`` is ``(N, T, C)`` float32, ``y`` is ``(N,)`` int64."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    subjects: np.ndarray | None = None  # (N,) subject id per sample, where subjects exist

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, index: np.ndarray | slice) -> Split:
        """A sub-split (e.g. a small slice for tests or a calibration batch)."""
        subjects = None if self.subjects is None else self.subjects[index]
        return Split({k: v[index] for k, v in self.x.items()}, self.y[index], subjects)


@dataclass(frozen=True)
class MultimodalDataset:
    """A named dataset with a fixed, ordered list of modalities and two splits."""

    name: str
    modalities: tuple[ModalitySpec, ...]
    classes: tuple[str, ...]
    train: Split
    test: Split
    meta: dict = field(default_factory=dict)  # provenance: source, licence, split rule

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def validate(self) -> MultimodalDataset:
        """Check shapes and dtypes; raise ``DatasetError`` naming the wrong array."""
        for split_name, split in (("train", self.train), ("test", self.test)):
            n = len(split)
            for spec in self.modalities:
                if spec.name not in split.x:
                    raise DatasetError(
                        f"{self.name}: {split_name} split has no '{spec.name}' array"
                    )
                arr = split.x[spec.name]
                if arr.shape != (n, spec.steps, spec.features) or arr.dtype != np.float32:
                    raise DatasetError(
                        f"{self.name}: {split_name} '{spec.name}' is {arr.dtype}{arr.shape}, "
                        f"expected float32{(n, spec.steps, spec.features)}"
                    )
            if split.y.dtype != np.int64 or split.y.ndim != 1:
                raise DatasetError(f"{self.name}: {split_name} labels must be int64 (N,)")
        return self
