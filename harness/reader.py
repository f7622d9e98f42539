"""Typed, strict reading of one TOML table: every key checked, unknown keys rejected.

A ``Section`` pops the keys it reads; ``done()`` then reports anything left over as an
unknown key with the nearest valid one, which is how a typo like ``min_duraton_s`` gets
caught instead of silently falling back to a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sentryfuse.errors import ProfileError, unknown_name

_MISSING = object()


def fail(*, file: str, key: str, problem: str) -> NoReturn:
    raise ProfileError(f"{file}: {key}: {problem}")


def check_name(file: str, key: str, value: str, valid: Iterable[str], kind: str) -> None:
    valid = tuple(valid)
    if value not in valid:
        fail(file=file, key=key, problem=unknown_name(kind, value, valid))


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class Section:
    """One table of the profile, read key by key."""

    def __init__(
        self, file: str, prefix: str, raw: Any, allowed: Sequence[str] = (), present: bool = True
    ) -> None:
        if not isinstance(raw, dict):
            fail(
                file=file, key=prefix or "<top>", problem=f"expected a table, got {_type_name(raw)}"
            )
        self.file, self.prefix, self.present = file, prefix, present
        self._raw = dict(raw)
        self._allowed = tuple(allowed)
        self._known: list[str] = []  # every key asked for: the hint list for typos

    def key(self, k: str) -> str:
        return f"{self.prefix}.{k}" if self.prefix else k

    def unread(self) -> list[str]:
        """Keys not read yet (for tables keyed by user names, e.g. model input names)."""
        return list(self._raw)

    def _take(self, k: str, default: Any) -> Any:
        self._known.append(k)
        if k in self._raw:
            return self._raw.pop(k)
        if default is _MISSING:
            close = difflib.get_close_matches(k, list(self._raw), n=1, cutoff=0.7)
            hint = f" (found '{close[0]}': did you mean '{k}'?)" if close else ""
            fail(file=self.file, key=self.key(k), problem=f"missing; this key is required{hint}")
        return default

    def _typed(self, k: str, value: Any, types: tuple[type, ...], what: str) -> Any:
        if isinstance(value, bool) and bool not in types:
            fail(file=self.file, key=self.key(k), problem=f"expected {what}, got a boolean")
        if not isinstance(value, types):
            fail(
                file=self.file, key=self.key(k), problem=f"expected {what}, got {_type_name(value)}"
            )
        return value

    def str(self, k: str, default: Any = _MISSING) -> Any:
        v = self._take(k, default)
        return v if v is None or v is default else self._typed(k, v, (str,), "a string")

    def bool(self, k: str, default: Any = _MISSING) -> Any:
        v = self._take(k, default)
        return v if v is default else self._typed(k, v, (bool,), "true or false")

    def int(self, k: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        v = self._take(k, default)
        if v is default:
            return v
        self._typed(k, v, (int,), "an integer")
        if minimum is not None and v < minimum:
            fail(file=self.file, key=self.key(k), problem=f"{v} is below the minimum {minimum}")
        return v

    def float(self, k: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        v = self._take(k, default)
        if v is default:
            return v
        v = float(self._typed(k, v, (int, float), "a number"))
        if minimum is not None and v < minimum:
            fail(file=self.file, key=self.key(k), problem=f"{v} is below the minimum {minimum}")
        return v

    def choice(self, k: str, valid: Sequence[str], default: Any = _MISSING) -> Any:
        v = self.str(k, default)
        if v is not default:
            check_name(self.file, self.key(k), v, valid, k.rstrip("s"))
        return v

    def _list(self, k: str, default: Any, types: tuple[type, ...], what: str) -> Any:
        v = self._take(k, default)
        if v is default:
            return v
        self._typed(k, v, (list,), f"a list of {what}s")
        if not v:
            fail(
                file=self.file,
                key=self.key(k),
                problem=f"empty; list at least one {what} (an empty grid runs nothing)",
            )
        for i, item in enumerate(v):
            if isinstance(item, bool) or not isinstance(item, types):
                fail(
                    file=self.file,
                    key=f"{self.key(k)}[{i}]",
                    problem=f"expected {what}, got {_type_name(item)}",
                )
        return tuple(v)

    def strs(self, k: str, default: Any = _MISSING) -> Any:
        return self._list(k, default, (str,), "string")

    def ints(self, k: str, default: Any = _MISSING) -> Any:
        return self._list(k, default, (int,), "integer")

    def floats(self, k: str, default: Any = _MISSING) -> Any:
        v = self._list(k, default, (int, float), "number")
        return v if v is default else tuple(float(x) for x in v)

    def names(
        self,
        k: str,
        valid: Sequence[str],
        *,
        kind: str,
        allow_path: bool = False,
        default: Any = _MISSING,
    ) -> tuple[str, ...]:
        """A non-empty list of registry names (or existing ``.npz`` paths if allowed)."""
        values = self.strs(k, default)
        for i, v in enumerate(values):
            if allow_path and v.endswith(".npz"):
                if not Path(v).is_file():
                    fail(
                        file=self.file,
                        key=f"{self.key(k)}[{i}]",
                        problem=f"file '{v}' not found (paths are relative to the working directory)",
                    )
                continue
            check_name(self.file, f"{self.key(k)}[{i}]", v, valid, kind)
        if len(set(values)) != len(values):
            fail(file=self.file, key=self.key(k), problem="lists a name twice; list each once")
        return values

    def per_name(
        self,
        k: str,
        names: Sequence[str],
        *,
        kind: str,
        item: Callable[[str, str], None] | None,
        default: tuple[str, ...] | None = None,
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """A list applied to every name, or a table ``{name: [..]}`` covering every name."""
        self._known.append(k)
        raw = self._raw.get(k, _MISSING)
        if raw is _MISSING and default is not None:
            return tuple((n, default) for n in names)
        if isinstance(raw, dict):
            self._raw.pop(k)
            sub = Section(self.file, self.key(k), raw)
            out = []
            for n in names:
                if n not in raw:
                    fail(
                        file=self.file,
                        key=sub.key(n),
                        problem=f"missing; every {kind} in the grid needs an entry",
                    )
                out.append((n, sub.strs(n)))
            sub._allowed = tuple(names)
            sub.done()
        else:
            values = self.strs(k)
            out = [(n, values) for n in names]
        if item is not None:
            for n, values in out:
                for i, v in enumerate(values):
                    item(
                        f"{self.key(k)}[{i}]"
                        if not isinstance(raw, dict)
                        else f"{self.key(k)}.{n}[{i}]",
                        v,
                    )
        return tuple(out)

    def section(self, k: str, *, required: bool = False) -> Section:
        raw = self._take(k, _MISSING if required else None)
        return Section(
            self.file, self.key(k), raw if raw is not None else {}, present=raw is not None
        )

    def tables(self, k: str) -> list[Section]:
        v = self._take(k, _MISSING)
        if not isinstance(v, list) or not v:
            fail(
                file=self.file,
                key=self.key(k),
                problem="expected a non-empty array of tables ([[...]] entries)",
            )
        return [Section(self.file, f"{self.key(k)}[{i}]", t) for i, t in enumerate(v)]

    def float_table(self) -> tuple[tuple[str, float], ...]:
        """Every key of this table maps to a number (e.g. power mode -> sparsity)."""
        if not self._raw:
            fail(
                file=self.file, key=self.prefix, problem="empty; map at least one name to a number"
            )
        out = tuple((k, self.float(k)) for k in list(self._raw))
        return out

    def done(self) -> None:
        """Reject leftover keys, naming the nearest valid key."""
        from harness.profile_keys import SECTIONS, home_of, normalise_section

        for k in self._raw:
            valid = self._allowed_keys()
            section = normalise_section(self.prefix)
            home = home_of(k, section) if section in SECTIONS else None
            close = difflib.get_close_matches(k, valid, n=1)
            if home is not None:
                hint = f" ('{k}' belongs in {'the top level' if not home else f'[{home}]'})"
            elif close:
                hint = f" (did you mean '{close[0]}'?)"
            else:
                hint = ""
            where = "top-level key" if not self.prefix else "key"
            fail(file=self.file, key=self.key(k),
                 problem=f"unknown {where}{hint}; valid: {', '.join(valid)}")  # fmt: skip

    def _allowed_keys(self) -> Sequence[str]:
        return self._allowed or tuple(dict.fromkeys(self._known))
