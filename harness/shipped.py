"""The profiles shipped in ``profiles/``: listed by ``sentryfuse profiles``, and runnable
by name (``sentryfuse run quickstart``) as well as by path."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from sentryfuse.errors import ProfileError, unknown_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


@dataclass(frozen=True)
class ShippedProfile:
    name: str  # the file stem: what `sentryfuse run NAME` accepts
    description: str
    path: Path


def shipped_profiles(directory: Path = PROFILES_DIR) -> list[ShippedProfile]:
    """Every ``*.toml`` in ``directory``, by name (a file that does not parse still lists)."""
    out = []
    for path in sorted(directory.glob("*.toml")):
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
            description = str(raw.get("description", ""))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            description = "(does not parse; run `sentryfuse run --dry-run` on it for the error)"
        out.append(ShippedProfile(path.stem, description, path))
    return out


def resolve_profile(arg: str | Path, directory: Path = PROFILES_DIR) -> Path:
    """A path as given when it exists or looks like a path; else a shipped profile's name."""
    text = str(arg)
    path = Path(text)
    if path.exists() or "/" in text or text.endswith(".toml"):
        return path
    names = {p.name: p.path for p in shipped_profiles(directory)}
    if text in names:
        return names[text]
    raise ProfileError(
        unknown_name("profile", text, names)
        + "; or pass the path of a .toml file (`sentryfuse profiles` lists the shipped ones)"
    )
