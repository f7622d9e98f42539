"""Results by device: which device (fingerprint) measured each cell, for fleet runs.

A fleet run's cells ran on many devices; each cell's ``extra_json.device`` holds the
node's own fingerprint and its hash (written by the fleet driver). A single-machine
run's cells all ran on the run's device (``runs.fingerprint_hash``). Two devices with
the same fingerprint hash (same board, drivers, library versions) are the same device
for comparisons: a cell measured on orin-nano-01 in the baseline and on orin-nano-02 in
the candidate is compared; one that moved to a different kind of board is not.

``device_view(store)`` is the step ``check`` applies before its own decision logic: it
gives every cell a run of its own device's fingerprint, so the existing rule "matched
cells must share a fingerprint" becomes "device by device". It reads only the store.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from reports.store import StoreData


def _device(extra_json: object) -> dict:
    try:
        extra = json.loads(extra_json) if isinstance(extra_json, str) else {}
    except ValueError:
        return {}
    device = extra.get("device") if isinstance(extra, dict) else None
    return device if isinstance(device, dict) else {}


def cell_devices(store: StoreData) -> pd.DataFrame:
    """``cell_key, run_id, device_id, device_fingerprint_hash`` for every cell."""
    run_fp = dict(zip(store.runs["run_id"], store.runs["fingerprint_hash"], strict=True))
    extra = store.cells["extra_json"] if "extra_json" in store.cells else [None] * len(store.cells)
    rows = []
    for key, run_id, ex in zip(store.cells["cell_key"], store.cells["run_id"], extra, strict=True):
        d = _device(ex)
        rows.append({
            "cell_key": key,
            "run_id": run_id,
            "device_id": d.get("device_id", "(this run's device)"),
            "device_fingerprint_hash": d.get("fingerprint_hash") or run_fp.get(run_id),
        })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["cell_key", "run_id", "device_id", "device_fingerprint_hash"]
    )


def is_fleet(store: StoreData) -> bool:
    return bool((cell_devices(store)["device_id"] != "(this run's device)").any())


def device_view(store: StoreData) -> StoreData:
    """The store with each cell under a run carrying its device's fingerprint hash
    (run ``<run_id>@<hash[:12]>``); unchanged for a single-machine store."""
    if not is_fleet(store):
        return store
    devices = cell_devices(store)
    cells = store.cells.copy()
    fp = devices["device_fingerprint_hash"].fillna("").astype(str)
    cells["run_id"] = devices["run_id"].astype(str) + "@" + fp.str[:12]
    runs = []
    for (run_id, h), _ in devices.groupby(["run_id", "device_fingerprint_hash"], dropna=False):
        row = store.runs[store.runs["run_id"] == run_id].iloc[0].to_dict()
        row.update(run_id=f"{run_id}@{str(h)[:12]}", fingerprint_hash=h)
        runs.append(row)
    return dataclasses.replace(store, cells=cells, runs=pd.DataFrame(runs))


def device_table(store: StoreData) -> pd.DataFrame:
    """One row per device fingerprint: target, devices, cells ok / failed, median p50."""
    devices = cell_devices(store)
    cells = store.cells.merge(devices[["cell_key", "device_id", "device_fingerprint_hash"]],
                              on="cell_key")  # fmt: skip
    rows = []
    for h, g in cells.groupby("device_fingerprint_hash", dropna=False):
        ok = g[g["status"] == "ok"]
        rows.append({
            "device fingerprint": str(h)[:12],
            "targets": ", ".join(sorted(set(g["target"]))),
            "devices": ", ".join(sorted(set(g["device_id"]))),
            "cells ok": len(ok),
            "cells failed": len(g) - len(ok),
            "median latency p50 (ms)": float(ok["latency_ms_p50"].median()) if len(ok) else None,
        })  # fmt: skip
    return pd.DataFrame(rows)


def device_notes(baseline: StoreData, candidate: StoreData) -> list[str]:
    """What a fleet-vs-fleet check compared, device fingerprint by device fingerprint."""
    if not (is_fleet(baseline) or is_fleet(candidate)):
        return []
    b, c = cell_devices(baseline), cell_devices(candidate)
    notes = []
    for h in sorted(set(b["device_fingerprint_hash"]) | set(c["device_fingerprint_hash"])):
        nb = int((b["device_fingerprint_hash"] == h).sum())
        nc = int((c["device_fingerprint_hash"] == h).sum())
        ids = sorted(set(b.loc[b["device_fingerprint_hash"] == h, "device_id"])
                     | set(c.loc[c["device_fingerprint_hash"] == h, "device_id"]))  # fmt: skip
        notes.append(f"device {str(h)[:12]} ({', '.join(ids)}): {nb} baseline / {nc} "
                     "candidate cells, compared with cells of the same device fingerprint only")  # fmt: skip
    return notes
