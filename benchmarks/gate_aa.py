"""Does the release gate cry wolf on this machine, and does it catch a real 10% slowdown?

    nice -n 5 python benchmarks/gate_aa.py --out ../i9-gate-runs/gate_aa [--pairs 20]

Four scenarios, each ``--pairs`` sequential pairs of runs of a small profile
(``benchmarks/gate_aa.toml``), each pair judged by ``sentryfuse check`` (the same CLI
code, in-process) with the default drift reference and with ``--reference none``:

- ``aa``: baseline and candidate are the same code: any exit 1 is a false alarm;
- ``planted``: the candidate's pruned variants are slowed by 10% (``benchmarks/planted.py``,
  through the suite's ``target_factory``): each pair should exit 1, never 0;
- ``aa-hog`` / ``planted-hog``: the same with a CPU hog spinning on one core for the
  whole pair (a subprocess that stops by itself at its deadline, and is stopped at exit).

The checkpoint is trained once (``OUT/build``) and every run reuses it through a fresh
``--out`` whose ``checkpoints/`` links to it, so a run costs only pruning, evaluation,
export and the measurement itself. Writes ``OUT/pairs.csv`` (one row per pair and
reference mode), ``OUT/summary.md``, and keeps every store and check output.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.planted import slow_target_factory  # noqa: E402
from harness import registry  # noqa: E402
from harness.cli import main as cli  # noqa: E402
from harness.profile import load_profile  # noqa: E402
from harness.suite import run_suite  # noqa: E402

PROFILE = ROOT / "benchmarks" / "gate_aa.toml"
SCENARIOS = ("aa", "planted", "aa-hog", "planted-hog")
MODES = ("auto", "none")
HOG = (
    "import os, sys, time\n"
    "os.sched_setaffinity(0, {int(sys.argv[1])})\n"
    "end = time.monotonic() + float(sys.argv[2])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)


@contextlib.contextmanager
def cpu_hog(enabled: bool, seconds: float):
    """Spin one core (the last allowed one) until the deadline or the block's end."""
    if not enabled:
        yield None
        return
    core = max(os.sched_getaffinity(0))
    proc = subprocess.Popen([sys.executable, "-c", HOG, str(core), str(seconds)])
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def one_run(profile: Path, out: Path, build: Path, factory) -> Path:  # noqa: ANN001
    """A fresh store in ``out``, reusing the trained checkpoints of ``build``."""
    out.mkdir(parents=True)
    (out / "checkpoints").symlink_to((build / "checkpoints").resolve())
    prof = load_profile(profile, target_factory=factory)
    summary = run_suite(prof, out, target_factory=factory, progress=False)
    shutil.rmtree(out / "work", ignore_errors=True)
    if summary.failed:
        raise SystemExit(f"{out}: {summary.failed} cell(s) failed: {summary.failures[0]}")
    return summary.store_path


