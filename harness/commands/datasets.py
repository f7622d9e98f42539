"""``sentryfuse datasets``: what datasets exist here, their modalities and sizes.

Shows, for every registered dataset (or the names / ``.npz`` paths given), whether its
package is installed (and the install command if not), its modalities as ``name(T x C)``,
classes and train/test sizes. Sizes come from the ``.npz`` cache; ``--build`` converts
the installed datasets that are not cached yet (seconds each). Pointing it at a
bring-your-own ``.npz`` validates that file with the same checks training uses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="dataset names or .npz paths (default: all)"
    )
    parser.add_argument("--build", action="store_true", help="build missing caches now")
    parser.add_argument("--cache-dir", type=Path, default=None, help="dataset cache directory")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _describe(ds) -> dict:
    return {
        "modalities": [f"{m.name}({m.steps}x{m.features})" for m in ds.modalities],
        "classes": len(ds.classes),
        "train": len(ds.train),
        "test": len(ds.test),
        "subjects": ds.train.subjects is not None,
    }


def _row(name: str, args: argparse.Namespace) -> dict:
    from sentryfuse.data import dataset_entry, load_dataset

    if name.endswith(".npz"):
        ds = load_dataset(name)  # raises a one-line DatasetError if malformed
        return {"name": name, "installed": True, "cached": None, **_describe(ds)}
    entry = dataset_entry(name)
    row: dict = {"name": name, "summary": entry.summary, "modalities": list(entry.modalities)}
    missing = entry.missing()
    row["installed"] = not missing
    if missing:
        row["install"] = "; ".join(dict.fromkeys(s.install for s in missing))
        return row
    cache = entry.cache_file(args.cache_dir)
    row["cached"] = None if cache is None else cache.is_file()
    if cache is None or cache.is_file() or args.build:
        row.update(_describe(load_dataset(name, cache_dir=args.cache_dir)))
        row["cached"] = None if cache is None else cache.is_file()
    if cache is not None:
        row["cache_file"] = str(cache)
    return row


def _format(rows: list[dict]) -> str:
    w = max([len("dataset"), *(len(r["name"]) for r in rows)]) + 2  # long .npz paths fit
    lines = [f"{'dataset':<{w}}{'installed':<11}{'train':>7}{'test':>7}{'classes':>9}  modalities"]
    hints = []
    for r in rows:
        sizes = (
            f"{r['train']:>7}{r['test']:>7}{r['classes']:>9}"
            if "train" in r
            else f"{'-':>7}{'-':>7}{'-':>9}"
        )
        lines.append(
            f"{r['name']:<{w}}{'yes' if r['installed'] else 'no':<11}{sizes}  "
            f"{', '.join(r['modalities'])}"
        )
        if not r["installed"]:
            hints.append(f"  {r['name']}: install with: {r['install']}")
        elif "train" not in r:
            hints.append(f"  {r['name']}: not cached yet; sizes appear after "
                         "`sentryfuse datasets --build` (or the first load)")  # fmt: skip
    return "\n".join(lines + ([""] + hints if hints else []))


def run(args: argparse.Namespace) -> int:
    from sentryfuse.data import dataset_names

    names = args.names or dataset_names()
    rows = [_row(n, args) for n in names]
    print(json.dumps(rows, indent=2) if args.json else _format(rows))
    return 0
