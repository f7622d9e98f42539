"""``--shard I/N``: this machine's share of a suite, for labs that only have cron.

A cell belongs to the shard of its *cell group* (``harness.cellgroup.group_key``: same
checkpoint, target, runtime and power mode): ``int(sha256(group key), 16) % N + 1``. The
cells of a group are the ones a suite compares with each other (methods, sparsities and
conditions of one model on one device configuration) and measures interleaved in trials,
so that drift cancels between them; sharding by cell hash would scatter a group over
machines and turn every comparison into a comparison between boards. It is also what the
Ray fleet does (a unit is a group). The price is coarser balance: a suite of few groups
splits unevenly (shards are as many as its groups at most). The split still depends only
on the cells' content, so every machine computes the same one without talking to the
others, and adding cells to a profile never moves an existing cell to another shard (its
finished result in that shard's store stays valid for ``--resume``). ``sentryfuse merge``
joins the shards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from harness.cells import Cell
from harness.profile_schema import canonical_json
from sentryfuse.errors import HarnessError


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → ``(2, 4)``; anything else is a one-line error."""
    i, sep, n = text.partition("/")
    if sep and i.isdigit() and n.isdigit() and 1 <= int(i) <= int(n):
        return int(i), int(n)
    raise HarnessError(f"--shard {text}: expected I/N with 1 <= I <= N (e.g. --shard 1/3)")


def shard_of(cell: Cell, n: int) -> int:
    from harness.cellgroup import group_key

    digest = hashlib.sha256(canonical_json(list(group_key(cell))).encode()).hexdigest()
    return int(digest, 16) % n + 1


def shard_filter(text: str) -> Callable[[list[Cell]], list[Cell]]:
    i, n = parse_shard(text)
    return lambda cells: [c for c in cells if shard_of(c, n) == i]
