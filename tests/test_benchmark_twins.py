"""The ordinary twins of the grid profiles (``subnet = false``, the paper's protocol) must
stay the same grid: the summary and ``report --ordinary`` pair cells across the two, and
a drifted axis would silently pair fewer of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
TWINS = [
    ("profiles/paper-grid.toml", "benchmarks/paper_grid_ordinary.toml"),
    ("profiles/claims.toml", "benchmarks/claims_ordinary.toml"),
]


@pytest.mark.parametrize(("profile", "twin"), TWINS)
def test_ordinary_twin_differs_only_in_name_and_subnet(profile: str, twin: str) -> None:
    a = tomllib.loads((ROOT / profile).read_text())
    b = tomllib.loads((ROOT / twin).read_text())
    assert b["name"] == f"{a['name']}-ordinary"
    assert b["train"].pop("subnet") is False
    assert "subnet" not in a["train"]
    for doc in (a, b):
        doc.pop("name"), doc.pop("description")
    assert a == b
