"""Bring-your-own .npz: a valid file loads, a malformed one names the wrong array."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sentryfuse.data import load_dataset
from sentryfuse.data.npz import read_npz, write_npz
from sentryfuse.data.synthetic import make_synthetic
from sentryfuse.errors import DatasetError


def _arrays(rng=None) -> dict[str, np.ndarray]:
    rng = rng or np.random.default_rng(0)
    return {
        "x_train__imu": rng.normal(size=(20, 10, 3)),
        "x_test__imu": rng.normal(size=(8, 10, 3)),
        "x_train__ppg": rng.normal(size=(20, 5)),  # (N, T) -> (N, T, 1)
        "x_test__ppg": rng.normal(size=(8, 5)),
        "y_train": np.arange(20) % 3,
        "y_test": np.arange(8) % 3,
        "subjects_train": np.arange(20) // 5,
        "subjects_test": np.full(8, 9),
        "classes": np.array(["sit", "walk", "run"]),
    }


def _save(tmp_path, arrays, name="mine.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_valid_file_loads_standardised(tmp_path):
    ds = load_dataset(str(_save(tmp_path, _arrays())))
    assert ds.modality_names == ("imu", "ppg")
    assert [(m.steps, m.features) for m in ds.modalities] == [(10, 3), (5, 1)]
    assert ds.classes == ("sit", "walk", "run")
    assert ds.train.x["ppg"].dtype == np.float32 and ds.train.y.dtype == np.int64
    assert ds.test.subjects.tolist() == [9] * 8
    np.testing.assert_allclose(ds.train.x["imu"].mean(axis=(0, 1)), 0.0, atol=1e-5)
    assert set(ds.meta["standardized"]) == {"imu", "ppg"}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda a: a.pop("y_train"), "'y_train'"),
        (lambda a: a.update(y_test=np.zeros(8, np.float32)), "'y_test' is float32(8,)"),
        (
            lambda a: a.update(x_train__imu=np.zeros((19, 10, 3))),
            "'x_train__imu' is float64(19, 10, 3), expected a numeric (20, T, C)",
        ),
        (
            lambda a: a.update(x_test__imu=np.zeros((8, 11, 3))),
            "'x_test__imu' has (T, C) = (11, 3)",
        ),
        (lambda a: a.pop("x_test__ppg"), "missing array 'x_test__ppg'"),
        (
            lambda a: a.update(x_train__imu=np.full((20, 10, 3), np.nan)),
            "'x_train__imu' contains NaN",
        ),
        (lambda a: a.update(y_train=np.arange(20)), "'y_train' holds ids outside [0, 3)"),
        (lambda a: a.update(subjects_test=np.zeros(7, np.int64)), "'subjects_test' is int64(7,)"),
        (lambda a: a.update(x_train__imu=np.zeros((20, 10, 3, 2))), "'x_train__imu'"),
    ],
)
def test_malformed_file_names_the_array(tmp_path, change, needle):
    arrays = _arrays()
    change(arrays)
    with pytest.raises(DatasetError) as err:
        load_dataset(str(_save(tmp_path, arrays)))
    msg = str(err.value)
    assert needle in msg and "\n" not in msg


def test_no_modalities_and_not_npz(tmp_path):
    with pytest.raises(DatasetError, match="no 'x_train__<modality>' arrays"):
        read_npz(_save(tmp_path, {"y_train": np.zeros(2, int), "y_test": np.zeros(2, int)}))
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(DatasetError, match="not a readable .npz"):
        read_npz(bad)


def test_object_arrays_refused_without_unpickling(tmp_path):
    arrays = _arrays()
    arrays["classes"] = np.array(["sit", 1, None], dtype=object)
    with pytest.raises(DatasetError, match="plain numeric/str arrays"):
        read_npz(_save(tmp_path, arrays))


def test_round_trip_is_exact_and_atomic(tmp_path):
    ds = make_synthetic(40, 20, seed=3)
    path = write_npz(ds, tmp_path / "sub" / "syn.npz")
    back = read_npz(path)
    assert back.name == "synthetic" and back.classes == ds.classes
    for split, orig in ((back.train, ds.train), (back.test, ds.test)):
        for m in ds.modality_names:
            np.testing.assert_array_equal(split.x[m], orig.x[m])
        np.testing.assert_array_equal(split.y, orig.y)
        np.testing.assert_array_equal(split.subjects, orig.subjects)
    assert [p.name for p in path.parent.iterdir()] == ["syn.npz"]  # no temp file left
    with np.load(path, allow_pickle=False) as f:  # plain arrays only
        assert all(f[k].dtype != object for k in f.files)


def test_slices_of_byo(tmp_path):
    ds = load_dataset(str(_save(tmp_path, _arrays())), max_train=6, max_test=3)
    assert len(ds.train) == 6 and len(ds.test) == 3
    assert sorted(np.bincount(ds.train.y)) == [2, 2, 2]


def test_cli_malformed_file_one_line_exit_2(tmp_path):
    arrays = _arrays()
    arrays["x_test__imu"] = np.zeros((8, 10, 4))
    path = _save(tmp_path, arrays)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "datasets", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "x_test__imu" in proc.stderr
    assert "Traceback" not in proc.stderr
