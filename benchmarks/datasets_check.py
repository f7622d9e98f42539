"""Sanity check of every dataset: sizes, load times and a quick linear probe.

Not a timed test and not the model benchmark: it shows that each dataset is real and
multimodal. For each dataset it fits a logistic regression on simple per-window
features (per channel: mean, std, min, max and the means of 4 time segments) using all
modalities, then again without each modality (fitted on the remaining ones), and
reports test accuracy.

    python benchmarks/datasets_check.py [--cache-dir DIR] [--datasets hapt avdigits ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sentryfuse.data import dataset_entry, dataset_names, load_dataset
from sentryfuse.data.base import Split


def features(split: Split, modalities: list[str]) -> np.ndarray:
    """Summary features of each modality's window, concatenated: ``(N, F)``."""
    out = []
    for m in modalities:
        x = split.x[m]  # (N, T, C)
        segs = np.array_split(x, min(4, x.shape[1]), axis=1)
        out += [x.mean(1), x.std(1), x.min(1), x.max(1)] + [s.mean(1) for s in segs]
    return np.concatenate(out, axis=1)


def probe(train: Split, test: Split, modalities: list[str]) -> float:
    scaler = StandardScaler().fit(features(train, modalities))
    clf = LogisticRegression(max_iter=2000, C=1.0)
    clf.fit(scaler.transform(features(train, modalities)), train.y)
    return float(clf.score(scaler.transform(features(test, modalities)), test.y))


def check(name: str, cache_dir: str) -> dict:
    entry = dataset_entry(name)
    if entry.missing():
        return {"dataset": name, "skipped": "; ".join(s.install for s in entry.missing())}
    t0 = time.perf_counter()
    ds = load_dataset(name, cache_dir=cache_dir)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = load_dataset(name, cache_dir=cache_dir)
    cached_s = time.perf_counter() - t0
    mods = list(ds.modality_names)
    row = {
        "dataset": name,
        "modalities": [f"{m.name}({m.steps}x{m.features})" for m in ds.modalities],
        "classes": ds.num_classes,
        "train": len(ds.train),
        "test": len(ds.test),
        "build_s": round(first_s, 2),
        "cached_load_s": round(cached_s, 3),
        "acc_all": round(probe(ds.train, ds.test, mods), 4),
    }
    if len(mods) > 1:
        for m in mods:
            row[f"acc_without_{m}"] = round(
                probe(ds.train, ds.test, [k for k in mods if k != m]), 4
            )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=dataset_names())
    parser.add_argument("--cache-dir", default=None, help="default: a fresh temp dir")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [check(n, args.cache_dir or tmp) for n in args.datasets]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| dataset | modalities | classes | train | test | build s | cached load s | "
          "probe acc (all) | without each modality |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['dataset']} | not installed: {r['skipped']} |||||||")
            continue
        without = ", ".join(
            f"{k[12:]}: {v:.3f}" for k, v in r.items() if k.startswith("acc_without_")
        )
        print(f"| {r['dataset']} | {' '.join(r['modalities'])} | {r['classes']} | {r['train']} | "
              f"{r['test']} | {r['build_s']} | {r['cached_load_s']} | {r['acc_all']:.3f} | {without} |")  # fmt: skip


if __name__ == "__main__":
    main()
