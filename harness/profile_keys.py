"""Which keys each profile section has, read from the schema's dataclasses.

One list serves the validation hints (``train.max_train`` → "it belongs in [eval]") and
the generated reference (``docs/profiles.md``), so neither can drift from the schema.
"""

from __future__ import annotations

import dataclasses

from harness.profile_schema import (
    EvalSettings,
    FinetuneSettings,
    Grid,
    MeasureSettings,
    Profile,
    ReplayEvent,
    ReplaySettings,
    TrainSettings,
    UserModel,
)

# section name ("" = top level, "replay.events" = each [[replay.events]]) -> dataclass
SECTIONS: dict[str, type] = {
    "": Profile,
    "grid": Grid,
    "measure": MeasureSettings,
    "train": TrainSettings,
    "eval": EvalSettings,
    "finetune": FinetuneSettings,
    "replay": ReplaySettings,
    "replay.events": ReplayEvent,
    "models": UserModel,
}
# Fields that are not written in a profile: where it came from, what is computed from it.
_NOT_KEYS = {"source", "sha256", "external"}


def section_keys(section: str) -> tuple[str, ...]:
    """The keys of one section, in schema order (sub-tables included for the top level)."""
    return tuple(f.name for f in dataclasses.fields(SECTIONS[section]) if f.name not in _NOT_KEYS)


def home_of(key: str, not_in: str) -> str | None:
    """The section (other than ``not_in``) that has ``key``, e.g. 'eval' for max_train."""
    for section in SECTIONS:
        if section != not_in and key in section_keys(section):
            return section
    return None


def normalise_section(prefix: str) -> str:
    """``replay.events[2]`` -> ``replay.events``; ``grid.conditions`` stays as it is."""
    return prefix.split("[")[0]
