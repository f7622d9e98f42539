"""Fleet benchmarks: (1) wall time of a 48-cell CPU suite, plain ``run`` vs ``--cluster
local:1`` vs ``--cluster local:2``; (2) the Ray agent's overhead on a cell's p50 (A/A).

(1) ``python benchmarks/fleet.py suite --repeats 3 --out DIR``: 48 tiny cells in 4 cell
groups of 12 (runtime x power mode), 2 trials of 0.1 s each. The checkpoint is trained
once and linked into every run directory, so each run times cells (prune, evaluate,
export, measure) plus its own start-up (process, Ray cluster, workers). The three modes
run interleaved, ``repeats`` times; the table quotes the median and the range.

(2) ``python benchmarks/fleet.py agent --rounds 6 --out DIR``: one cell's runner (the
tiny model, torch, batch 1) measured by the harness's trial loop in a fresh process,
(a) with no Ray on the machine, (b) with a local Ray node (GCS + raylet) idling beside
it, (c) inside a Ray worker on that node. Rounds alternate the order; per round the
ratios b/a and c/a of the median trial p50 are taken, and the table quotes their median
with a distribution-free interval over rounds (``harness.intervals.median_interval``).
(a) always runs next to a cluster's teardown (before this round's or after it), so the
script waits until the cluster's processes have exited before it.

The machine has 2 cores and is shared: figures are ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILE = """
name = "fleet-bench"
[grid]
datasets = ["synthetic"]
backbones = ["early"]
attentions = ["sentryattend"]
methods = ["magnitude", "random", "taylor"]
sparsities = [0.5]
conditions = ["all", "drop:a", "drop:b"]
targets = ["cpu"]
runtimes = ["torch", "onnxruntime"]
power_modes = ["max", "single"]
seeds = [0]
[train]
epochs = 1
size = "tiny"
scorer_final_steps = 4
[eval]
max_train = 256
max_test = 128
calib_samples = 32
[measure]
warmup_s = 0.02
warmup_n = 5
min_duration_s = MIN_DURATION
min_count = 20
trials = TRIALS
"""


def _write_profile(out: Path, min_duration_s: float = 0.1, trials: int = 2) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "fleet-bench.toml"
    text = PROFILE.replace("MIN_DURATION", str(min_duration_s)).replace("TRIALS", str(trials))
    path.write_text(text)
    return path


def _cli(*args: str, timeout_s: float = 1200) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", *args],
        env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"run {args} failed ({done.returncode}): {done.stderr[-1500:]}")
    return wall, done.stdout


def _train_once(profile_path: Path, seed_dir: Path) -> None:
    """The suite's one checkpoint, trained into ``seed_dir/checkpoints`` (reused after)."""
    from harness.artifacts import Artifacts
    from harness.profile import load_profile

    profile = load_profile(profile_path)
    Artifacts(profile, seed_dir).checkpoint("synthetic", "early", "sentryattend", 0)


def suite(out: Path, repeats: int, only: list[str] | None = None) -> None:
    profile = _write_profile(out)
    seed_dir = out / "seed"
    _train_once(profile, seed_dir)
    modes: dict[str, list[float]] = {m: [] for m in only or ["plain", "local:1", "local:2"]}
    order = list(modes)
    for r in range(repeats):
        for mode in order[r % len(order) :] + order[: r % len(order)]:  # rotate each repeat
            run_dir = out / f"r{r}-{mode.replace(':', '')}"
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
            for ck in (seed_dir / "checkpoints").iterdir():
                link = run_dir / "checkpoints" / ck.name
                if not link.exists():
                    os.symlink(ck.resolve(), link)
            extra = [] if mode == "plain" else ["--cluster", mode]
            wall, stdout = _cli(str(profile), "--out", str(run_dir), *extra)
            assert "48 cells: 48 ran ok" in stdout, stdout
            modes[mode].append(wall)
            print(f"repeat {r} {mode}: {wall:.1f} s", flush=True)
            with (out / "suite-runs.jsonl").open("a") as f:  # kept even if interrupted
                f.write(json.dumps({"repeat": r, "mode": mode, "wall_s": wall}) + "\n")
    _table(modes, out / "suite.json")


def _table(modes: dict[str, list[float]], path: Path) -> None:
    plain = statistics.median(modes["plain"]) if modes.get("plain") else float("nan")
    rows = ["| mode | wall s (median) | range | vs plain |", "|---|---|---|---|"]
    for mode, walls in modes.items():
        med = statistics.median(walls)
        rows.append(
            f"| {mode} | {med:.1f} | {min(walls):.1f}–{max(walls):.1f} | {med / plain:.2f}× |"
        )
    print("\n".join(rows))
    path.write_text(json.dumps(modes, indent=2))


