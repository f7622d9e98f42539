"""The release regression gate: candidate run vs baseline run, cell by cell, on trials.

Each matched cell's latency (p50, p99) and energy per inference are judged on its trial
figures by ``reports.gate`` (pass / regression / inconclusive with the smallest
detectable change); accuracy on its training seeds; peak memory by its threshold (one
value per cell). Exit codes: 0 pass, 1 regression, 3 inconclusive; unusable input raises
``StoreError`` (the command line's exit 2).

**Drift cancellation.** Two runs made at different times on a shared machine differ by
machine-wide drift (other jobs, clocks, heat) that hits every cell alike. With a
reference cell (by default the dense model of the same dataset × backbone × attention ×
condition on the same target/runtime/power mode), each trial figure is divided by the
reference's figure *of the same round* of the same run — trials of a group are measured
interleaved in rounds, so the round's drift cancels. The reference cell itself is judged
unnormalised, and a slowdown there is *inconclusive*, never a regression: from two runs
alone, drift and a change that slows every cell alike look the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reports.gate import (
    IMPROVEMENT,
    INCONCLUSIVE,
    REGRESSION,
    Decision,
    decide_accuracy,
    decide_relative,
)
from reports.intervals import min_trials
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
GROUP_FIELDS = ("target", "runtime", "power_mode")  # cells interleaved in rounds together
# A trial's p99 from fewer samples is its maximum or next to it: one preemption by another
# process decides it, so its change between runs measures the machine's load, not the code.
P99_MIN_SAMPLES = 100
# metric -> (trials column, reference trials column it is divided by, cells column)
TRIAL_METRICS = {
    "latency_p50": ("latency_ms_p50", "latency_ms_p50", "latency_ms_p50"),
    "latency_p99": ("latency_ms_p99", "latency_ms_p99", "latency_ms_p99"),
    "energy_per_inference": ("energy_mj_per_inference", "energy_mj_per_inference",
                             "energy_mj_per_inference"),
}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One metric of one cell: its outcome and what it rests on."""

    cell: str
    metric: str
    outcome: str  # pass | regression | inconclusive | improvement
    baseline: str
    candidate: str
    change: str  # point and 95% interval
    threshold: str
    detail: str  # basis, MDE or the reason it is inconclusive
    unstable: str = ""  # "" or what made a run's cell unstable

    @property
    def regression(self) -> bool:
        return self.outcome == REGRESSION


@dataclass
class CheckResult:
    """Every finding plus what could not be compared; ``exit_code`` 0 / 1 / 3."""

    matched: int
    findings: list[Finding] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    too_few_trials: str | None = None  # the one line when no cell can be tested

    def of(self, outcome: str) -> list[Finding]:
        return [f for f in self.findings if f.outcome == outcome]

    @property
    def regressions(self) -> list[Finding]:
        return self.of(REGRESSION)

    @property
    def exit_code(self) -> int:
        if self.regressions:
            return 1
        if self.too_few_trials or self.of(INCONCLUSIVE):
            return 3
        return 0


def match_key(definition_json: str, drop: tuple[str, ...] = ()) -> str:
    """The cell definition without run-specific fields (and ``drop``), canonicalised."""
    try:
        definition = json.loads(definition_json)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a cell has an unreadable definition_json ({exc})") from exc
    if not isinstance(definition, dict):
        raise StoreError("a cell's definition_json is not a JSON object")
    kept = {k: v for k, v in definition.items() if k not in RUN_SPECIFIC_KEYS | set(drop)}
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
    cells["seed_group"] = cells["definition_json"].map(lambda d: match_key(d, ("seed",)))
    # A store holds one row per definition; if a rerun duplicated one, keep the latest.
    return cells.sort_values("finished_at").drop_duplicates("match_key", keep="last")


def parse_reference(spec: str | None) -> dict[str, str] | None:
    """``auto`` -> method=dense; ``none`` -> no normalisation; else ``field=value,...``."""
    if spec is None or spec == "auto":
        return {"method": "dense"}
    if spec == "none":
        return None
    out: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in LABEL_FIELDS or not value.strip():
            raise StoreError(
                f"--reference '{spec}': expected auto, none or FIELD=VALUE[,FIELD=VALUE] "
                f"with FIELD one of {', '.join(LABEL_FIELDS)}"
            )
        out[name] = value.strip()
    return out


