"""``sentryfuse profiles``: the shipped benchmark profiles, by name, with their descriptions."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--paths", action="store_true", help="also print each file's path")


def run(args: argparse.Namespace) -> int:
    from harness.shipped import shipped_profiles

    profiles = shipped_profiles()
    width = max((len(p.name) for p in profiles), default=4) + 2
    print(f"{'profile':<{width}}description")
    for p in profiles:
        print(f"{p.name:<{width}}{p.description}" + (f"  ({p.path})" if args.paths else ""))
    print("\nrun one with: sentryfuse run NAME --out DIR   (reference: docs/profiles.md)")
    return 0