# -- (2) agent overhead ---------------------------------------------------------------
def _measure_cell(ckpt_dir: str, trials: int, min_duration_s: float) -> list[float]:
    """Trial p50s (ms) of the tiny model's torch runner: the harness's own trial loop."""
    import torch

    from harness.cellrun import prebuilt_batches
    from harness.profile_schema import MeasureSettings
    from harness.trials import Subject, measure_trials
    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.data import load_dataset
    from targets.cpu import CpuTarget

    torch.set_num_threads(1)
    ckpt = load_checkpoint(Path(ckpt_dir))
    ds = load_dataset("synthetic", max_train=256, max_test=128, seed=0)
    names = [m.name for m in ckpt.config.modalities]
    batches = prebuilt_batches(ds.test, names, 1)
    target = CpuTarget()
    with tempfile.TemporaryDirectory() as work:
        runner = target.export(ckpt.model.eval(), batches[0], "torch", Path(work))
    settings = MeasureSettings(
        warmup_s=0.2, warmup_n=20, min_duration_s=min_duration_s, min_count=100, trials=trials
    )
    m = measure_trials(Subject(runner, batches, runner.synchronize), settings)
    return [t.latency_ms_p50 for t in m.trials]


def _plain_process(ckpt: str, trials: int, dur: float) -> list[float]:
    code = (
        "import json,sys; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks.fleet import _measure_cell;"
        "print(json.dumps(_measure_cell(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), ckpt, str(trials), str(dur)],
        capture_output=True, text=True, timeout=600, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _settle_after_shutdown(session_dir: str, timeout_s: float = 20.0) -> None:
    """Wait until the cluster's processes have exited (none has a file open in its
    session directory), then a second more: (a) must not run beside a dying raylet."""
    from harness.fleet import orphans

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and orphans.processes_in(session_dir):
        time.sleep(0.2)
    time.sleep(1.0)


def agent(out: Path, rounds: int, trials: int, dur: float) -> None:
    from harness.fleet.cluster import connect
    from harness.fleet.driver import UNIT_TASK_OPTIONS
    from harness.intervals import median_interval

    profile = _write_profile(out)
    seed_dir = out / "seed"
    _train_once(profile, seed_dir)
    ckpt = str(next((seed_dir / "checkpoints").iterdir()).resolve())
    ratios_b, ratios_c, raw = [], [], []
    for r in range(rounds):
        a_first = r % 2 == 0
        a = _plain_process(ckpt, trials, dur) if a_first else None
        with connect("local:1") as cluster:
            import ray

            time.sleep(2.0)  # let the node settle into its idle heartbeat
            b = _plain_process(ckpt, trials, dur)
            task = ray.remote(**UNIT_TASK_OPTIONS)(_measure_cell).options(
                resources={"sentryfuse/cpu": 1},
                runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
            )
            c = ray.get(task.remote(ckpt, trials, dur))
        _settle_after_shutdown(cluster.session_dir)
        if a is None:
            a = _plain_process(ckpt, trials, dur)
        med = [statistics.median(x) for x in (a, b, c)]
        ratios_b.append(med[1] / med[0])
        ratios_c.append(med[2] / med[0])
        raw.append({"no_agent": a, "agent_idle_beside": b, "inside_worker": c})
        print(f"round {r}: p50 ms a={med[0]:.4f} b={med[1]:.4f} c={med[2]:.4f}", flush=True)
        with (out / "agent-rounds.jsonl").open("a") as f:  # kept even if interrupted
            f.write(json.dumps({"round": r, "p50_ms": med, **raw[-1]}) + "\n")
    rows = [
        "| condition | p50 ratio vs no agent (median) | interval over rounds |",
        "|---|---|---|",
    ]
    for name, rs in (
        ("agent idle beside the cell", ratios_b),
        ("cell inside a Ray worker", ratios_c),
    ):
        iv = median_interval(rs)
        span = f"[{iv.lo:.3f}, {iv.hi:.3f}] ({iv.level:.0%})" if iv else "—"
        rows.append(f"| {name} | {statistics.median(rs):.3f} | {span} |")
    print("\n".join(rows))
    (out / "agent.json").write_text(
        json.dumps({"b_over_a": ratios_b, "c_over_a": ratios_c, "raw": raw}, indent=2)
    )


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("suite")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--modes", default="plain,local:1,local:2", help="comma-separated")
    a = sub.add_parser("agent")
    a.add_argument("--rounds", type=int, default=6)
    a.add_argument("--trials", type=int, default=5)
    a.add_argument("--trial-seconds", type=float, default=0.5)
    a.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    if args.what == "suite":
        suite(args.out, args.repeats, args.modes.split(","))
    else:
        agent(args.out, args.rounds, args.trials, args.trial_seconds)


if __name__ == "__main__":
    main()
