"""``--shard I/N``: this machine's share of a suite, for labs that only have cron.

A cell belongs to shard ``int(key, 16) % N + 1``: it depends only on the cell's content
hash, so every machine computes the same split without talking to the others, and adding
cells to a profile never moves an existing cell to another shard (its finished result in
that shard's store stays valid for ``--resume``). ``sentryfuse merge`` joins the shards.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.cells import Cell
from sentryfuse.errors import HarnessError


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``; anything else is a one-line error."""
    i, sep, n = text.partition("/")
    if sep and i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n):
        return int(i), int(n)
    raise HarnessError(f"--shard {text}: expected I/N with 1 <= I <= N (e.g. --shard 1/3)")


def shard_of(cell: Cell, n: int) -> int:
    return int(cell.key, 16) % n + 1


def shard_filter(text: str) -> Callable[[list[Cell]], list[Cell]]:
    i, n = parse_shard(text)
    return lambda cells: [c for c in cells if shard_of(c, n) == i]
