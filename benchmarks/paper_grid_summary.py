"""Headline numbers of a paper-grid results store (reads only the SQLite store).

    python benchmarks/paper_grid_summary.py runs/paper-grid/results.sqlite \
        [runs/paper-grid-ordinary/results.sqlite] [--backbone early]

Either path may instead be a folder of ``benchmarks/grid_accuracy.py`` JSONs (the grid's
accuracy cells without the latency measurement), e.g. ``benchmarks/grid_accuracy/paper-grid``.

With a second store (``benchmarks/paper_grid_ordinary.toml``: the same grid, checkpoints
trained with ``subnet = false``) it also prints the paper's protocol: SentryGate on its
prunability-trained checkpoint vs the baselines on the ordinary one, paired per cell and
seed.

Prints Markdown: mean accuracy per method by sparsity and by condition kind, and
SentryGate's margin over the strongest zero-shot baseline (the baseline with the highest
mean accuracy in that scope) overall, with all sensors, and under modality dropout, beside
the paper's +12.7 / +18 points; plus the gap to the best fine-tuned baseline.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports.margins import BASELINES_ZERO_SHOT, margin_vs_strongest, paired_margin  # noqa: E402
from reports.protocol import WITHIN_POINTS, full_model_table, paper_protocol_cells  # noqa: E402
from reports.render import markdown_table  # noqa: E402
from reports.tables import ok_static  # noqa: E402

ZERO_SHOT = BASELINES_ZERO_SHOT
ACCURACY_CELL = ["dataset", "backbone", "attention", "method", "sparsity", "condition"]
DEPLOYMENT = ["target", "runtime", "power_mode"]


class SummaryInputError(Exception):
    """A path or filter the summary cannot use; ``cli`` prints it as one line, exit 2."""


def load(path: str) -> pd.DataFrame:
    """A results store, or a folder of ``benchmarks/grid_accuracy.py`` JSONs (accuracy
    cells only: no latency, no fine-tuned cells)."""
    if not Path(path).exists():
        raise SummaryInputError(
            f"{path} does not exist: give a results store or a grid_accuracy folder"
        )
    if Path(path).is_dir():
        from benchmarks.grid_accuracy import load_records

        df = pd.DataFrame(load_records(Path(path)))
        if df.empty:
            raise SummaryInputError(f"{path} holds no grid_accuracy JSONs")
        return _scoped(ok_static(df))
    try:
        # closing(): a connection used as a context manager ends its transaction, not itself
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            df = pd.read_sql_query(
                "SELECT dataset, backbone, attention, method, sparsity, condition, seed, accuracy,"
                " n_eval, params, gflops, latency_ms_p50, target, runtime, power_mode, status,"
                " kind, definition_json FROM cells"
                " WHERE status = 'ok' AND kind = 'static'",
                db,
            )
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise SummaryInputError(f"{path} is not a results store ({exc})") from None
    return _scoped(ok_static(df))  # accuracy stays the store's fraction; accuracy_pct in points


def _scoped(df: pd.DataFrame) -> pd.DataFrame:
    df["scope"] = df["condition"].map(lambda c: "all sensors" if c == "all" else "dropout")
    return df


def margin(df: pd.DataFrame) -> tuple[str, str, str, float]:
    """(strongest zero-shot baseline, SentryGate minus it with its interval, best
    fine-tuned, it minus SentryGate): ``reports.margins``, the report's own definition."""
    pruned = df[df["sparsity"] > 0]
    m = margin_vs_strongest(pruned, baselines=ZERO_SHOT)
    means = pruned.groupby("method")["accuracy_pct"].mean()
    ft = [x for x in means.index if x.endswith("+ft")]
    best_ft = max(ft, key=lambda x: means[x]) if ft else ""
    ft_gap = float("nan")
    if ft:
        g = paired_margin(pruned, best_ft)
        ft_gap = -g.points if g is not None else ft_gap
    if m is None:
        return "n/a", "n/a", best_ft, ft_gap
    return m.baseline, f"{m.points:+.1f} {m.interval_text()} ({m.basis})", best_ft, ft_gap