def check(base: Path, cand: Path, mode: str, log: Path) -> int:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = cli(["check", "--baseline", str(base), "--candidate", str(cand),
                    "--reference", mode])  # fmt: skip
    log.write_text(buf.getvalue())
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--profile", type=Path, default=PROFILE)
    ap.add_argument("--slowdown", type=float, default=0.10)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument(
        "--pair-major",
        action="store_true",
        help="alternate the scenarios pair by pair instead of one after another",
    )
    ap.add_argument(
        "--summarise",
        action="store_true",
        help="only rebuild OUT/summary.md from OUT/pairs.csv and the check outputs",
    )
    args = ap.parse_args(argv)
    if args.summarise:
        with (args.out / "pairs.csv").open() as f:
            rows = [{**r, "exit": int(r["exit"]), "run_s": float(r["run_s"])}
                    for r in csv.DictReader(f)]  # fmt: skip
        summary = summarise(rows, args.out)
        (args.out / "summary.md").write_text(summary)
        print(summary)
        return 0
    scenarios = [s for s in args.scenarios.split(",") if s]
    build = args.out / "build"
    if not (build / "checkpoints").is_dir():
        shutil.rmtree(build, ignore_errors=True)
        t = time.perf_counter()
        run_suite(load_profile(args.profile), build, progress=False)
        print(f"[gate_aa] built artefacts in {time.perf_counter() - t:.0f}s", flush=True)
    # One discarded run first: the first execution in a process pays one-time costs
    # (lazy imports, allocator and thread-pool start-up) that no later run sees.
    shutil.rmtree(args.out / "warmup", ignore_errors=True)
    one_run(args.profile, args.out / "warmup", build, registry.default_target_factory)
    rows = []
    csv_path = args.out / "pairs.csv"
    fields = ["scenario", "pair", "reference", "exit", "run_s"]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        order = [(s, i) for s in scenarios for i in range(args.pairs)]
        if args.pair_major:  # scenario A pair 0, scenario B pair 0, ...: a cut run stays balanced
            order = [(s, i) for i in range(args.pairs) for s in scenarios]
        for scenario, pair in order:
            planted = scenario.startswith("planted")
            cand_factory = (slow_target_factory(args.slowdown) if planted
                            else registry.default_target_factory)  # fmt: skip
            d = args.out / scenario / f"{pair:02d}"
            shutil.rmtree(d, ignore_errors=True)
            t = time.perf_counter()
            with cpu_hog(scenario.endswith("hog"), seconds=600):
                a = one_run(args.profile, d / "A", build, registry.default_target_factory)
                b = one_run(args.profile, d / "B", build, cand_factory)
            run_s = (time.perf_counter() - t) / 2
            for mode in MODES:
                code = check(a, b, mode, d / f"check-{mode}.md")
                row = {"scenario": scenario, "pair": pair, "reference": mode,
                       "exit": code, "run_s": round(run_s, 1)}  # fmt: skip
                writer.writerow(row)
                rows.append(row)
            f.flush()
            print(f"[gate_aa] {scenario} {pair}: exit auto={rows[-2]['exit']} "
                  f"none={rows[-1]['exit']} ({run_s:.0f}s/run)", flush=True)  # fmt: skip
    summary = summarise(rows, args.out)
    (args.out / "summary.md").write_text(summary)
    print(summary)
    return 0


def _sentrygate_p50(check_md: Path) -> tuple[float, float] | None:
    """(change %, MDE %) of the SentryGate cell's latency p50 in one check output."""
    for line in check_md.read_text().splitlines():
        if "· sentrygate ·" in line and "| latency_p50 |" in line:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            change = float(cells[4].split("%")[0])
            mde = re.search(r"MDE \+([0-9.]+)%", cells[6])
            return change, float(mde.group(1)) if mde else float("nan")
    return None


def _quartiles(values: list[float]) -> str:
    v = np.asarray([x for x in values if x == x], dtype=float)
    if v.size == 0:
        return "—"
    q1, q2, q3 = np.percentile(v, [25, 50, 75])
    return f"{q2:+.1f} [{q1:+.1f}, {q3:+.1f}]"


def summarise(rows: list[dict], out: Path) -> str:
    """Exit counts per scenario and reference mode, with the SentryGate cell's p50 change
    and MDE (median [quartiles] over pairs, %)."""
    lines = ["| scenario | --reference | pairs | exit 0 pass | exit 1 regression | "
             "exit 3 inconclusive | other | SentryGate p50 change % | its MDE % | "
             "s per run |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for scenario in SCENARIOS:
        for mode in MODES:
            sel = [r for r in rows if r["scenario"] == scenario and r["reference"] == mode]
            if not sel:
                continue
            c = Counter(r["exit"] for r in sel)
            other = sum(v for k, v in c.items() if k not in (0, 1, 3))
            runs = sorted(r["run_s"] for r in sel)
            parsed = [_sentrygate_p50(out / scenario / f"{int(r['pair']):02d}" / f"check-{mode}.md")
                      for r in sel]  # fmt: skip
            parsed = [x for x in parsed if x is not None]
            lines.append(f"| {scenario} | {mode} | {len(sel)} | {c[0]} | {c[1]} | {c[3]} | "
                         f"{other} | {_quartiles([x[0] for x in parsed])} | "
                         f"{_quartiles([x[1] for x in parsed])} | "
                         f"{runs[len(runs) // 2]:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
