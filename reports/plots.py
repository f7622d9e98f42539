"""Matplotlib figures for the report, rendered to PNG bytes (embedded base64 in the HTML).

Each ``plot_*`` takes a derived table and returns a Figure, or ``None`` when the run has
no cells for it (the report then says so instead of drawing an empty frame). Rendering
uses the Agg backend and matplotlib's bundled fonts: nothing is fetched at view time.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from reports.tables import energy_provenance  # noqa: E402

METHOD_ORDER = ("dense", "random", "magnitude", "taylor", "fisher", "taylor-calib",
                "sentrygate", "fisher+ft", "taylor+ft")  # fmt: skip


def method_color(method: str) -> tuple:
    """A stable colour per method, so every plot reads the same way."""
    base = method.removesuffix("+ft")
    idx = METHOD_ORDER.index(base) if base in METHOD_ORDER else abs(hash(base)) % 10
    return plt.get_cmap("tab10")(idx % 10)


def _style(method: str) -> dict:
    return {
        "color": method_color(method),
        "linestyle": "--" if method.endswith("+ft") else "-",
        "linewidth": 2.4 if method == "sentrygate" else 1.4,
        "marker": "o",
        "markersize": 4,
    }


def _grid(n: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, np.ndarray]:
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def to_png(fig: Figure) -> bytes:
    """PNG bytes of a figure (then closed, so long reports do not leak figures)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def plot_accuracy_vs_sparsity(acc: pd.DataFrame) -> Figure | None:
    """One panel per dataset × backbone, a line per method (and attention kind)."""
    if acc.empty:
        return None
    panels = list(acc.groupby(["dataset", "backbone"]))
    fig, axes = _grid(len(panels))
    for ax, ((dataset, backbone), sub) in zip(axes, panels, strict=False):
        dense = sub[sub["method"] == "dense"]
        for (attention, method), line in sub.groupby(["attention", "method"]):
            if method == "dense":
                continue
            line = pd.concat([dense[dense["attention"] == attention], line]).sort_values("sparsity")
            label = method if attention == "dense" else f"{method} ({attention})"
            style = _style(method)
            if attention != "dense":
                style["linestyle"] = ":"
            ax.plot(line["sparsity"] * 100, line["accuracy_pct"], label=label, **style)
            if {"accuracy_lo", "accuracy_hi"} <= set(line.columns):  # 95% over seeds / Wilson
                ax.fill_between(line["sparsity"] * 100, line["accuracy_lo"].astype(float),
                                line["accuracy_hi"].astype(float), alpha=0.12,
                                color=style.get("color"))  # fmt: skip
        ax.set_title(f"{dataset} · {backbone}")
        ax.set_xlabel("sparsity (% heads + FFN channels removed)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Accuracy vs sparsity (all sensors present; bands: 95% intervals)")
    fig.tight_layout()
    return fig


def plot_accuracy_by_condition(cond: pd.DataFrame) -> Figure | None:
    """Grouped bars: modality condition × method, one panel per sparsity level."""
    if cond.empty:
        return None
    levels = sorted(cond["sparsity"].unique())
    fig, axes = _grid(len(levels), width=5.0)
    for ax, s in zip(axes, levels, strict=False):
        sub = cond[cond["sparsity"] == s]
        table = sub.groupby(["condition", "method"])["accuracy_pct"].mean().unstack("method")
        methods = [m for m in METHOD_ORDER if m in table.columns] + [
            m for m in table.columns if m not in METHOD_ORDER
        ]
        x = np.arange(len(table.index))
        width = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            ax.bar(x + i * width, table[m], width, label=m, color=method_color(m),
                   hatch="//" if m.endswith("+ft") else None)  # fmt: skip
        ax.set_xticks(x + 0.4 - width / 2, table.index, rotation=20, fontsize=8)
        ax.set_title(f"sparsity {s:.0%}")
        ax.set_ylabel("accuracy (%)")
        lo = np.nanmin(table.to_numpy())
        ax.set_ylim(max(0, lo - 10), 100)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)  # each panel: the methods present differ (dense only at 0%)
    fig.suptitle("Accuracy under each modality condition (mean over datasets and backbones)")
    fig.tight_layout()
    return fig


def plot_power_modes(power: pd.DataFrame) -> Figure | None:
    """Latency p50 and energy per inference per power mode, a line per model variant."""
    if power.empty:
        return None
    power = power.assign(where=power["target"] + "/" + power["runtime"] + "/" + power["power_mode"])
    order = list(dict.fromkeys(power["where"]))
    # Latency follows the shape (sparsity, attention), not how units were picked: draw
    # the dense model and SentryGate when the run has them, every method otherwise.
    focus = power[power["method"].isin(["dense", "sentrygate"])]
    power = focus if not focus.empty else power
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for (attention, method, s), sub in power.groupby(["attention", "method", "sparsity"]):
        x = [order.index(w) for w in sub["where"]]
        label = f"{method} s={s:.0%}" + ("" if attention == "dense" else f" ({attention})")
        style = _style(method)
        style["linestyle"] = ":" if attention != "dense" else style["linestyle"]
        axes[0].plot(x, sub["latency_ms_p50"], label=label, **style)
        axes[1].plot(x, sub["energy_mj_per_inference"], label=label, **style)
    for ax in axes:
        ax.set_xticks(range(len(order)), order, rotation=25, fontsize=7, ha="right")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("latency p50 (ms)")
    axes[1].set_ylabel("energy per inference (mJ)")
    axes[1].set_title(f"energy: {energy_provenance(power)}", fontsize=8)
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle("Latency and energy per inference vs power mode (all sensors present)")
    fig.tight_layout()
    return fig


