"""Budgeted replays: per segment, the power mode's target, the sparsity SentryGate chose
from the measured latency model, and whether the segment met the target.

    python -m reports.budgets RUN_DIR      # a Markdown table on stdout
"""

from __future__ import annotations

import json
import sys

import pandas as pd

COLUMNS = ["method", "seq", "power_mode", "target", "chosen_sparsity", "predicted",
           "feasible", "miss_pct_after_settle", "met", "latency_model_cached"]  # fmt: skip


def budget_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per budgeted segment of every finished replay cell."""
    rows = []
    replays = cells[(cells["kind"] == "replay") & (cells["status"] == "ok")]
    for method, extra in replays[["method", "extra_json"]].itertuples(index=False):
        for seg in json.loads(extra or "{}").get("budgets", []):
            rows.append({"method": method, **{k: seg.get(k) for k in COLUMNS[1:]}})
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    from reports.store import load_store
    from sentryfuse.errors import SentryFuseError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m reports.budgets RUN_DIR_OR_STORE", file=sys.stderr)
        return 2
    try:
        table = budget_table(load_store(args[0]).cells)
    except SentryFuseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if table.empty:
        print("no budgeted replay segments in this store (profile has no [replay.budgets])")
        return 0
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in table.itertuples(index=False):
        cells = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in row]
        print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
