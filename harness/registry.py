"""Valid names for profiles, taken from the parts that own them, imported lazily.

Profiles are validated before anything runs, so every name is checked against the
registry of the part that will use it. Those parts are imported here lazily (so
``sentryfuse --help`` stays fast); where a part is not importable yet the fallback
constant below mirrors ``docs/contracts.md`` and is replaced by the real registry as
soon as it exists.
"""

from __future__ import annotations

import importlib
from typing import Any

# Fallbacks mirroring docs/contracts.md; used only while the owning module is missing.
FALLBACK_DATASETS = ("hapt", "avdigits", "crowdsignals", "synthetic")
FALLBACK_BACKBONES = ("early", "late", "bottleneck")
FALLBACK_ATTENTIONS = ("dense", "sentryattend")
FALLBACK_METHODS = ("random", "magnitude", "taylor", "fisher", "taylor-calib", "sentrygate")
FALLBACK_TARGETS = ("cpu", "cuda", "jetson")
KNOWN_RUNTIMES = ("torch", "torch-compiled", "onnxruntime", "tensorrt")
MODEL_SIZES = ("tiny", "small")

# Harness-level power-mode name meaning "leave the device as it is" (no set/restore).
CURRENT_MODE = "current"


def _attr(module: str, name: str) -> Any | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError:
        return None
    return getattr(mod, name, None)


def dataset_names() -> tuple[str, ...]:
    fn = _attr("sentryfuse.data", "dataset_names")
    return tuple(fn()) if fn is not None else FALLBACK_DATASETS


def backbone_names() -> tuple[str, ...]:
    names = _attr("sentryfuse.models", "BACKBONES")
    return tuple(names) if names else FALLBACK_BACKBONES


def attention_names() -> tuple[str, ...]:
    names = _attr("sentryfuse.models", "ATTENTIONS")
    return tuple(names) if names else FALLBACK_ATTENTIONS


def method_names() -> tuple[str, ...]:
    names = _attr("sentryfuse.prune", "METHODS")
    return tuple(names) if names else FALLBACK_METHODS


def target_names() -> tuple[str, ...]:
    names = _attr("targets", "TARGETS")
    return tuple(names) if names else FALLBACK_TARGETS


def default_target_factory(name: str) -> Any | None:
    """``targets.get_target(name)``, or None while the targets package lacks it."""
    get_target = _attr("targets", "get_target")
    if get_target is None:
        return None
    try:
        return get_target(name)
    except ModuleNotFoundError as exc:  # an adapter module not written yet
        if exc.name and exc.name.startswith("targets."):
            return None
        raise
