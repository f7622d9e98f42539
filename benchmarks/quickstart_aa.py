"""A/A of two runs of one profile: how much do per-cell figures move when nothing changed?

    python benchmarks/quickstart_aa.py RUN_A RUN_B

Matches the static 'ok' cells of the two stores by ``definition_json`` and prints, over
the matched cells, the median and max of |relative change| of p50 latency, mean latency
and energy per inference, and how many cells each run stored as unstable. Reads the
stores only (v1 or v2).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

import numpy as np

COLUMNS = ("latency_ms_p50", "latency_ms_mean", "energy_mj_per_inference")


def load(run: Path) -> dict[str, dict[str, float]]:
    db = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            f"SELECT definition_json, stable, {', '.join(COLUMNS)} FROM cells"
            " WHERE status='ok' AND kind='static'"
        ).fetchall()
    finally:
        db.close()
    return {r[0]: dict(zip(("stable", *COLUMNS), r[1:], strict=True)) for r in rows}


def changes(a: dict, b: dict) -> dict[str, np.ndarray]:
    keys = sorted(set(a) & set(b))
    out = {}
    for col in COLUMNS:
        pairs = [(a[k][col], b[k][col]) for k in keys if a[k][col] and b[k][col]]
        out[col] = np.array([abs(y / x - 1.0) for x, y in pairs])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_a", type=Path)
    p.add_argument("run_b", type=Path)
    args = p.parse_args(argv)
    a, b = load(args.run_a), load(args.run_b)
    matched = len(set(a) & set(b))
    if not matched:
        print("no matching static cells", file=sys.stderr)
        return 2
    print(
        f"{matched} matched cells; unstable: A {sum(1 for v in a.values() if not v['stable'])},"
        f" B {sum(1 for v in b.values() if not v['stable'])}"
    )
    for col, arr in changes(a, b).items():
        if arr.size:
            print(
                f"{col:26s} |change| median {np.median(arr) * 100:6.1f}%  "
                f"max {arr.max() * 100:7.1f}%  (n={arr.size})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
