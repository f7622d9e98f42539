"""The ``sentryfuse`` command line.

Each subcommand lives in ``harness/commands/<name>.py`` with ``add_arguments(parser)``
and ``run(args) -> int``; they are imported lazily so ``sentryfuse --help`` never pulls
torch, TensorRT or the dataset packages. A ``SentryFuseError`` becomes one line on
stderr and exit code 2; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sentryfuse.errors import SentryFuseError

COMMANDS: dict[str, str] = {
    "train": "train a backbone with the modality-dropout curriculum and SentryGate scorer",
    "prune": "prune a checkpoint zero-shot (SentryGate or a baseline) into a smaller variant",
    "run": "run a benchmark profile into a resumable results store",
    "bench": "benchmark your own ONNX model (trtexec-like) across power modes into a store",
    "merge": "merge the stores of shards (`run --shard I/N`) into one store",
    "report": "write tables, Markdown and an HTML report from a results store",
    "check": "compare a candidate run against a baseline run (release regression gate)",
    "targets": "list targets, whether they are available here, runtimes, power modes, sensors",
    "datasets": "list datasets and whether their packages are installed",
    "profiles": "list the shipped benchmark profiles (run one by name: sentryfuse run NAME)",
    "eval": "print a checkpoint's or pruned variant's accuracy per modality condition",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (a broken or heavy module of
    another command never affects this one)."""
    parser = argparse.ArgumentParser(
        prog="sentryfuse",
        description="SentryFuse Bench: zero-shot modality-aware pruning, measured on the device.",
    )
    parser.add_argument("--version", action="version", version=f"sentryfuse {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=f"harness.commands.{name}")
        if name == command:
            importlib.import_module(f"harness.commands.{name}").add_arguments(p)
    return parser


def _version() -> str:
    from sentryfuse import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """The entry point; ``argv=None`` is the real command line (see ``_stop_now``)."""
    hard_exit = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except SentryFuseError as exc:
        print(f"sentryfuse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if not getattr(exc, "reported", False):
            print(f"sentryfuse {args.command}: interrupted", file=sys.stderr)
        code = int(getattr(exc, "exit_code", 130))
        if hard_exit:
            _stop_now(code)
        return code


def _stop_now(code: int) -> None:
    """Leave at once after an interrupt: everything that matters (power mode, store) is
    already put back, and tearing down torch's and ONNX Runtime's thread pools at
    interpreter exit can take seconds on a busy machine — longer than Ctrl-C should."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
