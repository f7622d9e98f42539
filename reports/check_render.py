"""The Markdown that ``sentryfuse check`` prints: verdict first, then what it rests on."""

from __future__ import annotations

import pandas as pd

from reports.check import CheckResult, Finding
from reports.gate import IMPROVEMENT, INCONCLUSIVE, PASS, REGRESSION
from reports.render import markdown_table, md_escape
from reports.store import StoreData
from reports.thresholds import Thresholds

UNSTABLE_BADGE = "⚠ unstable"
VERDICT = {0: "PASS", 1: "REGRESSION", 3: "INCONCLUSIVE"}
RULE = (
    "regression = change beyond the threshold and its {level:.0%} interval above half the "
    "threshold (trial figures are the replicates); pass = interval below the threshold; "
    "otherwise inconclusive, with the smallest change this pair could have detected (MDE)"
)


def _table(findings: list[Finding]) -> str:
    rows = [
        {
            "cell": f.cell,
            "metric": f.metric,
            "baseline": f.baseline,
            "candidate": f.candidate,
            "change [95% CI]": f.change,
            "threshold": f.threshold,
            "detail": f.detail,
            "stability": f"{UNSTABLE_BADGE}: {f.unstable}" if f.unstable else "",
        }
        for f in findings
    ]
    return markdown_table(pd.DataFrame(rows), max_rows=200)


def _store_line(role: str, store: StoreData) -> str:
    trials = store.cells["trials"].dropna()
    n = f"{int(trials.min())}–{int(trials.max())}" if len(trials) else "0"
    if len(trials) and trials.min() == trials.max():
        n = str(int(trials.max()))
    return f"- {role}: `{md_escape(str(store.path))}` (schema v{store.user_version}, trials per cell: {n})"


def render_check(result: CheckResult, baseline: StoreData, candidate: StoreData,
                 thresholds: Thresholds, reference: str | None = "auto") -> str:  # fmt: skip
    """The Markdown the command prints (one line when no cell has enough trials)."""
    if result.too_few_trials:
        return f"sentryfuse check: {result.too_few_trials}\n"
    code = result.exit_code
    counts = {o: len(result.of(o)) for o in (REGRESSION, INCONCLUSIVE, IMPROVEMENT, PASS)}
    ref = (
        "unnormalised (--reference none)"
        if reference == "none"
        else "each trial ÷ the reference cell's trial of the same round "
        f"(--reference {md_escape(reference or 'auto')}; auto = the dense cell of the group)"
    )
    lines = [
        f"## sentryfuse check: {VERDICT[code]} — {counts[REGRESSION]} regression(s), "
        f"{counts[INCONCLUSIVE]} inconclusive, {counts[IMPROVEMENT]} improvement(s), "
        f"{counts[PASS]} pass in {result.matched} matched cell(s)",
        "",
        _store_line("baseline", baseline),
        _store_line("candidate", candidate),
        f"- thresholds: {thresholds.describe()}",
        f"- rule: {RULE.format(level=1 - thresholds.alpha)}",
        f"- drift: {ref}",
        "",
    ]
    for title, outcome in (("Regressions", REGRESSION), ("Inconclusive", INCONCLUSIVE),
                           ("Improvements", IMPROVEMENT)):  # fmt: skip
        items = result.of(outcome)
        lines.append(f"### {title}\n")
        lines.append(_table(items) if items else "_none_\n")
    unstable = sorted({f.cell for f in result.findings if f.unstable})
    if unstable:
        lines.append(f"### Unstable cells ({UNSTABLE_BADGE})\n")
        lines.extend(f"- {md_escape(c)}" for c in unstable)
        lines.append("")
    passed = result.of(PASS)
    if passed:
        per_metric = pd.Series([f.metric for f in passed]).value_counts().sort_index()
        counts_s = ", ".join(f"{m} {n}" for m, n in per_metric.items())
        lines.append(f"### Passed ({len(passed)}: {counts_s}); latency p50 shown\n")
        lines.append(_table([f for f in passed if f.metric == "latency_p50"]))
    if result.only_baseline or result.only_candidate:
        lines.append(f"Not compared: {len(result.only_baseline)} cell(s) only in the baseline, "
                     f"{len(result.only_candidate)} only in the candidate.\n")  # fmt: skip
    lines.extend(f"- note: {md_escape(n)}" for n in result.notes)
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["UNSTABLE_BADGE", "render_check"]
