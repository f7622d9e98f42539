"""Does a trial's CPU share show a starved runner? Alone vs beside busy processes.

The trial-spread check cannot see a runner whose core another process holds for the
whole window: its trials agree. ``harness.trials`` therefore reads the process's CPU time
per trial (``Measurement.cpu_share``: CPU s ÷ wall s) and marks a CPU cell unstable below
``MIN_CPU_SHARE`` per compute thread. This script measures that share for an early-fusion model at batch 1
on ONNX Runtime and torch, with 1 and 2 threads, first alone, then beside ``--load``
busy-looping processes at ``--load-nice`` priority (spawned here, stopped when the
windows end), and prints p50 latency and share per window.

    python benchmarks/cpu_share.py                   # alone, then beside 2 busy processes
    python benchmarks/cpu_share.py --load 4 --windows 5

``--replay`` measures the deployment replay's check instead (``harness.replay``: judged
per segment): the quickstart's replay (``profiles/quickstart.toml``) stretched to 5,000
queries per segment (``duration_s = 1500``, events at 0 / 500 / 1000 s), each replay
cell ``--windows`` times alone, then beside the busy processes; its checkpoint is
trained once, before the loaded pass, in a temporary OUT.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end: pass\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="small")
    p.add_argument("--windows", type=int, default=3, help="timed windows per setting")
    p.add_argument("--window-s", type=float, default=0.5)
    p.add_argument("--load", type=int, default=2, help="busy processes for the loaded pass")
    p.add_argument("--load-nice", type=int, default=0, help="their nice increment")
    p.add_argument("--replay", action="store_true", help="the replay's check (docstring)")
    return p.parse_args(argv)


_STRETCH = (("duration_s = 30.0", "duration_s = 1500.0"), ("t_s = 10.0", "t_s = 500.0"),
            ("t_s = 20.0", "t_s = 1000.0"))  # fmt: skip


def replay_setup(out: Path):
    """The stretched quickstart profile, its Artifacts and its replay cells (trained)."""
    from harness.artifacts import Artifacts
    from harness.cells import expand
    from harness.profile import load_profile

    text = (Path(__file__).resolve().parents[1] / "profiles" / "quickstart.toml").read_text()
    for old, new in _STRETCH:
        if old not in text:
            raise SystemExit(f"profiles/quickstart.toml has no '{old}' to stretch; update _STRETCH")
        text = text.replace(old, new)
    (out / "stretched.toml").write_text(text)
    profile = load_profile(out / "stretched.toml")
    art = Artifacts(profile, out)
    cells = [c for c in expand(profile) if c.kind == "replay"]
    for c in cells:
        art.checkpoint(c.dataset, c.backbone, c.attention, c.seed)
    return art, cells


def measure_replay(args: argparse.Namespace, label: str, setup) -> list[str]:
    import json

    from harness.replay import run_replay_cell
    from targets.cpu import CpuTarget

    art, cells = setup
    rows = []
    for cell in cells:
        for i in range(args.windows):
            cols, _, _ = run_replay_cell(cell, art, CpuTarget(), art.out_dir / f"w-{label}-{i}")
            e = json.loads(cols["extra_json"])
            shares = ", ".join(f"{x:.2f}" for x in e.get("cpu_share_segments", []))
            rows.append(
                f"| {label} | replay {cell.method} | per segment | {cols['latency_ms_p50']:.2f} "
                f"| {shares} | {int(bool(e.get('cpu_starved')))}/1 |"
            )
    return rows


def measure(args: argparse.Namespace, label: str) -> list[str]:
    import torch

    from harness.cellrun import prebuilt_batches
    from harness.measure import timed_window
    from harness.profile_schema import MeasureSettings
    from harness.trials import MIN_CPU_SHARE
    from sentryfuse.data import load_dataset
    from sentryfuse.models import build_model, model_config_for
    from targets.cpu import CpuTarget

    ds = load_dataset("synthetic", max_train=64, max_test=32, seed=0)
    torch.manual_seed(0)
    model = build_model(model_config_for(ds, "early", "dense", args.size)).eval()
    batches = prebuilt_batches(ds.test, list(ds.modality_names), 1)
    settings = MeasureSettings(min_duration_s=args.window_s, min_count=10, trials=1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sentryfuse-cpushare-") as tmp:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for runtime in ("onnxruntime", "torch"):
                runner = CpuTarget().export(model, batches[0], runtime, Path(tmp) / runtime)
                try:
                    for _ in range(20):
                        runner(batches[0])
                    ws = [
                        timed_window(runner, batches, settings, sync=lambda: None)
                        for _ in range(args.windows)
                    ]
                finally:
                    runner.close()
                shares = ", ".join(f"{w.cpu_share:.2f}" for w in ws)
                p50 = ", ".join(f"{w.stats.p(50):.2f}" for w in ws)
                flagged = sum(w.cpu_share / threads < MIN_CPU_SHARE for w in ws)
                rows.append(
                    f"| {label} | {runtime} | {threads} | {p50} | {shares} | {flagged}/{len(ws)} |"
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="sentryfuse-cpushare-replay-") if args.replay else None
    if tmp is not None:
        setup = replay_setup(Path(tmp.name))
        run = lambda label: measure_replay(args, label, setup)  # noqa: E731
    else:
        run = lambda label: measure(args, label)  # noqa: E731
    rows = run("alone")
    busy_s = 4 * args.windows * args.window_s * 3 + (600 if args.replay else 30)  # outlasts it
    load = [
        subprocess.Popen(
            [sys.executable, "-c", _BUSY.format(s=busy_s)],
            preexec_fn=(lambda: os.nice(args.load_nice)) if args.load_nice else None,
        )
        for _ in range(args.load)
    ]
    try:
        rows += run(f"beside {args.load} busy (nice +{args.load_nice})")
    finally:
        for proc in load:
            proc.kill()
            proc.wait()
        if tmp is not None:
            tmp.cleanup()
    print(
        "| setting | runtime | threads | p50 ms per window | CPU share per window | flagged (< 0.8 per thread) |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
