"""Cell expansion: deterministic order, stable keys, dense baselines once, settings hashed."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cells import cell_key, estimate_seconds, expand
from harness.profile import load_profile

TEXT = """
[grid]
datasets = ["synthetic"]
backbones = ["early", "late"]
attentions = ["sentryattend"]
methods = ["sentrygate", "magnitude", "taylor+ft"]
sparsities = [0.0, 0.5]
conditions = ["all", "drop:a"]
targets = ["cpu"]
runtimes = ["torch"]
power_modes = ["max", "single"]
seeds = [0]
[measure]
min_duration_s = 0.1
"""


def _profile(tmp_path: Path, text: str = TEXT):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return load_profile(path)


def test_expansion_count_order_and_dense_once(tmp_path):
    cells = expand(_profile(tmp_path))
    # 2 backbones x 2 conditions x 2 modes x (1 dense + 3 methods x 2 sparsities)
    assert len(cells) == 2 * 2 * 2 * (1 + 6)
    dense = [c for c in cells if c.method == "dense"]
    assert len(dense) == 8 and all(c.sparsity == 0.0 for c in dense)
    assert len({c.key for c in cells}) == len(cells)
    assert [c.backbone for c in cells[:28]] == ["early"] * 28  # checkpoint axes outermost
    again = expand(_profile(tmp_path))
    assert [c.key for c in cells] == [c.key for c in again]


def test_key_is_sha256_of_canonical_definition(tmp_path):
    c = expand(_profile(tmp_path))[5]
    d = json.loads(c.definition_json)
    assert d == c.definition and c.key == cell_key(d) and len(c.key) == 64
    assert cell_key(dict(reversed(list(d.items())))) == c.key  # key order does not matter


def test_settings_change_keys_but_layout_does_not(tmp_path):
    base = {c.key for c in expand(_profile(tmp_path))}
    reordered = TEXT.replace("[measure]\nmin_duration_s = 0.1", "").replace(
        "[grid]", "[measure]\nmin_duration_s = 0.1\n[grid]"
    )
    assert {c.key for c in expand(_profile(tmp_path, reordered))} == base
    longer = TEXT.replace("min_duration_s = 0.1", "min_duration_s = 0.2")
    assert not base & {c.key for c in expand(_profile(tmp_path, longer))}
    # fine-tuning budget changes only the fine-tuned cells
    ft = expand(_profile(tmp_path, TEXT + "[finetune]\nsteps = 7\n"))
    changed = {c.method for c in ft if c.key not in base}
    assert changed == {"taylor+ft"}


def test_replay_cells_and_estimate(tmp_path):
    text = (
        TEXT
        + """
[replay]
methods = ["sentrygate", "magnitude"]
policy = { max = 0.3, single = 0.5 }
[[replay.events]]
t_s = 0
present = ["a", "b", "c"]
power_mode = "max"
[[replay.events]]
t_s = 5
present = ["a"]
"""
    )
    p = _profile(tmp_path, text)
    cells = expand(p)
    replay = [c for c in cells if c.kind == "replay"]
    assert [c.method for c in replay] == ["sentrygate", "magnitude"]
    assert all(c.condition == "replay" and c.power_mode == "timeline" for c in replay)
    assert estimate_seconds(p, cells) > estimate_seconds(p, cells[:10]) > 0