def paper_protocol(df: pd.DataFrame, ordinary: pd.DataFrame, where: str) -> None:
    """SentryGate from ``df`` against the zero-shot baselines of ``ordinary``."""
    mixed = paper_protocol_cells(df, ordinary, where)
    pruned = mixed[mixed["sparsity"] > 0]
    print("\nPaper protocol: SentryGate on its checkpoint vs the baselines on ordinary "
          "(`subnet = false`) checkpoints of the same grid:\n")  # fmt: skip
    print("| scope | SentryGate | strongest baseline (ordinary ckpt) | margin (points, 95% "
          "interval) | relative (% of the baseline) | paper |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    paper = {"overall": "+12.7", "all sensors": "", "dropout": "+18"}
    for scope, sub in [("overall", pruned), *pruned.groupby("scope")]:
        m = margin_vs_strongest(sub, baselines=ZERO_SHOT)
        if m is None:
            print(f"| {scope} | n/a | n/a | n/a | n/a | {paper[scope]} |")
            continue
        sg = sub[sub["method"] == "sentrygate"]["accuracy_pct"].mean()
        base = sub[sub["method"] == m.baseline]["accuracy_pct"].mean()
        print(f"| {scope} | {sg:.1f} | {m.baseline} | {m.points:+.1f} {m.interval_text()} "
              f"({m.basis}) | {100 * m.points / base:+.1f}% | {paper[scope]} |")  # fmt: skip


def full_model_cost(df: pd.DataFrame, ordinary: pd.DataFrame) -> None:
    """The unpruned model, prunability-trained minus ordinary (``reports.protocol``)."""
    table = full_model_table(df, ordinary)
    print("\nThe full model: prunability-trained checkpoint minus the ordinary one (unpruned, "
          "paired by backbone and seed):\n")  # fmt: skip
    print(markdown_table(table))
    n = int(table[f"within_{WITHIN_POINTS:g}"].sum()) if not table.empty else 0
    print(f"\n{n} of {len(table)} dataset × condition means within {WITHIN_POINTS:g} points.")


def main(path: str, ordinary_path: str | None = None, backbone: str | None = None) -> None:
    df = _filtered(load(path), backbone)
    pruned = df[df["sparsity"] > 0]
    only = f" (backbone {backbone})" if backbone else ""
    print(f"{len(df)} cells from `{path}`{only}\n")
    print("| scope | cells × seeds per method | SentryGate | strongest zero-shot baseline | margin (points, 95% interval) "
          "| paper | best fine-tuned | fine-tuned minus SentryGate |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    paper = {"overall": "+12.7", "all sensors": "", "dropout": "+18"}
    for scope, sub in [("overall", pruned), *pruned.groupby("scope")]:
        best, m, best_ft, ft_gap = margin(sub)
        sg_rows = sub[sub["method"] == "sentrygate"]  # accuracy does not depend on the runtime
        n = len(sg_rows.drop_duplicates([*ACCURACY_CELL, "seed"]))
        sg = sub[sub["method"] == "sentrygate"]["accuracy_pct"].mean()
        gap = "n/a" if ft_gap != ft_gap else f"{ft_gap:+.1f}"  # nan: no fine-tuned cells
        print(f"| {scope} | {n} | {sg:.1f} | {best} | {m} | {paper[scope]} "
              f"| {best_ft or 'n/a'} | {gap} |")  # fmt: skip
    same_checkpoint_by_dataset(pruned)
    where_it_loses(pruned)
    order = ["dense", *ZERO_SHOT, "sentrygate"] + sorted(
        m for m in df["method"].unique() if m.endswith("+ft")
    )
    for by in ("sparsity", "scope", "dataset"):
        table = df.pivot_table(index="method", columns=by, values="accuracy_pct", aggfunc="mean")
        table.columns = [str(c) for c in table.columns]
        table = table.reindex([m for m in order if m in table.index])
        print(f"\nMean accuracy (%) by method and {by}:\n")
        print(markdown_table(table.round(1).reset_index()))
    if "latency_ms_p50" in df:  # a store (grid_accuracy JSONs measure no latency)
        variants_vs_dense(df, pruned)
    if ordinary_path:
        ordinary = _filtered(load(ordinary_path), backbone)
        paper_protocol(df, ordinary, ordinary_path)
        full_model_cost(df, ordinary)


def same_checkpoint_by_dataset(pruned: pd.DataFrame, min_sparsity: float = 0.5) -> None:
    """Issue 10's bar: per dataset, SentryGate − the strongest zero-shot baseline at
    sparsity ≥ ``min_sparsity``, every method pruning the same checkpoints."""
    print(f"\nSame checkpoint, sparsity ≥ {min_sparsity:g}, per dataset:\n")
    print("| dataset | strongest zero-shot baseline | margin (points, 95% interval) | "
          "interval above 0 |")  # fmt: skip
    print("|---|---|---|---|")
    for dataset, sub in pruned[pruned["sparsity"] >= min_sparsity - 1e-9].groupby("dataset"):
        m = margin_vs_strongest(sub, baselines=ZERO_SHOT)
        if m is None:
            continue
        above = "n/a" if m.lo is None else ("yes" if m.lo > 0 else "no")
        print(f"| {dataset} | {m.baseline} | {m.points:+.1f} {m.interval_text()} "
              f"({m.basis}) | {above} |")  # fmt: skip


def where_it_loses(pruned: pd.DataFrame) -> None:
    """SentryGate minus the best zero-shot baseline *of each* dataset × condition ×
    sparsity (means over seeds and backbones): a stricter bar than the strongest baseline
    on average, and the place to look for what the recipe still gets wrong."""
    means = pruned.groupby(["dataset", "condition", "sparsity", "method"])["accuracy_pct"].mean()
    table = means.unstack("method")
    present = [m for m in ZERO_SHOT if m in table.columns]
    if "sentrygate" not in table.columns or not present:
        return
    best = table[present].idxmax(axis=1)
    gap = table["sentrygate"] - table[present].max(axis=1)
    behind = gap[gap < 0].sort_values()
    print(f"\nSentryGate behind the best baseline of the cell (means over seeds and backbones): "
          f"{len(behind)} of {len(gap)} dataset × condition × sparsity cells:\n")  # fmt: skip
    if behind.empty:
        return
    rows = pd.DataFrame(
        {
            "points": behind.round(1),
            "best baseline": best[behind.index],
            "sentrygate_pct": table["sentrygate"][behind.index].round(1),
        }
    ).reset_index()
    print(markdown_table(rows))


def variants_vs_dense(df: pd.DataFrame, pruned: pd.DataFrame) -> None:
    """SentryGate's parameters, GFLOPs and p50 latency relative to the unpruned model."""
    same = ["dataset", "backbone", "attention", "condition", "seed", *DEPLOYMENT]
    rel = pruned.merge(
        df[df["method"] == "dense"][[*same, "params", "gflops", "latency_ms_p50"]],
        on=same,
        suffixes=("", "_dense"),
    )  # the unpruned model of the same checkpoint, measured on the same deployment
    rel = rel[rel["method"] == "sentrygate"]
    agg = rel.groupby("sparsity").apply(
        lambda g: pd.Series(
            {
                "params vs dense": (g["params"] / g["params_dense"]).mean(),
                "GFLOPs vs dense": (g["gflops"] / g["gflops_dense"]).mean(),
                "p50 speedup (median)": (g["latency_ms_p50_dense"] / g["latency_ms_p50"]).median(),
            }
        ),
        include_groups=False,
    )
    where = ", ".join(sorted({f"{r.target}/{r.runtime}/{r.power_mode}" for r in df.itertuples()}))
    print(f"\nSentryGate variants vs the unpruned model, same cell ({where}):\n")
    print(markdown_table(agg.round(3).reset_index()))


def _filtered(df: pd.DataFrame, backbone: str | None) -> pd.DataFrame:
    if backbone is None:
        return df
    kept = df[df["backbone"] == backbone]
    if kept.empty:
        have = ", ".join(sorted(df["backbone"].unique()))
        raise SummaryInputError(f"no cells with backbone {backbone!r} (have: {have})")
    return kept


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default="runs/paper-grid/results.sqlite")
    ap.add_argument("ordinary", nargs="?", default=None, help="the ordinary checkpoints' grid")
    ap.add_argument("--backbone", default=None, help="summarise one backbone (e.g. early)")
    args = ap.parse_args(argv)
    try:
        main(args.path, args.ordinary, args.backbone)
    except SummaryInputError as exc:
        print(f"paper_grid_summary: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
