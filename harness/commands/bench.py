"""``sentryfuse bench MODEL.onnx``: benchmark any ONNX file, trtexec-like, into a store.

Input shapes come from the model (a symbolic batch takes ``--batch``; other dynamic
dimensions take ``--shape NAME=DIMS``). The command builds a one-model profile and runs
it through the same suite, results store and report as ``sentryfuse run``, one cell
per power mode, then prints a trtexec-style summary. Exit codes as ``run``: 0 ok,
1 a cell failed (stored with its error), 2 bad input (nothing written).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

from harness.registry import CURRENT_MODE
from sentryfuse.errors import HarnessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="an ONNX file")
    parser.add_argument("--target", default="cpu", help="cpu | cuda | jetson (default cpu)")
    parser.add_argument(
        "--runtime",
        default=None,
        help="onnxruntime (cpu, cuda, jetson) or tensorrt (cuda, jetson); default: "
        "onnxruntime on cpu; on a GPU tensorrt where installed, else onnxruntime",
    )
    parser.add_argument(
        "--power-mode",
        action="append",
        dest="power_modes",
        metavar="M",
        help="a power mode of the target (repeat for a sweep; default: leave it as it is)",
    )
    parser.add_argument("--batch", type=int, default=1, help="batch for a symbolic batch axis")
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME=DIMS",
        help="fix an input's shape, e.g. tokens=1x128 (repeat per input)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: runs/bench-<model>")
    parser.add_argument("--name", default=None, help="the model's name in the store")
    parser.add_argument("--warmup-s", type=float, default=0.2, help="warm-up seconds (0.2)")
    parser.add_argument(
        "--duration-s", type=float, default=1.0, help="minimum seconds per trial window (1)"
    )
    parser.add_argument(
        "--min-count", type=int, default=100, help="minimum queries per trial (100)"
    )
    parser.add_argument(
        "--trials", type=int, default=5, help="independent timed windows per power mode (5)"
    )
    parser.add_argument("--resume", action="store_true", help="continue an existing --out")


def bench_raw_profile(args: argparse.Namespace) -> dict[str, Any]:
    """The TOML-equivalent profile the flags describe (validated like any profile)."""
    from targets.onnx_file import ONNX_FILE_RUNTIMES

    target = args.target
    if target not in ONNX_FILE_RUNTIMES:
        from sentryfuse.errors import TargetError, unknown_name

        raise TargetError(unknown_name("target", target, tuple(ONNX_FILE_RUNTIMES)))
    runtime = args.runtime or _default_runtime(target)
    if runtime not in ONNX_FILE_RUNTIMES[target]:
        raise HarnessError(
            f"unknown runtime '{runtime}' for an ONNX file on target '{target}'; "
            f"valid: {', '.join(ONNX_FILE_RUNTIMES[target])}"
        )
    if args.batch < 1:
        raise HarnessError(f"--batch {args.batch}: give a batch of at least 1")
    shapes = {}
    from harness.usermodel import parse_dims

    for item in args.shape:
        name, sep, dims = item.partition("=")
        try:
            if not sep or not name:
                raise ValueError(item)
            shapes[name] = list(parse_dims(dims))
        except ValueError:
            raise HarnessError(
                f"--shape '{item}': write NAME=DIMS with positive dims, e.g. tokens=1x128"
            ) from None
    name = args.name or args.model.stem
    return {
        "name": f"bench-{name}",
        "description": f"sentryfuse bench {args.model.name} on {target}/{runtime}",
        "models": [
            {"name": name, "path": str(args.model.resolve()), "batch": args.batch, "shapes": shapes}
        ],
        "grid": {
            "targets": [target],
            "runtimes": [runtime],
            "power_modes": list(args.power_modes or [CURRENT_MODE]),
        },
        "measure": {
            "warmup_s": args.warmup_s,
            "min_duration_s": args.duration_s,
            "min_count": args.min_count,
            "trials": args.trials,
            "batch_size": args.batch,
        },
    }


def run(args: argparse.Namespace) -> int:
    from harness import registry
    from harness.profile import parse_profile
    from harness.suite import run_suite, write_report_or_warn
    from harness.usermodel import model_spec

    if not args.model.is_file():
        raise HarnessError(f"{args.model}: file not found (give the path to an .onnx file)")
    raw = bench_raw_profile(args)
    spec = raw["models"][0]
    shapes = {k: tuple(v) for k, v in spec["shapes"].items()}
    model_spec(spec["name"], args.model, args.batch, shapes)  # one-line errors, flag-worded
    _check_power_modes(args.target, raw["grid"]["power_modes"], registry.default_target_factory)
    profile = parse_profile(raw, "command line", target_factory=registry.default_target_factory)
    out_dir = args.out or Path("runs") / profile.name
    summary = run_suite(profile, out_dir, resume=args.resume)
    print_summary(summary.store_path)
    for label, error in summary.failures:
        print(f"  failed: {label}: {error}")
    write_report_or_warn(summary.store_path, out_dir / "report")
    print(f"store {summary.store_path}")
    return 1 if summary.failed else 0


def _default_runtime(target_name: str) -> str:
    """The fastest ONNX-file runtime installed on the target (TensorRT, else ONNX
    Runtime's CUDA provider on a GPU), as ``targets.preference`` ranks them."""
    from harness import registry
    from targets.onnx_file import ONNX_FILE_RUNTIMES

    choices = ONNX_FILE_RUNTIMES[target_name]
    target = registry.default_target_factory(target_name)
    if target is None or not target.availability().ok:
        return choices[0]  # the preflight says why the target cannot run here
    avail = target.runtime_availability()
    return next((r for r in choices if r not in avail or avail[r].ok), choices[0])


def _check_power_modes(target_name: str, modes: list[str], factory: Any) -> None:
    from sentryfuse.errors import PowerModeError, unknown_name

    target = factory(target_name)
    if target is None or not target.availability().ok:
        return  # the suite's preflight says why the target cannot run here
    power = target.power_modes()
    valid = [CURRENT_MODE]
    if power.available().ok:
        valid = [m.name for m in power.list()] + valid
    for mode in modes:
        if mode not in valid:
            raise PowerModeError(unknown_name(f"{target_name} power mode", mode, valid))


def print_summary(store_path: Path) -> None:
    """trtexec-style lines per power mode: latency percentiles, throughput, H2D/compute/D2H."""
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT backbone, target, runtime, power_mode, status, latency_ms_p50, "
            "latency_ms_p90, latency_ms_p99, latency_ms_mean, latency_cv, latency_n, "
            "energy_mj_per_inference, energy_source, extra_json, latency_ms_p50_ci_lo, "
            "latency_ms_p50_ci_hi, trials, unstable_reason FROM cells "
            "WHERE kind = 'model' ORDER BY rowid"
        ).fetchall()
    finally:
        db.close()
    for row in rows:
        name, target, runtime, mode, status, p50, p90, p99, mean, cv, n, mj, src, extra = row[:14]
        lo, hi, trials, unstable = row[14:]
        head = f"{name} {target}/{runtime}/{mode}:"
        if status != "ok":
            print(f"{head} failed")
            continue
        x = json.loads(extra or "{}")
        ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        line = (
            f"{head} latency p50 {p50:.3f} ms{ci}, p90 {p90:.3f}, p99 {p99:.3f}, mean {mean:.3f} "
            f"(n={n}, {trials} trials); throughput {x.get('throughput_per_s') or 0:.1f}/s"
        )
        if mj is not None:
            line += f"; energy {mj:.3f} mJ/query ({src})"
        print(line)
        if unstable:
            print(f"    UNSTABLE: {unstable}")
        for kind, s in x.get("device_timings_ms", {}).items():
            print(
                f"    {kind.removesuffix('_ms')}: mean {s['mean']:.4f} ms, p50 {s['p50']:.4f}, "
                f"p99 {s['p99']:.4f} (n={s['n']})"
            )