def _matches(row: pd.Series, selector: dict[str, str]) -> bool:
    for name, value in selector.items():
        have = row[f"{name}_b"]
        if name == "sparsity" or name == "seed":
            try:
                if float(have) != float(value):
                    return False
            except ValueError:
                return False
        elif str(have) != value:
            return False
    return True


def _references(pairs: pd.DataFrame, selector: dict[str, str] | None) -> dict[str, str]:
    """match_key -> the match_key of its reference cell (same target/runtime/power mode,
    then as many other label fields in common as possible)."""
    if selector is None:
        return {}
    static = pairs[(pairs["kind_b"] == "static") & (pairs["status_b"] == "ok")
                   & (pairs["status_c"] == "ok")]  # fmt: skip
    refs = static[static.apply(lambda r: _matches(r, selector), axis=1)]
    out: dict[str, str] = {}
    others = [f for f in LABEL_FIELDS if f not in GROUP_FIELDS]
    for _, row in static.iterrows():
        same = refs
        for f in GROUP_FIELDS:
            same = same[same[f"{f}_b"] == row[f"{f}_b"]]
        if same.empty:
            continue
        score = sum((same[f"{f}_b"] == row[f"{f}_b"]).astype(int) for f in others)
        best = same.assign(_score=score, _label=same["label"]).sort_values(
            ["_score", "_label"], ascending=[False, True]
        )
        out[row["match_key"]] = best.iloc[0]["match_key"]
    return out


def _trial_values(store: StoreData, key: str, ref_key: str | None, metric: str) -> np.ndarray:
    column, ref_column, _ = TRIAL_METRICS[metric]
    t = store.trials_for(key)
    if ref_key is None:
        return t[column].to_numpy(dtype=float)
    r = store.trials_for(ref_key)[["round", ref_column]].rename(columns={ref_column: "_ref"})
    m = t.merge(r, on="round", how="inner")
    return (m[column] / m["_ref"]).to_numpy(dtype=float)


def _min_trial_samples(baseline: StoreData, candidate: StoreData, key_b: str,
                       key_c: str) -> int:  # fmt: skip
    counts = [baseline.trials_for(key_b)["n"], candidate.trials_for(key_c)["n"]]
    values = [int(pd.to_numeric(c, errors="coerce").min()) for c in counts if len(c)]
    return min(values) if values else 0


def _fmt_rel(d: Decision) -> str:
    if np.isnan(d.change):
        return "—"
    if np.isnan(d.lo):
        return f"{d.change * 100:+.1f}%"
    return f"{d.change * 100:+.1f}% [{d.lo * 100:+.1f}, {d.hi * 100:+.1f}]"


def _fmt_pts(d: Decision) -> str:
    if np.isnan(d.change):
        return "—"
    if np.isnan(d.lo):
        return f"{d.change:+.2f} points"
    return f"{d.change:+.2f} points [{d.lo:+.2f}, {d.hi:+.2f}]"


def _starved(b: pd.Series, c: pd.Series) -> str:
    """Which run's trials of this cell the CPU share check failed (``extra_json``), or ''."""
    sides = []
    for side, row in (("baseline", b), ("candidate", c)):
        extra = row.get("extra_json")
        try:
            e = json.loads(extra) if isinstance(extra, str) else {}
        except ValueError:
            e = {}
        if e.get("cpu_starved"):
            share, threads = e.get("cpu_share"), e.get("cpu_threads") or 1
            got = f" ({share / threads:.2f} of a core per thread)" if share is not None else ""
            sides.append(f"{side}{got}")
    return " and ".join(sides)


def _unstable(b: pd.Series, c: pd.Series) -> str:
    parts = []
    for side, row in (("baseline", b), ("candidate", c)):
        if row.get("stable") is not None and not pd.isna(row["stable"]) and not int(row["stable"]):
            reason = row.get("unstable_reason")
            parts.append(f"{side}: {reason}" if isinstance(reason, str) and reason else side)
    return "; ".join(parts)


def _value(v: object, digits: str = ".4g") -> str:
    return "—" if v is None or pd.isna(v) else format(float(v), digits)