def plot_pareto(pareto: pd.DataFrame) -> Figure | None:
    """Accuracy–latency (top) and accuracy–energy (bottom) fronts per dataset × backbone."""
    if pareto.empty:
        return None
    panels = list(pareto.groupby(["dataset", "backbone"]))
    n = len(panels)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 6.6), squeeze=False)
    specs = (("latency_ms_p50", "on_latency_front", "latency p50 (ms)"),
             ("energy_mj_per_inference", "on_energy_front", "energy / inference (mJ)"))  # fmt: skip
    for col, ((dataset, backbone), sub) in enumerate(panels):
        for row, (x, front, xlabel) in enumerate(specs):
            ax = axes[row][col]
            for method, pts in sub.groupby("method"):
                ax.scatter(pts[x], pts["accuracy_pct"], s=14, alpha=0.7, label=method,
                           color=method_color(method))  # fmt: skip
            f = sub[sub[front]].sort_values(x)
            ax.step(f[x], f["accuracy_pct"], where="post", color="black", linewidth=1)
            ax.set_xlabel(xlabel if row == 0 else f"{xlabel}\n[{energy_provenance(sub)}]",
                          fontsize=8)  # fmt: skip
            ax.set_ylabel("accuracy (%)")
            ax.set_title(f"{dataset} · {backbone}", fontsize=9)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Pareto fronts (black: non-dominated deployments)")
    fig.tight_layout()
    return fig


def plot_break_even(be: pd.DataFrame) -> Figure | None:
    """Inferences needed before fine-tuning's energy is paid back, per method × sparsity."""
    be = be.dropna(subset=["break_even_inferences"])
    if be.empty:
        return None
    table = be.groupby(["sparsity", "ft_method"])["break_even_inferences"].median().unstack()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    x = np.arange(len(table.index))
    width = 0.8 / len(table.columns)
    for i, m in enumerate(table.columns):
        ax.bar(x + i * width, table[m], width, label=m, color=method_color(m), hatch="//")
    ax.set_xticks(x + 0.4 - width / 2, [f"{s:.0%}" for s in table.index])
    ax.set_yscale("log")
    ax.set_xlabel("sparsity")
    ax.set_ylabel("break-even (inferences)")
    ax.set_title(f"fine-tuning energy ÷ energy per inference\n[{energy_provenance(be)}]",
                 fontsize=8)  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_replay(title: str, segments: pd.DataFrame) -> Figure | None:
    """Deployment replay: power mode, present sensors, accuracy and latency over time.

    ``segments`` carries a ``present`` column of sensor-name lists (parsed by the caller).
    """
    if segments.empty:
        return None
    seg = segments.sort_values("seq")
    t0, t1 = seg["t_start_s"].to_numpy(), seg["t_end_s"].to_numpy()
    edges = np.append(t0, t1[-1])
    fig, axes = plt.subplots(4, 1, figsize=(10, 6.4), sharex=True,
                             gridspec_kw={"height_ratios": [1, 1.2, 1.4, 1.4]})  # fmt: skip
    modes = list(dict.fromkeys(seg["power_mode"]))
    mode_idx = [modes.index(m) for m in seg["power_mode"]]
    axes[0].stairs(mode_idx, edges, color="tab:purple", linewidth=2, baseline=None)
    axes[0].set_yticks(range(len(modes)), modes, fontsize=7)
    axes[0].set_ylabel("power mode", fontsize=8)
    present = list(seg["present"])
    sensors = sorted({s for p in present for s in p})
    for j, sensor in enumerate(sensors):
        spans = [(a, b - a) for a, b, p in zip(t0, t1, present, strict=True) if sensor in p]
        axes[1].broken_barh(spans, (j - 0.35, 0.7), color="tab:green")
    axes[1].set_yticks(range(len(sensors)), sensors, fontsize=7)
    axes[1].set_ylabel("present", fontsize=8)
    axes[2].stairs(
        seg["accuracy"].to_numpy(dtype=float) * 100, edges, color="tab:blue", baseline=None
    )
    axes[2].set_ylabel("accuracy (%)", fontsize=8)
    axes[3].stairs(seg["latency_ms_p50"].to_numpy(dtype=float), edges, label="p50", baseline=None)
    axes[3].stairs(seg["latency_ms_p99"].to_numpy(dtype=float), edges, label="p99", baseline=None)
    axes[3].set_ylabel("latency (ms)", fontsize=8)
    axes[3].legend(fontsize=7)
    axes[3].set_xlabel("stream time (s)")
    for ax in axes:
        for t in t0[1:]:
            ax.axvline(t, color="grey", linewidth=0.5, alpha=0.5)
        ax.grid(alpha=0.2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
