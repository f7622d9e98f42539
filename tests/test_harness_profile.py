"""Profile validation: each malformed profile gets one line naming file, key and a hint,
exit code 2, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_helpers import tiny_profile

from harness.cli import main
from harness.profile import load_profile

# No [train] or [eval]: tests append their own. The malformed-profile cases below edit
# this text the way a user edits the file (tiny_profile writes `key = value` lines).
BASE = tiny_profile(
    "tiny",
    grid={
        "methods": ["sentrygate", "magnitude+ft"],
        "sparsities": [0.25, 0.5],
        "conditions": ["all", "drop:a", "random:0.3", "burst:0.3:5"],
    },
    train=None,
    eval=None,
    measure={"warmup_s": None, "warmup_n": None, "min_duration_s": 0.1},
)


def _run(tmp_path: Path, text: str | None, capsys) -> tuple[int, str, Path]:
    path = tmp_path / "p.toml"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out"
    rc = main(["run", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    return rc, err, out


def test_valid_profile_loads_into_frozen_objects(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(BASE)
    p = load_profile(path)
    assert p.grid.conditions_for("synthetic") == ("all", "drop:a", "random:0.3", "burst:0.3:5")
    assert p.grid.modes_for("cpu") == ("max",)
    assert p.measure.min_count == 5 and p.measure.percentiles == (50.0, 90.0, 95.0, 99.0)
    with pytest.raises(AttributeError):
        p.name = "x"  # frozen
    assert p.profile_hash() == load_profile(path).profile_hash()


def test_train_recipe_keys_reach_the_training_config_and_the_checkpoint_key(tmp_path):
    from harness.artifacts import Artifacts

    plain, tuned = tmp_path / "plain.toml", tmp_path / "tuned.toml"
    plain.write_text(BASE)
    tuned.write_text(BASE + "\n[train]\nsubnet_freeze_epochs = 0\nsubnet_weight = 0.5\n")
    t = load_profile(tuned).train
    assert (t.subnet_freeze_epochs, t.subnet_weight) == (0.0, 0.5)
    assert load_profile(plain).train.subnet_freeze_epochs is None  # sentryfuse's default
    keys = [
        Artifacts(load_profile(p), tmp_path / "out").checkpoint_key("synthetic", "early", "x", 0)
        for p in (plain, tuned)
    ]
    assert keys[0] != keys[1]  # another recipe never reuses a cached checkpoint


def test_shipped_profiles_validate():
    for path in sorted(Path(__file__).parent.parent.joinpath("profiles").glob("*.toml")):
        assert load_profile(path).name == path.stem


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (
            lambda t: t.replace("min_count = 5", "min_cuont = 5"),
            "measure.min_cuont: unknown key (did you mean 'min_count'?)",
        ),
        (
            lambda t: t.replace("min_count = 5", 'min_count = "5"'),
            "measure.min_count: expected an integer, got a string",
        ),
        (
            lambda t: t.replace('datasets = ["synthetic"]', 'datasets = ["synthetik"]'),
            "grid.datasets[0]: unknown dataset 'synthetik' (did you mean 'synthetic'?)",
        ),
        (
            lambda t: t.replace('"magnitude+ft"', '"magnitud"'),
            "grid.methods[1]: unknown method 'magnitud' (did you mean 'magnitude'?)",
        ),
        (
            lambda t: t.replace('targets = ["cpu"]', 'targets = ["cpuu"]'),
            "grid.targets[0]: unknown target 'cpuu' (did you mean 'cpu'?)",
        ),
        (
            lambda t: t.replace('power_modes = ["max"]', 'power_modes = ["maxx"]'),
            "grid.power_modes[0]: unknown cpu power mode 'maxx' (did you mean 'max'?)",
        ),
        (
            lambda t: t.replace('runtimes = ["torch"]', 'runtimes = ["tensorrt"]'),
            "grid.runtimes[0]: unknown cpu runtime 'tensorrt'",
        ),
        (
            lambda t: t.replace("seeds = [0]", "seeds = [0.5]"),
            "grid.seeds[0]: expected integer, got a number",
        ),
        (
            lambda t: t.replace('backbones = ["early"]', "backbones = []"),
            "grid.backbones: empty; list at least one string",
        ),
        (
            lambda t: t.replace("[0.25, 0.5]", "[0.25, 1.0]"),
            "grid.sparsities[1]: sparsity 1.0 is out of range",
        ),
        (
            lambda t: t.replace('"burst:0.3:5"', '"bursty:0.3"'),
            "grid.conditions[3]: unknown condition kind 'bursty' (did you mean 'burst'?)",
        ),
        (
            lambda t: t + "\n[train]\nepochs = 3\nsubnet_freeze_epochs = 4\n",
            "train.subnet_freeze_epochs: 4 is more than epochs (3); use 0..3",
        ),
        (
            lambda t: t + "\n[train]\nsubnet_weight = 0\n",
            "train.subnet_weight: must be > 0; to train without sub-network passes set subnet",
        ),
        (
            lambda t: (
                t + "\n[replay]\nmethods=['sentrygate']\npolicy={max=0.3}\n"
                "[[replay.events]]\nt_s=0\npresent=['a']\npower_mode='turbo'\n"
            ),
            "replay.events[0].power_mode: unknown power mode in the policy 'turbo'",
        ),
    ],
)
def test_malformed_profile_one_line_exit_2_nothing_written(tmp_path, capsys, edit, expect):
    rc, err, out = _run(tmp_path, edit(BASE), capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"sentryfuse run: error: {tmp_path / 'p.toml'}: ")
    assert expect in lines[0]
    assert not out.exists()


def test_missing_file_and_bad_toml(tmp_path, capsys):
    rc, err, out = _run(tmp_path, None, capsys)
    assert rc == 2 and "p.toml: file not found" in err and not out.exists()
    rc, err, out = _run(tmp_path, "name = ", capsys)
    assert rc == 2 and "not valid TOML" in err and len(err.strip().splitlines()) == 1


def test_condition_naming_unknown_sensor_fails_before_store(tmp_path, capsys):
    rc, err, out = _run(tmp_path, BASE.replace('"drop:a"', '"drop:acc"'), capsys)
    assert rc == 2
    assert "grid.conditions" in err and "unknown sensor 'acc'" in err
    assert not (out / "results.sqlite").exists()


def test_per_dataset_conditions_must_cover_every_dataset(tmp_path, capsys):
    text = BASE.replace('conditions = ["all", "drop:a", "random:0.3", "burst:0.3:5"]', "")
    text += '\n[grid.conditions]\nhapt = ["all"]\n'
    text = text.replace("[measure]", "[measure]", 1)
    path = tmp_path / "p.toml"
    # [grid.conditions] after [measure] is still the grid table in TOML
    path.write_text(text)
    from sentryfuse.errors import ProfileError

    with pytest.raises(ProfileError, match=r"grid.conditions.synthetic: missing"):
        load_profile(path)