def compare_stores(baseline: StoreData, candidate: StoreData, thresholds: Thresholds, *,
                   allow_different_device: bool = False,
                   reference: str | None = "auto") -> CheckResult:  # fmt: skip
    """Compare matching cells of two stores; raise ``StoreError`` when they are unusable."""
    selector = parse_reference(reference)
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
    result = CheckResult(matched=len(pairs))
    mismatched = pairs[pairs["fingerprint_hash_b"] != pairs["fingerprint_hash_c"]]
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
    pairs["label"] = [cell_label(pd.Series({f: r[f"{f}_b"] for f in LABEL_FIELDS + ("kind",)}))
                      for _, r in pairs.iterrows()]  # fmt: skip
    result.only_baseline = [cell_label(r) for _, r in
                            base[~base["match_key"].isin(cand["match_key"])].iterrows()]  # fmt: skip
    result.only_candidate = [cell_label(r) for _, r in
                             cand[~cand["match_key"].isin(base["match_key"])].iterrows()]  # fmt: skip
    refs = _references(pairs, selector)
    _trial_findings(result, pairs, refs, baseline, candidate, thresholds)
    _accuracy_findings(result, pairs, thresholds)
    _memory_findings(result, pairs, thresholds)
    _too_few(result, baseline, candidate, 1.0 - thresholds.alpha)
    return result


def _trial_findings(result: CheckResult, pairs: pd.DataFrame, refs: dict[str, str],
                    baseline: StoreData, candidate: StoreData, th: Thresholds) -> None:  # fmt: skip
    labels = dict(zip(pairs["match_key"], pairs["label"], strict=True))
    keys_b = dict(zip(pairs["match_key"], pairs["cell_key_b"], strict=True))
    keys_c = dict(zip(pairs["match_key"], pairs["cell_key_c"], strict=True))
    for _, row in pairs.iterrows():
        label, mk = row["label"], row["match_key"]
        b = pd.Series({k[:-2]: v for k, v in row.items() if k.endswith("_b")})
        c = pd.Series({k[:-2]: v for k, v in row.items() if k.endswith("_c")})
        if b["status"] == "ok" and c["status"] != "ok":
            result.findings.append(Finding(label, "status", REGRESSION, "ok", str(c["status"]),
                                           str(c.get("error") or "failed"), "must stay ok", ""))  # fmt: skip
            continue
        if b["status"] != "ok" or c["status"] != "ok" or b["kind"] not in ("static", "model"):
            continue
        ref = refs.get(mk)
        is_ref = ref == mk
        starved = _starved(b, c)
        for metric, (_, _, cells_col) in TRIAL_METRICS.items():
            if metric == "energy_per_inference":
                if pd.isna(b[cells_col]) or pd.isna(c[cells_col]):
                    continue
                if b["energy_source"] != c["energy_source"]:
                    result.notes.append(f"{label}: energy not compared ({b['energy_source']} "
                                        f"vs {c['energy_source']}).")  # fmt: skip
                    continue
            norm = None if (ref is None or is_ref) else ref
            vb = _trial_values(baseline, keys_b[mk], keys_b[norm] if norm else None, metric)
            vc = _trial_values(candidate, keys_c[mk], keys_c[norm] if norm else None, metric)
            limit = getattr(th, metric)
            d = decide_relative(vb, vc, limit / 100.0, level=1.0 - th.alpha)
            if metric == "latency_p99" and not d.reason:
                n_min = _min_trial_samples(baseline, candidate, keys_b[mk], keys_c[mk])
                if n_min < P99_MIN_SAMPLES:
                    d = Decision(INCONCLUSIVE, d.change, d.lo, d.hi, None,
                                 f"p99 of {n_min} samples per trial is the window's maximum; "
                                 f"p99 needs ≥ {P99_MIN_SAMPLES} per trial ([measure] min_count)")  # fmt: skip
            detail = d.reason or (f"MDE +{d.mde * 100:.1f}%" if d.mde is not None else "")
            basis = f"÷ reference {labels[norm]}" if norm else "unnormalised"
            if norm is None and starved and d.outcome in (REGRESSION, IMPROVEMENT):
                d = Decision(INCONCLUSIVE, d.change, d.lo, d.hi, d.mde)
                detail = (f"the {starved} did not get the CPU: with no reference cell "
                          "to divide by, another process's load and the code look the same; "
                          "re-measure with --interleave")  # fmt: skip
            if is_ref:
                basis = "reference cell, unnormalised"
                if d.outcome == REGRESSION:
                    d = Decision(INCONCLUSIVE, d.change, d.lo, d.hi, d.mde)
                    detail = ("the reference cell slowed: machine drift and a change that "
                              "slows every cell alike look the same from two runs; "
                              "re-measure both runs alternately to tell them apart")  # fmt: skip
                if metric == "latency_p50":
                    result.notes.append(f"drift of reference {label}: {_fmt_rel(d)} "
                                        "(candidate vs baseline, unnormalised)")  # fmt: skip
            result.findings.append(Finding(
                label, metric, d.outcome, _value(b[cells_col]), _value(c[cells_col]),
                _fmt_rel(d), f"+{limit:g}%", f"{detail}; {basis}" if detail else basis,
                _unstable(b, c)))  # fmt: skip


