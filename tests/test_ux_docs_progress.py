"""The profile reference cannot drift from the schema; the ETA learns from measured time;
reports name a user's dataset by name."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pandas as pd
import pytest

from harness.profile_docs import DOCS, generate
from harness.profile_keys import SECTIONS, section_keys
from harness.progress import PlanItem, Progress
from reports.write import dataset_display_names

ROOT = Path(__file__).resolve().parent.parent


def test_docs_profiles_md_is_generated_from_the_schema():
    committed = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert committed == generate(), (
        "docs/profiles.md is stale: run `python -m harness.profile_docs > docs/profiles.md`"
    )


def test_every_schema_key_is_documented_with_its_default():
    schema = {(s, k) for s in SECTIONS for k in section_keys(s)}
    assert schema == set(DOCS)
    blocks = generate().split("\n## ")[1 : 1 + len(SECTIONS)]  # one per section, in order
    for (section, cls), block in zip(SECTIONS.items(), blocks, strict=True):
        for f in dataclasses.fields(cls):
            if f.name not in section_keys(section):  # computed, not written in a profile
                continue
            row = next(ln for ln in block.splitlines() if ln.startswith(f"| `{f.name}` |"))
            if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
                assert f"`{f.default}`" in row, (section, f.name, row)


def test_an_undocumented_key_fails_the_generator(monkeypatch):
    monkeypatch.delitem(DOCS, ("train", "epochs"))
    with pytest.raises(KeyError, match="train.epochs"):
        generate()


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _simulate(plan, actual_cell_s, actual_train_s_per_unit):
    """Run the plan on a fake clock; yield (ETA after cell i, actual time remaining)."""
    clock = FakeClock()
    p = Progress.start(plan, stream=io.StringIO(), bar=False, clock=clock)
    costs = [actual_cell_s(it) + it.train_units * actual_train_s_per_unit for it in plan]
    out = []
    for i, (it, cost) in enumerate(zip(plan, costs, strict=True)):
        clock.t += cost
        p.cell_done(it.label, "ok", cost, train_s=it.train_units * actual_train_s_per_unit)
        out.append((p.eta_s(), sum(costs[i + 1 :])))
    return out, p.stream.getvalue()


def test_eta_learns_from_measured_time_and_stays_within_2x():
    """Priors 10x too optimistic for cells and 30x for training (a busy machine): after the
    first cells of each kind the ETA is within 2x of what remains."""
    plan = []
    for ck in range(3):  # three checkpoints, ten cells each (two fine-tuned), then replays
        for j in range(10):
            plan.append(PlanItem(f"c{ck}.{j}", "finetune" if j >= 8 else "static",
                                 2000.0 if j == 0 else 0.0, 2.0 + (8.0 if j >= 8 else 0.0),
                                 5.0 if j == 0 else 0.0))  # fmt: skip
    plan += [PlanItem(f"r{k}", "replay", 0.0, 4.0, 0.0) for k in range(2)]
    history, log = _simulate(plan, lambda it: 10 * it.prior_cell_s, 30 * 5.0 / 2000)
    for i, (eta, remaining) in enumerate(history[:-1]):
        if i >= 1 and remaining > 0 and plan[i + 1].cost_class != "replay":
            assert remaining / 2 <= eta <= remaining * 2, (i, eta, remaining)
    assert history[-1][0] == 0.0
    lines = log.strip().splitlines()
    assert lines[0].startswith("32 cells to run") and lines[-1].startswith("[32/32] ok")
    assert "ETA 0:00" in lines[-1]


def test_summary_names_a_users_dataset_by_name():
    cells = pd.DataFrame({"dataset": ["/home/u/data/watch.npz", "hapt", None]})
    assert list(dataset_display_names(cells)["dataset"][:2]) == ["watch", "hapt"]
    two = pd.DataFrame({"dataset": ["/a/x.npz", "/b/x.npz"]})  # same stem: keep the paths
    assert list(dataset_display_names(two)["dataset"]) == ["/a/x.npz", "/b/x.npz"]
