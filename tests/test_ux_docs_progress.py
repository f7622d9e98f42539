"""The profile reference cannot drift from the schema; reports name a user's dataset by
name (the ETA's tests: test_ux_progress_eta.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from harness.profile_docs import DOCS, generate
from harness.profile_keys import SECTIONS, section_keys
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


def test_summary_names_a_users_dataset_by_name():
    cells = pd.DataFrame({"dataset": ["/home/u/data/watch.npz", "hapt", None]})
    assert list(dataset_display_names(cells)["dataset"][:2]) == ["watch", "hapt"]
    two = pd.DataFrame({"dataset": ["/a/x.npz", "/b/x.npz"]})  # same stem: keep the paths
    assert list(dataset_display_names(two)["dataset"]) == ["/a/x.npz", "/b/x.npz"]