def _accuracy_findings(result: CheckResult, pairs: pd.DataFrame, th: Thresholds) -> None:
    ok = pairs[(pairs["status_b"] == "ok") & (pairs["status_c"] == "ok")
               & pairs["accuracy_b"].notna() & pairs["accuracy_c"].notna()]  # fmt: skip
    for _, g in ok.groupby("seed_group_b", sort=False):
        first = g.iloc[0]
        d = decide_accuracy(dict(zip(g["seed_b"], g["accuracy_b"], strict=True)),
                            dict(zip(g["seed_c"], g["accuracy_c"], strict=True)),
                            first.get("n_eval_b"), th.accuracy)  # fmt: skip
        seeds = ", ".join(str(s) for s in sorted(g["seed_b"]))
        label = first["label"].rsplit(" · seed ", 1)[0] + f" · seed {seeds}"
        mean_b, mean_c = g["accuracy_b"].mean() * 100, g["accuracy_c"].mean() * 100
        detail = d.reason + (f"; MDE {d.mde:.2f} points" if d.mde is not None else "")
        result.findings.append(Finding(label, "accuracy", d.outcome, f"{mean_b:.2f}%",
                                       f"{mean_c:.2f}%", _fmt_pts(d), f"−{th.accuracy:g} points",
                                       detail))  # fmt: skip


def _memory_findings(result: CheckResult, pairs: pd.DataFrame, th: Thresholds) -> None:
    ok = pairs[(pairs["status_b"] == "ok") & (pairs["status_c"] == "ok")]
    for _, row in ok.iterrows():
        vb, vc = row["peak_memory_mb_b"], row["peak_memory_mb_c"]
        if pd.isna(vb) or pd.isna(vc) or vb <= 0:
            continue
        change = (vc - vb) / vb
        outcome = REGRESSION if change * 100 > th.peak_memory else "pass"
        result.findings.append(Finding(row["label"], "peak_memory", outcome, _value(vb),
                                       _value(vc), f"{change * 100:+.1f}%",
                                       f"+{th.peak_memory:g}%",
                                       "threshold only (one value per cell)"))  # fmt: skip


def _too_few(result: CheckResult, baseline: StoreData, candidate: StoreData,
             level: float) -> None:  # fmt: skip
    """When no cell has enough trials for a test, the whole check is one line, exit 3."""
    lat = [f for f in result.findings if f.metric == "latency_p50"]
    if not lat or any("too few trials" not in f.detail for f in lat) or result.regressions:
        return
    need = min_trials(level)
    old = [s for s, st in (("baseline", baseline), ("candidate", candidate)) if st.user_version < 2]
    if old:
        result.too_few_trials = (
            f"inconclusive: the {' and '.join(old)} store(s) are schema v1 (one trial per "
            f"cell), and a trial-level test needs at least {need} trials per run; re-run both "
            "with this sentryfuse (profile [measure] trials)"
        )
    else:
        n_b = int(baseline.cells["trials"].max())
        n_c = int(candidate.cells["trials"].max())
        result.too_few_trials = (
            f"inconclusive: too few trials for a test ({n_b} in the baseline, {n_c} in the "
            f"candidate); a {level:.0%} interval needs at least {need} per run: raise [measure] "
            "trials in the profile and re-run"
        )


__all__ = ["CheckResult", "Finding", "compare_stores", "match_key", "parse_reference"]
