"""Wall time of a profile's whole run, A against B, in interleaved pairs (A/A by default).

    python benchmarks/quickstart_wall.py --pairs 3                        # A/A: the noise floor
    python benchmarks/quickstart_wall.py --pairs 3 --a-train "subnet = false"   # recipe cost

Each pair runs ``sentryfuse run`` on A and on B back to back, alternating the order
(AB, BA, AB, ...) so drift on a shared machine hits both alike; the figure is each
pair's B / A − 1 and their median. A is the profile with ``--a-train`` lines added to its
``[train]`` table (none: A is B, an A/A). Everything is fresh each run (a new output
folder, so training is included), which is what a user's first run costs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def with_train_lines(text: str, lines: list[str]) -> str:
    """``text`` with ``lines`` added at the top of its ``[train]`` table (or a new one)."""
    if not lines:
        return text
    out, done = [], False
    for line in text.splitlines():
        out.append(line)
        if not done and line.strip() == "[train]":
            out += lines
            done = True
    return "\n".join(out + ([] if done else ["[train]", *lines])) + "\n"


def timed_run(profile: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(profile), "--out", str(out)],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", type=Path, default=ROOT / "profiles" / "quickstart.toml")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--a-train", action="append", default=[], metavar="LINE",
                   help="a TOML line added to A's [train] (repeatable)")  # fmt: skip
    args = p.parse_args(argv)
    if args.pairs < 1 or not args.profile.is_file():
        print("error: --pairs must be ≥ 1 and --profile an existing file", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        b = args.profile
        a = Path(tmp) / f"a-{b.name}"
        a.write_text(with_train_lines(b.read_text(), args.a_train))
        label = "A/A" if not args.a_train else f"A = B + [train] {'; '.join(args.a_train)}"
        print(f"# {label}; {b}; {args.pairs} pairs; load {os.getloadavg()[0]:.2f}", flush=True)
        ratios = []
        for i in range(args.pairs):
            order = ("a", "b") if i % 2 == 0 else ("b", "a")
            wall = {k: timed_run(a if k == "a" else b, Path(tmp) / f"{k}{i}") for k in order}
            ratios.append(wall["b"] / wall["a"] - 1)
            print(f"pair {i + 1} ({''.join(order).upper()}): A {wall['a']:.1f} s, "
                  f"B {wall['b']:.1f} s, B/A − 1 = {ratios[-1]:+.1%}", flush=True)  # fmt: skip
        print(f"median B/A − 1 over {len(ratios)} pairs: {statistics.median(ratios):+.1%} "
              f"(range {min(ratios):+.1%} .. {max(ratios):+.1%}); load {os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
