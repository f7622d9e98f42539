"""One exception tree for the whole product.

Every error a user can cause (bad names, malformed files, unavailable hardware) is a
``SentryFuseError``; the command line prints its message as one line and exits with 2.
Vendor errors are translated into these at the adapter that called the vendor, with a
message that says what to do next.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SentryFuseError(Exception):
    """A user-facing error: the message is one line saying what is wrong and what to do."""


class DatasetError(SentryFuseError):
    """A dataset is unknown, not installed, or malformed."""


class ModelError(SentryFuseError):
    """A model, checkpoint or manifest is unknown or inconsistent."""


class PruneError(SentryFuseError):
    """A pruning request cannot be carried out (bad sparsity, unknown modality, ...)."""


class HarnessError(SentryFuseError):
    """Base of the harness/target errors."""


class ProfileError(HarnessError):
    """A profile file is malformed; the message names the file, the key and a hint."""


class StoreError(HarnessError):
    """A results store is missing, corrupt or incompatible."""


class TargetError(HarnessError):
    """A target is unavailable or failed to export/run a model."""


class SensorError(TargetError):
    """An energy or memory sensor could not be read."""


class PowerModeError(TargetError):
    """A power mode is unknown, not permitted, or failed to apply/restore."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> str:
    """Message for an unknown name: lists the valid ones and the nearest match."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}"
