"""The report's verdict section, accuracy over seeds and the one margin definition."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from reports.margins import margin_vs_strongest, paired_margin
from reports.render import html_table, markdown_table, md_escape
from reports.store import load_store
from reports.tables import accuracy_vs_sparsity
from reports.write import write_report

sys.path.insert(0, str(Path(__file__).parent / "data"))
from make_trial_stores import make_trial_store  # noqa: E402


def _acc(rows: list[tuple]) -> pd.DataFrame:
    cols = ["dataset", "backbone", "attention", "sparsity", "condition", "seed", "method",
            "accuracy_pct", "n_eval"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def test_margin_is_paired_over_seeds_against_the_strongest_baseline() -> None:
    rows = []
    for seed, (sg, fisher, magnitude) in enumerate([(80, 75, 60), (70, 68, 61), (78, 72, 59)]):
        for method, acc in (("sentrygate", sg), ("fisher", fisher), ("magnitude", magnitude)):
            rows.append(("hapt", "early", "dense", 0.5, "all", seed, method, acc, 1000))
    m = margin_vs_strongest(_acc(rows))
    assert m.baseline == "fisher" and m.n_seeds == 3 and m.basis == "3 seeds, paired t interval"
    assert m.points == pytest.approx((5 + 2 + 6) / 3)
    half = 4.303 * pd.Series([5.0, 2.0, 6.0]).std() / 3**0.5
    assert (m.lo, m.hi) == pytest.approx((m.points - half, m.points + half), rel=1e-3)
    assert paired_margin(_acc(rows), "magnitude").points == pytest.approx((20 + 9 + 19) / 3)


def test_one_seed_margin_uses_the_binomial_interval_and_says_so() -> None:
    rows = [("hapt", "early", "dense", 0.5, "all", 0, "sentrygate", 80.0, 1000),
            ("hapt", "early", "dense", 0.5, "all", 0, "fisher", 75.0, 1000)]  # fmt: skip
    m = margin_vs_strongest(_acc(rows))
    half = 1.96 * ((0.8 * 0.2 + 0.75 * 0.25) / 1000) ** 0.5 * 100
    assert m.basis == "1 seed, binomial interval"
    assert (m.lo, m.hi) == pytest.approx((5 - half, 5 + half), rel=1e-3)
    assert "1 seed" in m.text()


def test_accuracy_over_seeds_t_interval_and_wilson_for_one_seed(tmp_path: Path) -> None:
    three = load_store(make_trial_store(tmp_path / "a.sqlite", train_seeds=(0, 1, 2)))
    acc = accuracy_vs_sparsity(three.cells)
    assert set(acc["interval"]) == {"t over 3 seeds"} and (acc["n_seeds"] == 3).all()
    assert (acc["accuracy_lo"] < acc["accuracy_pct"]).all()
    one = accuracy_vs_sparsity(load_store(make_trial_store(tmp_path / "b.sqlite")).cells)
    assert set(one["interval"]) == {"Wilson, 1 seed"}


def test_report_leads_with_the_verdict_and_ends_with_raw_tables(tmp_path: Path) -> None:
    store = make_trial_store(tmp_path / "s.sqlite", train_seeds=(0, 1, 2), round_sigma=0.06)
    out = write_report(store, tmp_path / "report")
    md = (out / "summary.md").read_text()
    heads = [line for line in md.splitlines() if line.startswith("## ")]
    assert heads[0] == "## Verdict" and heads[-1] == "## Raw tables"
    assert heads.index("## Paper claims vs this run") == 1
    verdict = md.split("## Verdict")[1].split("## Paper claims")[0]
    assert "**hapt × early**" in verdict and "**hapt × late**" in verdict
    assert "SentryGate − strongest zero-shot baseline, all sensors" in verdict
    assert "3 seeds, paired t interval" in verdict
    assert "speedup vs dense (p50)" in verdict and "trials, exact interval" in verdict
    assert "energy estimated (cpu-power-model), power model: fixture constant 15 W" in verdict
    assert "⚠ unstable: trial spread" in verdict
    claims = md.split("## Paper claims vs this run")[1].split("\n## ")[0]
    assert "3 seeds, paired t interval" in claims and "× \\[" in claims  # latency interval
    html = (out / "report.html").read_text()
    assert '<span class="badge">⚠ unstable</span>' in html
    assert ".tablewrap{max-width:100%;overflow-x:auto}" in html
    assert html.count('<div class="tablewrap">') >= 3


def test_store_text_is_inert_in_markdown_and_html() -> None:
    evil = "[click](http://x) <b>`rm`</b> *bold* | _em_"
    text = md_escape(evil)
    assert "\\[click\\]" in text and "\\<b\\>" in text and "\\`" in text and "\\*bold\\*" in text
    assert "\\|" in text and "\\_em" in text
    md = markdown_table(pd.DataFrame({"cell": [evil]}))
    assert md.splitlines()[2].count(" | ") == 0  # the pipe no longer splits the cell
    assert "<b>" not in html_table(pd.DataFrame({"cell": [evil]}))
