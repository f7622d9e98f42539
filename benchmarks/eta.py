"""How good is the run's ETA? Run a profile through the CLI and compare each ETA it prints
with the time that actually remained.

The CLI runs as a subprocess with stderr piped (not a terminal), so it prints one
progress line per cell, each with ``elapsed M:SS  ETA M:SS``, plus a ``trained`` line
after each checkpoint's training. Every line is timestamped as it arrives; the actual
remaining time at a line is the arrival of the last cell's line minus its own. Lines of
one group arrive together with one ETA, so they are shown as one row. Machine load
(``uptime``) is printed before and after: on a shared 2-core machine it moves the
figures more than anything else.

    python benchmarks/eta.py profiles/quickstart.toml
    python benchmarks/eta.py benchmarks/eta_two_groups.toml --out /tmp/eta-run  # keep it

Exit 0 when every ETA after the first phase (training or first group) with at least
``--min-remaining-s`` left is within 2x of what remained, else 1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CLOCK = r"(\d+):(\d{2})(?::(\d{2}))?"
_ETA = re.compile(rf"(?:ETA|first estimate) {_CLOCK}")
_CELL = re.compile(r"^\[(\d+)/(\d+)\]")


@dataclass(frozen=True)
class Point:
    """One progress line: what it says and when it arrived."""

    label: str
    arrived_s: float
    eta_s: float


def parse_clock(match: re.Match[str]) -> float:
    a, b, c = match.groups()
    return int(a) * 3600 + int(b) * 60 + int(c) if c is not None else int(a) * 60 + int(b)


def run_profile(profile: str, out_dir: Path) -> tuple[list[Point], float, int]:
    """Run ``sentryfuse run`` piped; (its progress points, the last cell's arrival, rc)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "harness.cli", "run", profile, "--out", str(out_dir)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)  # fmt: skip
    points: list[Point] = []
    last_cell_s = 0.0
    assert proc.stderr is not None
    for line in proc.stderr:
        now = time.monotonic() - t0
        print(f"{now:8.1f}  {line.rstrip()}", file=sys.stderr, flush=True)  # to watch it
        eta = _ETA.search(line)
        cell = _CELL.match(line)
        if cell:
            last_cell_s = now
        if eta is None:
            continue
        if cell:
            label = f"[{cell.group(1)}/{cell.group(2)}]"
        elif line.startswith("trained"):
            label = "trained"
        else:
            label = "start (rough)"
        points.append(Point(label, now, parse_clock(eta)))
    return points, last_cell_s, proc.wait()


def rows(points: list[Point], end_s: float) -> list[tuple[str, float, float, float]]:
    """(progress point, ETA said, actual remaining, elapsed): a group's lines in one row."""
    out: list[tuple[str, float, float, float]] = []
    for p in points:
        if out and abs(p.arrived_s - out[-1][3]) < 0.5 and p.eta_s == out[-1][1]:
            first = out[-1][0].split("/")[0].split("-")[0].strip("[")
            out[-1] = (f"[{first}-{p.label[1:]}", p.eta_s, end_s - p.arrived_s, p.arrived_s)
            continue
        out.append((p.label, p.eta_s, end_s - p.arrived_s, p.arrived_s))
    return out


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default: a temp one)")
    ap.add_argument("--min-remaining-s", type=float, default=5.0,
                    help="rows with less left than this are shown but not judged")  # fmt: skip
    args = ap.parse_args(argv)
    print(f"load before: {uptime()}")
    with tempfile.TemporaryDirectory(prefix="eta-") as tmp:
        out_dir = args.out.resolve() if args.out else Path(tmp) / "run"
        given = Path(args.profile)  # a path from here, or a shipped profile's name
        profile = str(given.resolve()) if given.exists() else args.profile
        points, end_s, rc = run_profile(profile, out_dir)
    print(f"load after:  {uptime()}")
    print(f"profile {args.profile}: exit {rc}, last cell after {end_s:.1f} s\n")
    print("| progress point | elapsed (s) | ETA said (s) | actual remaining (s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    bad = 0
    judged = False  # judge from the first phase's end on
    for label, eta_s, left_s, at_s in rows(points, end_s):
        ratio = eta_s / left_s if left_s > 0 else float("nan")
        mark = ""
        if judged and left_s >= args.min_remaining_s:
            mark = "" if 0.5 <= ratio <= 2.0 else " (out of 2x)"
            bad += bool(mark)
        print(f"| {label} | {at_s:.1f} | {eta_s:.0f} | {left_s:.1f} | {ratio:.2f}{mark} |")
        judged = judged or label != "start (rough)"
    print("\nevery judged ETA within 2x" if not bad else f"\n{bad} judged ETAs out of 2x")
    return 1 if bad or rc not in (0, 1) else 0


if __name__ == "__main__":
    sys.exit(main())
