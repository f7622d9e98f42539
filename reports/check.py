"""The release regression gate: candidate run vs baseline run, cell by cell.

A latency change counts only when it exceeds its threshold *and* the Mann–Whitney test on
the raw samples says it is not noise (asv's rule): thresholds alone flag noisy p99s, a
test alone flags 0.3% shifts that nobody cares about. Accuracy, energy and memory have no
per-sample data in the store and are judged by their thresholds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.render import markdown_table
from reports.stats import bootstrap_percentile_test, mann_whitney_u
from reports.store import StoreData
from reports.thresholds import Thresholds
from sentryfuse.errors import StoreError

# Fields of a cell definition that describe the run rather than the cell.
RUN_SPECIFIC_KEYS = frozenset({
    "run_id", "profile_name", "profile_hash", "git_commit", "started_at", "finished_at",
    "checkpoint", "checkpoint_dir", "checkpoint_path", "checkpoint_hash", "workdir",
    "out_dir", "run_dir", "store",
})  # fmt: skip
LABEL_FIELDS = ("dataset", "backbone", "attention", "method", "sparsity", "condition",
                "target", "runtime", "power_mode", "seed")  # fmt: skip
# metric name -> (cells column, relative?, higher is better?)
METRIC_COLUMNS = {
    "latency_p50": ("latency_ms_p50", True, False),
    "latency_p99": ("latency_ms_p99", True, False),
    "energy_per_inference": ("energy_mj_per_inference", True, False),
    "accuracy": ("accuracy", False, True),
    "peak_memory": ("peak_memory_mb", True, False),
}


@dataclass(frozen=True)
class Finding:
    """One metric of one cell that moved beyond its threshold."""

    cell: str
    metric: str
    baseline: float | str
    candidate: float | str
    change: str
    threshold: str
    p_value: float | None
    regression: bool


@dataclass
class CheckResult:
    """Every finding plus what could not be compared; ``exit_code`` 0 pass, 1 fail."""

    matched: int
    findings: list[Finding] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.regression]

    @property
    def improvements(self) -> list[Finding]:
        return [f for f in self.findings if not f.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def match_key(definition_json: str) -> str:
    """The cell definition without run-specific fields, canonicalised."""
    try:
        definition = json.loads(definition_json)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a cell has an unreadable definition_json ({exc})") from exc
    if not isinstance(definition, dict):
        raise StoreError("a cell's definition_json is not a JSON object")
    kept = {k: v for k, v in definition.items() if k not in RUN_SPECIFIC_KEYS}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def cell_label(row: pd.Series) -> str:
    """Human name of a cell: dataset/backbone/attention/method/s=…/condition/where."""
    parts = [str(row["dataset"]), str(row["backbone"]), str(row["attention"]),
             str(row["method"]), f"s={float(row['sparsity']):.2f}", str(row["condition"]),
             f"{row['target']}/{row['runtime']}/{row['power_mode']}", f"seed {row['seed']}"]  # fmt: skip
    if row.get("kind") == "replay":
        parts.insert(0, "replay")
    return " · ".join(parts)


def _unfinished(store: StoreData) -> bool:
    """No finished cell, or a run that never reached its end (killed or interrupted)."""
    ok = store.cells["status"] == "ok" if "status" in store.cells else []
    return (
        not len(store.cells) or not bool(ok.any()) or bool(store.runs["finished_at"].isna().any())
    )


def _keyed(store: StoreData) -> pd.DataFrame:
    cells = store.cells.merge(store.runs[["run_id", "fingerprint_hash"]], on="run_id", how="left")
    cells["match_key"] = cells["definition_json"].map(match_key)
    # A store holds one row per definition; if a rerun duplicated one, keep the latest.
    return cells.sort_values("finished_at").drop_duplicates("match_key", keep="last")


def _fmt(v: float, metric: str) -> str:
    return f"{v * 100:.2f}%" if metric == "accuracy" else f"{v:.4g}"


def _compare_metric(metric: str, b: pd.Series, c: pd.Series, label: str, th: Thresholds,
                    samples: tuple[np.ndarray, np.ndarray]) -> Finding | None:  # fmt: skip
    column, relative, higher_better = METRIC_COLUMNS[metric]
    vb, vc = b[column], c[column]
    if vb is None or vc is None or pd.isna(vb) or pd.isna(vc):
        return None
    limit = getattr(th, metric)
    if relative:
        if vb <= 0:
            return None
        change = (vc - vb) / vb * 100.0
        change_s, limit_s = f"{change:+.1f}%", f"±{limit:g}%"
    else:
        change = (vc - vb) * 100.0  # fraction -> points
        change_s, limit_s = f"{change:+.2f} points", f"±{limit:g} points"
    worse = -change if higher_better else change
    if abs(change) <= limit:
        return None
    p_value = None
    if metric.startswith("latency"):
        sb, sc = samples
        if len(sb) and len(sc):
            if metric == "latency_p50":  # the bulk moved: rank test
                test = mann_whitney_u(sc, sb)
                p_value, slower = test.p_value, test.prob_a_greater > 0.5
            else:  # the tail moved: bootstrap of the p99 itself
                shift = bootstrap_percentile_test(sc, sb, 99.0)
                p_value, slower = shift.p_value, shift.diff > 0
            same_direction = slower == (worse > 0)
            if p_value >= th.alpha or not same_direction:
                return None  # beyond the threshold but not distinguishable from noise
        else:
            limit_s += " (no raw samples: threshold only)"
    return Finding(label, metric, _fmt(vb, metric), _fmt(vc, metric), change_s, limit_s,
                   p_value, regression=worse > 0)  # fmt: skip


def compare_stores(baseline: StoreData, candidate: StoreData, thresholds: Thresholds,
                   *, allow_different_device: bool = False) -> CheckResult:  # fmt: skip
    """Compare matching cells of two stores; raise ``StoreError`` when they are unusable."""
    base, cand = _keyed(baseline), _keyed(candidate)
    pairs = base.merge(cand, on="match_key", suffixes=("_b", "_c"))
    if pairs.empty:
        unfinished = [str(s.path) for s in (baseline, candidate) if _unfinished(s)]
        if unfinished:
            raise StoreError(
                f"no cell of '{candidate.path}' matches a cell of '{baseline.path}': "
                f"{' and '.join(unfinished)} {'is' if len(unfinished) == 1 else 'are'} "
                "unfinished (no finished cell, or the run was interrupted); finish with "
                "`sentryfuse run PROFILE --out RUN_DIR --resume`"
            )
        raise StoreError(
            f"no cell of '{candidate.path}' matches a cell of '{baseline.path}'; "
            "compare runs of the same profile"
        )
    mismatched = pairs[pairs["fingerprint_hash_b"] != pairs["fingerprint_hash_c"]]
    result = CheckResult(matched=len(pairs))
    if not mismatched.empty:
        fb, fc = mismatched.iloc[0][["fingerprint_hash_b", "fingerprint_hash_c"]]
        if not allow_different_device:
            raise StoreError(
                f"baseline and candidate ran on different devices (fingerprint {fb} vs {fc}, "
                f"{len(mismatched)} cells); rerun on the same device or pass "
                "--allow-different-device"
            )
        result.notes.append(
            f"{len(mismatched)} cell(s) compared across different device fingerprints "
            f"({fb} vs {fc}) because --allow-different-device was given."
        )
    result.only_baseline = [
        cell_label(r) for _, r in base[~base["match_key"].isin(cand["match_key"])].iterrows()
    ]
    result.only_candidate = [
        cell_label(r) for _, r in cand[~cand["match_key"].isin(base["match_key"])].iterrows()
    ]
    for _, row in pairs.iterrows():
        b = pd.Series({k[:-2]: v for k, v in row.items() if k.endswith("_b")})
        c = pd.Series({k[:-2]: v for k, v in row.items() if k.endswith("_c")})
        label = cell_label(b)
        if b["status"] == "ok" and c["status"] != "ok":
            result.findings.append(Finding(label, "status", "ok", str(c["status"]),
                                           str(c.get("error") or "failed"), "must stay ok",
                                           None, True))  # fmt: skip
            continue
        if b["status"] != "ok" or c["status"] != "ok":
            continue
        samples = (baseline.samples_for(b["cell_key"]).to_numpy(),
                   candidate.samples_for(c["cell_key"]).to_numpy())  # fmt: skip
        for metric in METRIC_COLUMNS:
            if metric == "energy_per_inference" and b["energy_source"] != c["energy_source"]:
                result.notes.append(f"{label}: energy not compared ({b['energy_source']} vs "
                                    f"{c['energy_source']}).")  # fmt: skip
                continue
            finding = _compare_metric(metric, b, c, label, thresholds, samples)
            if finding is not None:
                result.findings.append(finding)
    return result


def _findings_table(findings: list[Finding]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "cell": f.cell,
                "metric": f.metric,
                "baseline": f.baseline,
                "candidate": f.candidate,
                "change": f.change,
                "threshold": f.threshold,
                "p-value": "—" if f.p_value is None else f"{f.p_value:.2g}",
            }
            for f in findings
        ]  # fmt: skip
    )


def render_check(result: CheckResult, baseline: StoreData, candidate: StoreData,
                 thresholds: Thresholds) -> str:  # fmt: skip
    """The Markdown the command prints."""
    verdict = "FAIL" if result.exit_code else "PASS"
    lines = [
        f"## sentryfuse check: {verdict} — {len(result.regressions)} regression(s), "
        f"{len(result.improvements)} improvement(s) in {result.matched} matched cell(s)",
        "",
        f"- baseline: `{baseline.path}`",
        f"- candidate: `{candidate.path}`",
        f"- thresholds: {thresholds.describe()}",
        "",
    ]
    for title, items in (("Regressions", result.regressions),
                         ("Improvements", result.improvements)):  # fmt: skip
        lines.append(f"### {title}\n")
        lines.append(markdown_table(_findings_table(items)) if items else "_none_\n")
    if result.only_baseline or result.only_candidate:
        lines.append(f"Not compared: {len(result.only_baseline)} cell(s) only in the baseline, "
                     f"{len(result.only_candidate)} only in the candidate.\n")  # fmt: skip
    lines.extend(f"- note: {n}" for n in result.notes)
    return "\n".join(lines).rstrip() + "\n"


__all__ = ["CheckResult", "Finding", "compare_stores", "render_check", "match_key"]
