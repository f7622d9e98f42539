"""Build-once caches: datasets, trained checkpoints, pruned variants.

Training is the expensive part of a suite, so a checkpoint is trained once per
(dataset, backbone, attention, seed, training settings) and kept under
``OUT/checkpoints/<hash>/`` (written to a temporary sibling and renamed, so a SIGKILL
never leaves a half checkpoint that a rerun would trust). Pruned variants are derived
once per (checkpoint, method, sparsity, present sensors) and reused by every cell that
needs them (targets, runtimes, power modes). A failure is cached too, so a checkpoint
that cannot be trained fails its cells quickly instead of retraining for each one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.profile_schema import Profile, UserModel, canonical_json, sha256_hex


class Artifacts:
    def __init__(self, profile: Profile, out_dir: Path, *, progress: bool = False) -> None:
        self.profile = profile
        self.out_dir = out_dir
        self.progress = progress
        self._datasets: dict[tuple[str, int], Any] = {}
        self._checkpoints: dict[str, Any] = {}
        self._variants: dict[tuple, Any] = {}
        self._failures: dict[Any, BaseException] = {}
        self.trained_s = 0.0  # wall seconds spent training so far (progress learns from it)

    def model_file(self, model: UserModel) -> Path:
        """Where this machine reads a ``[[models]]`` ONNX file (a fleet node: its cache)."""
        return Path(model.path)

    def dataset(self, name: str, seed: int) -> Any:
        """The dataset sliced by the profile's eval limits (cached per name and seed)."""
        key = (name, seed)
        if key not in self._datasets:
            from sentryfuse.data import load_dataset

            e = self.profile.eval
            self._datasets[key] = load_dataset(
                name, max_train=e.max_train, max_test=e.max_test, seed=seed
            )
        return self._datasets[key]

    def checkpoint_key(self, dataset: str, backbone: str, attention: str, seed: int) -> str:
        d = {
            "dataset": dataset,
            "backbone": backbone,
            "attention": attention,
            "seed": seed,
            "train": asdict(self.profile.train),
            "max_train": self.profile.eval.max_train,
            "max_test": self.profile.eval.max_test,
        }
        return sha256_hex(canonical_json(d))[:16]

    def earlier_trainings(self, cells: Iterable[Any]) -> list[tuple[float, float]]:
        """``(sample-epochs, seconds)`` of the checkpoints of ``cells`` already on disk, as
        their ``metrics.json`` recorded them: a resumed run prices its training from what
        training took on this machine instead of from the priors."""
        out = []
        keys = {
            self.checkpoint_key(c.dataset, c.backbone, c.attention, c.seed)
            for c in cells
            if c.kind != "model"
        }
        for key in sorted(keys):
            path = self.out_dir / "checkpoints" / key / "metrics.json"
            try:
                m = json.loads(path.read_text())
                units, seconds = float(m["epochs"]) * float(m["train_samples"]), float(m["train_s"])
            except (OSError, ValueError, KeyError, TypeError):
                continue  # not trained yet, or an older file without these fields
            if units > 0 and seconds > 0:
                out.append((units, seconds))
        return out

    def is_trained(self, dataset: str, backbone: str, attention: str, seed: int) -> bool:
        """Whether this checkpoint is already on disk (a cell using it trains nothing)."""
        key = self.checkpoint_key(dataset, backbone, attention, seed)
        return (self.out_dir / "checkpoints" / key / "config.json").is_file()

    def checkpoint(self, dataset: str, backbone: str, attention: str, seed: int) -> tuple[str, Any]:
        """(key, loaded ``Checkpoint``), training it into the cache if absent."""
        key = self.checkpoint_key(dataset, backbone, attention, seed)
        if key in self._failures:
            raise self._failures[key]
        if key not in self._checkpoints:
            try:
                self._checkpoints[key] = self._load_or_train(
                    key, dataset, backbone, attention, seed
                )
            except Exception as exc:
                self._failures[key] = exc
                raise
        return key, self._checkpoints[key]

    def _load_or_train(
        self, key: str, dataset: str, backbone: str, attention: str, seed: int
    ) -> Any:
        from sentryfuse.checkpoint import load_checkpoint
        from sentryfuse.models import model_config_for
        from sentryfuse.train import TrainConfig, train

        final = self.out_dir / "checkpoints" / key
        if not (final / "config.json").is_file():
            t = self.profile.train
            ds = self.dataset(dataset, seed)
            config = model_config_for(ds, backbone, attention, size=t.size)
            extra = {
                k: v
                for k, v in (
                    ("scorer_final_steps", t.scorer_final_steps),
                    ("subnet_freeze_epochs", t.subnet_freeze_epochs),
                    ("subnet_weight", t.subnet_weight),
                    ("subnet_grad", t.subnet_grad),
                )
                if v is not None  # None: sentryfuse's default
            }
            tcfg = TrainConfig(
                epochs=t.epochs, batch_size=t.batch_size, lr=t.lr, seed=seed, **extra,
                subnet=t.subnet, subnet_ranking=t.subnet_ranking, distill=t.distill,
            )  # fmt: skip
            tmp = final.parent / f".tmp-{key}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            try:
                train(ds, config, tcfg, tmp / "ckpt", progress=self.progress)
            finally:
                self.trained_s += time.monotonic() - t0
            shutil.rmtree(final, ignore_errors=True)  # a stale partial dir from old code
            os.replace(tmp / "ckpt", final)
            shutil.rmtree(tmp, ignore_errors=True)
        return load_checkpoint(final)

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
        """A zero-shot ``PrunedVariant`` (cached); calibration data: a seeded,
        class-stratified sample of the train split (the same rule as ``sentryfuse prune``)."""
        key = (ckpt_key, method, sparsity, present, seed)
        if key in self._failures:
            raise self._failures[key]
        if key not in self._variants:
            from sentryfuse.calibration import calibration_sample
            from sentryfuse.prune import prune

            calib = calibration_sample(dataset.train, self.profile.eval.calib_samples, seed)
            try:
                self._variants[key] = prune(
                    checkpoint, method, sparsity, present=present, calib=calib, seed=seed
                )
            except Exception as exc:
                self._failures[key] = exc
                raise
        return self._variants[key]
