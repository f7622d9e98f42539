"""``sentryfuse targets``: each target, whether it is available here (and why not),
its runtimes, power modes and energy sensors.

``sentryfuse targets NAME`` checks one target and exits 2 with a one-line reason when it
is unavailable, so scripts can gate on it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from sentryfuse.errors import TargetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "name", nargs="?", help="check one target (exit 2 when it is unavailable here)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--fingerprint",
        action="store_true",
        help="also print each available target's device fingerprint",
    )
    parser.add_argument("--sysfs-root", type=Path, default=Path("/"), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from targets import TARGETS, describe_targets, target_with

    params = {"sysfs_root": args.sysfs_root} if args.sysfs_root != Path("/") else {}
    if args.name and args.name not in TARGETS:
        from sentryfuse.errors import unknown_name

        raise TargetError(unknown_name("target", args.name, TARGETS))
    infos = describe_targets(**params)
    if args.name:
        infos = [i for i in infos if i.name == args.name]
        if not infos[0].availability.ok:
            raise TargetError(
                f"target '{args.name}' is not available here: {infos[0].availability.reason}"
            )
    fingerprints = {}
    if args.fingerprint:
        for info in infos:
            if info.availability.ok:
                fingerprints[info.name] = target_with(info.name, params).fingerprint()
    if args.json:
        rows = [
            asdict(i) | ({"fingerprint": fingerprints[i.name]} if i.name in fingerprints else {})
            for i in infos
        ]
        print(json.dumps(rows, indent=2, default=str))
        return 0
    _print_table(infos)
    for name, fp in fingerprints.items():
        print(f"\n{name} fingerprint:")
        for key, value in fp.items():
            print(f"  {key}: {value}")
    return 0


def _print_table(infos: list) -> None:
    for info in infos:
        status = "available" if info.availability.ok else f"unavailable: {info.availability.reason}"
        print(f"{info.name:<7} {status}")
        if info.runtimes:
            print(f"  runtimes:    {', '.join(info.runtimes)}")
        if info.power_modes:
            print(f"  power modes: {', '.join(info.power_modes)}")
        if info.sensors:
            print(f"  sensors:     {', '.join(info.sensors)}")
