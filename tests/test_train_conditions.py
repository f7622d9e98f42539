"""Conditions and the modality-dropout curriculum: parsing, validation, masks, schedule."""

from __future__ import annotations

import numpy as np
import pytest

from sentryfuse.conditions import Condition, parse_condition, standard_conditions
from sentryfuse.curriculum import DropoutCurriculum
from sentryfuse.errors import PruneError

MODS = ("acc", "gyro", "mag")


def test_parse_forms_and_labels() -> None:
    assert parse_condition("all").static_present(MODS) == MODS
    c = parse_condition("drop:acc+gyro", MODS)
    assert c.dropped == ("acc", "gyro") and c.label == "drop:acc+gyro"
    assert c.static_present(MODS) == ("mag",)
    r = parse_condition("random:0.3")
    assert r.static_present(MODS) is None and r.label == "random:0.3"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("drop:accel", "valid: acc, gyro, mag"),
        ("drop:acc+gyro+mag", "drops every modality"),
        ("random:1.5", "[0, 1)"),
        ("random:x", "not a number"),
        ("sometimes", "valid forms"),
        ("drop:", "valid forms"),
    ],
)
def test_bad_conditions_are_one_line_errors(text: str, fragment: str) -> None:
    with pytest.raises(PruneError) as err:
        parse_condition(text, MODS)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_masks_static_and_random_never_empty() -> None:
    rng = np.random.default_rng(0)
    m = parse_condition("drop:gyro").present_mask(5, MODS, rng)
    assert m.shape == (5, 3) and m.dtype == bool
    assert (m == np.array([True, False, True])).all()
    r = Condition("random", p_drop=0.9).present_mask(2000, MODS, rng)
    assert r.any(axis=1).all()  # never a sample with no sensor
    assert 0.62 < 1 - r.mean() < 0.69  # 0.9 - 0.9**3/3: empty rows were refilled


def test_standard_conditions_cover_each_missing_modality() -> None:
    labels = [c.label for c in standard_conditions(MODS)]
    assert labels == ["all", "drop:acc", "drop:gyro", "drop:mag", "random:0.3"]
    assert [c.label for c in standard_conditions(("only",))] == ["all", "random:0.3"]


def test_curriculum_schedule_warmup_ramp_hold() -> None:
    cur = DropoutCurriculum(warmup_epochs=2, ramp_epochs=4, p_max=0.4)
    assert cur.p_drop(0) == cur.p_drop(1.99) == 0.0
    assert cur.p_drop(2) == 0.0
    assert cur.p_drop(4) == pytest.approx(0.2)
    assert cur.p_drop(6) == pytest.approx(0.4) and cur.p_drop(50) == pytest.approx(0.4)
    ps = [cur.p_drop(e / 4) for e in range(40)]
    assert ps == sorted(ps)  # monotone


def test_curriculum_sampling_is_seeded_and_follows_p() -> None:
    cur = DropoutCurriculum(warmup_epochs=1, ramp_epochs=1, p_max=0.4)
    warm = cur.sample(500, 3, 0.5, np.random.default_rng(1))
    assert warm.all()  # warm-up: every modality present
    a = cur.sample(4000, 3, 5.0, np.random.default_rng(7))
    b = cur.sample(4000, 3, 5.0, np.random.default_rng(7))
    assert (a == b).all() and a.any(axis=1).all()
    assert 0.33 < 1 - a.mean() < 0.41  # ≈ 0.4 minus the refilled empty rows
    shared = cur.sample_shared(3, 5.0, np.random.default_rng(3))
    assert shared.shape == (3,) and shared.any()
