"""``check --interleave``: the gate on cells re-measured now, both sides in the same rounds.

The harness (``harness.remeasure``) re-measures each matched cell's baseline and
candidate variants alternately on this device and hands over per-round trial figures;
this module only judges and renders them (reports import nothing from the harness: the
cells arrive as plain objects with ``label``, ``baseline_p50_ms``, ``candidate_p50_ms``,
``baseline_energy_mj``, ``candidate_energy_mj`` and ``error``). Trial i of both sides ran
in round i, so the comparison is paired: a round's drift hits both sides alike, which is
why this mode needs no reference cell and can tell a uniform slowdown from drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from reports.check import CheckResult, Finding
from reports.check_render import RULE, VERDICT, _table
from reports.gate import IMPROVEMENT, INCONCLUSIVE, PASS, REGRESSION, decide_relative
from reports.thresholds import Thresholds


def _fmt(d: Any) -> str:
    if np.isnan(d.change):
        return "—"
    if np.isnan(d.lo):
        return f"{d.change * 100:+.1f}%"
    return f"{d.change * 100:+.1f}% [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}]"


def compare_remeasured(cells: Sequence[Any], thresholds: Thresholds) -> CheckResult:
    """Latency p50 and energy per inference of every re-measured pair, paired by round."""
    result = CheckResult(matched=len(cells))
    level = 1.0 - thresholds.alpha
    for cell in cells:
        if cell.error:
            result.findings.append(Finding(cell.label, "remeasure", INCONCLUSIVE, "—", "—", "—",
                                           "—", f"not re-measured: {cell.error}"))  # fmt: skip
            continue
        series = (("latency_p50", cell.baseline_p50_ms, cell.candidate_p50_ms),
                  ("energy_per_inference", cell.baseline_energy_mj, cell.candidate_energy_mj))  # fmt: skip
        for metric, b, c in series:
            b = np.array([np.nan if v is None else v for v in b], dtype=float)
            c = np.array([np.nan if v is None else v for v in c], dtype=float)
            if metric == "energy_per_inference" and not (
                np.isfinite(b).any() and np.isfinite(c).any()
            ):
                continue
            limit = getattr(thresholds, metric)
            d = decide_relative(b, c, limit / 100.0, level=level, paired=True)
            detail = d.reason or (f"MDE +{d.mde * 100:.1f}%" if d.mde is not None else "")
            result.findings.append(Finding(
                cell.label, metric, d.outcome, f"{np.nanmedian(b):.4g}", f"{np.nanmedian(c):.4g}",
                _fmt(d), f"+{limit:g}%", f"{detail}; re-measured now, paired by round"))  # fmt: skip
    result.notes.append("accuracy, p99 and peak memory are not re-measured: run `check` "
                        "without --interleave for them")  # fmt: skip
    return result


def render_remeasured(result: CheckResult, baseline: str, candidate: str,
                      thresholds: Thresholds, trials: int | None) -> str:  # fmt: skip
    code = result.exit_code
    counts = {o: len(result.of(o)) for o in (REGRESSION, INCONCLUSIVE, IMPROVEMENT, PASS)}
    lines = [
        f"## sentryfuse check --interleave: {VERDICT[code]} — {counts[REGRESSION]} "
        f"regression(s), {counts[INCONCLUSIVE]} inconclusive, {counts[IMPROVEMENT]} "
        f"improvement(s), {counts[PASS]} pass in {result.matched} re-measured cell(s)",
        "",
        f"- baseline artefacts: `{baseline}`; candidate artefacts: `{candidate}`",
        "- re-measured now on this device, alternately in rounds ("
        + ("the profile's trials" if trials is None else f"{trials} trials")
        + " per side)",
        f"- thresholds: latency p50 +{thresholds.latency_p50:g}%, energy/inference "
        f"+{thresholds.energy_per_inference:g}%",
        f"- rule: {RULE.format(level=1 - thresholds.alpha)}; intervals paired by round "
        "(signed rank) when there are ≥ 6 rounds",
        "",
    ]
    for title, outcome in (("Regressions", REGRESSION), ("Inconclusive", INCONCLUSIVE),
                           ("Improvements", IMPROVEMENT), ("Passed", PASS)):  # fmt: skip
        items = result.of(outcome)
        lines.append(f"### {title}\n")
        lines.append(_table(items) if items else "_none_\n")
    lines.extend(f"- note: {n}" for n in result.notes)
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["compare_remeasured", "render_remeasured"]
