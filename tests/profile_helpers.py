"""Shared test helper: the TOML text of a tiny benchmark profile.

Many tests run a real suite on a profile that trains and measures in seconds (synthetic
data, one tiny backbone, one sparsity, short measurements) and each file used to spell
the whole profile out again with a few keys changed. ``tiny_profile`` writes the common
base once, so a test states only what it changes. (benchmarks/ keeps its own profiles:
benchmarks do not import tests.)
"""

from __future__ import annotations

import json
import re
from typing import Any

TomlValue = str | int | float | bool | list[Any] | dict[str, Any]

BASE: dict[str, dict[str, TomlValue]] = {
    "grid": {
        "datasets": ["synthetic"],
        "backbones": ["early"],
        "attentions": ["sentryattend"],
        "methods": ["magnitude"],
        "sparsities": [0.5],
        "conditions": ["all"],
        "targets": ["cpu"],
        "runtimes": ["torch"],
        "power_modes": ["max"],
        "seeds": [0],
    },
    "train": {"epochs": 1, "size": "tiny", "scorer_final_steps": 2},
    "eval": {"max_train": 128, "max_test": 64, "calib_samples": 16},
    "measure": {"warmup_s": 0.0, "warmup_n": 2, "min_duration_s": 0.05, "min_count": 5},
}

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def tiny_profile(name: str, **overrides: TomlValue | None) -> str:
    """The TOML text of the tiny profile ``name``: ``BASE`` with ``overrides`` merged in.

    A dict updates the section of that name key by key (a section not in ``BASE``, such
    as ``replay`` or ``finetune``, is added); a key set to None in it is removed, and so
    is a whole section set to None. Any other value is a top-level key, e.g.
    ``dense_baseline=False``. Within a section a dict is written as an inline table
    (``policy``) and a list of dicts as an array of tables (``[[replay.events]]``).

        tiny_profile("p", grid={"methods": ["sentrygate"], "seeds": None}, eval=None)
    """
    top: dict[str, TomlValue] = {"name": name}
    sections = {title: dict(keys) for title, keys in BASE.items()}
    for key, value in overrides.items():
        if value is None:
            sections.pop(key, None)
            top.pop(key, None)
        elif isinstance(value, dict):
            section = sections.setdefault(key, {})
            section.update(value)
            sections[key] = {k: v for k, v in section.items() if v is not None}
        else:
            top[key] = value
    lines = [f"{_key(k)} = {_value(v)}" for k, v in top.items()]
    for title, section in sections.items():
        lines.append(f"[{_key(title)}]")
        arrays = {k: v for k, v in section.items() if _is_array_of_tables(v)}
        lines += [f"{_key(k)} = {_value(v)}" for k, v in section.items() if k not in arrays]
        for key, tables in arrays.items():
            for table in tables:
                lines.append(f"[[{_key(title)}.{_key(key)}]]")
                lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _is_array_of_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(value: object) -> str:
    """One TOML value, in the style the fixtures were written in (``[0.5]``, ``{ a = 1 }``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"no TOML form for {type(value).__name__}: {value!r}")
