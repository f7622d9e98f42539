"""How each run's cells were judged: stable or not, and why, static and replay apart.

    python benchmarks/verdicts.py RUN [RUN ...]          # read existing OUT folders
    python benchmarks/verdicts.py --quickstart 3 --out /tmp/qs   # run the quickstart 3x first

A static cell is stable when its trials agree (``max_trial_spread``) and its runner held
the CPU; a replay cell when every segment's chunk medians agree to the same spread and
its CPU share held (``harness.replay_checks``). This prints, per run, how many of each
kind were stored stable, the reasons given for the rest, and each replay cell's
per-segment spreads, so the figures quoted in BENCHMARKS.md ("replay cells judged per
segment") can be rerun. Reads the stores read-only; ``--quickstart`` runs
``sentryfuse run profiles/quickstart.toml`` into ``OUT/run1..N`` (resumed if present).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(run: Path) -> list[dict]:
    db = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT kind, stable, unstable_reason, extra_json, definition_json FROM cells"
            " WHERE status='ok'"
        ).fetchall()
    finally:
        db.close()
    return [
        {
            "kind": k,
            "stable": bool(s),
            "reason": r,
            "extra": json.loads(e) if e else {},
            "cell": json.loads(d),
        }
        for k, s, r, e, d in rows
    ]


def _reason_kind(reason: str | None) -> str:
    """The reason's first clause (its figures vary run to run)."""
    if not reason:
        return "no reason stored"
    words = reason.split(" (")[0].split()
    return " ".join(w for w in words if not re.fullmatch(r"[<>=]+|[-+]?[\d.]+", w))


def summarise(name: str, cells: list[dict]) -> list[str]:
    out = []
    for kind in ("static", "replay"):
        sel = [c for c in cells if c["kind"] == kind]
        if not sel:
            continue
        ok = sum(c["stable"] for c in sel)
        why = Counter(_reason_kind(c["reason"]) for c in sel if not c["stable"])
        reasons = "; ".join(f"{n}× {k}" for k, n in why.most_common()) or "—"
        out.append(f"| {name} | {kind} | {ok}/{len(sel)} | {reasons} |")
    return out


def replay_detail(name: str, cells: list[dict]) -> list[str]:
    out = []
    for c in (c for c in cells if c["kind"] == "replay"):
        spreads = c["extra"].get("latency_spread_segments") or []
        shown = ", ".join("—" if s is None else f"{s:.3f}" for s in spreads)
        shares = ", ".join(f"{x:.2f}" for x in c["extra"].get("cpu_share_segments") or [])
        method = c["cell"].get("method", "?")
        verdict = "stable" if c["stable"] else f"unstable ({c['reason'] or 'no reason'})"
        out.append(f"| {name} | {method} | {shown} | {shares or '—'} | {verdict} |")
    return out


def run_quickstart(out: Path, n: int) -> list[Path]:
    runs = []
    for i in range(1, n + 1):
        run = out / f"run{i}"
        cmd = [sys.executable, "-m", "harness.cli", "run", str(ROOT / "profiles/quickstart.toml")]
        cmd += ["--out", str(run)] + (["--resume"] if run.exists() else [])
        t0 = time.perf_counter()
        print(f"[verdicts] quickstart {i}/{n} -> {run}", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"[verdicts] run {i}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="*", type=Path, help="OUT folders of finished runs")
    p.add_argument("--quickstart", type=int, default=0, help="run the quickstart N times first")
    p.add_argument("--out", type=Path, help="where --quickstart writes its runs")
    args = p.parse_args(argv)
    if args.quickstart and args.out is None:
        print("error: --quickstart needs --out DIR", file=sys.stderr)
        return 2
    runs = list(args.runs) + (run_quickstart(args.out, args.quickstart) if args.quickstart else [])
    missing = [r for r in runs if not (r / "results.sqlite").is_file()]
    if not runs or missing:
        what = missing[0] if missing else "none given"
        print(f"error: no results.sqlite in {what}; give finished OUT folders", file=sys.stderr)
        return 2
    loaded = {r.name: load(r) for r in runs}
    print("| run | kind | stable | reasons for the rest |")
    print("|---|---|---|---|")
    for name, cells in loaded.items():
        print("\n".join(summarise(name, cells)))
    print()
    print(
        "| run | replay method | per-segment spread (relative MAD of 5 chunk medians)"
        " | CPU share per thread, per segment | verdict |"
    )
    print("|---|---|---|---|---|")
    for name, cells in loaded.items():
        print("\n".join(replay_detail(name, cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
