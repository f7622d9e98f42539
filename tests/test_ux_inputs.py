"""Broken inputs, the way a new user makes them: each must give one line on stderr, exit
code 2, and leave the file system exactly as it was (no folder, lock or store created).

They run through ``harness.cli.main`` in this process (the same code the ``sentryfuse``
entry point runs; an uncaught exception fails the test just as a traceback would), so
~40 cases cost seconds, not minutes; ``test_ux_run.py`` runs the CLI as a subprocess.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from profile_helpers import tiny_profile

from harness import cli

ROOT = Path(__file__).resolve().parent.parent
STORES = ROOT / "tests" / "data" / "stores"

# The cases below edit this text the way a user edits the file (``_sub`` checks each edit
# finds its text).
GOOD = tiny_profile(
    "ok",
    dense_baseline=False,
    grid={"attentions": ["dense"], "methods": ["sentrygate"], "seeds": None},
    train={"scorer_final_steps": None},
    eval={"max_train": 64, "max_test": 32, "calib_samples": None},
    measure=None,
)
REPLAY = """
[replay]
methods = ["sentrygate"]
duration_s = 2.0
rate_hz = 5.0
policy = { max = 0.3 }
[[replay.events]]
t_s = 0.0
present = ["a", "b"]
power_mode = "max"
"""


def _profile(tmp: Path, text: str, name: str = "p.toml") -> str:
    (tmp / name).write_text(text)
    return name


def _sub(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def _store_of(tmp: Path, profile_name: str) -> str:
    """An --out folder holding a real recorded store (whose profile is not ours)."""
    out = tmp / "prev"
    out.mkdir()
    shutil.copy(STORES / "quickstart_recorded.sqlite", out / "results.sqlite")
    return "prev"


# Each case: (id, setup(tmp) -> argv). argv paths are relative to tmp (the cwd).
CASES = [
    ("missing-profile", lambda t: ["run", "nope/p.toml"]),
    ("unknown-shipped-name", lambda t: ["run", "quickstrt"]),
    ("not-toml", lambda t: ["run", _profile(t, "name = [unclosed")]),
    ("not-utf8", lambda t: ["run", (t / "b.toml").write_bytes(b"\xff\xfe\x00") and "b.toml"]),
    ("unknown-top-key", lambda t: ["run", _profile(t, "nmae = 'x'\n" + GOOD)]),
    ("train-max_train", lambda t: ["run", _profile(t, _sub("[train]\n", "[train]\nmax_train = 5\n"))]),
    ("sparsity-singular", lambda t: ["run", _profile(t, _sub("sparsities", "sparsity"))]),
    ("sparsity-range", lambda t: ["run", _profile(t, _sub("[0.5]", "[1.5]"))]),
    ("unknown-method", lambda t: ["run", _profile(t, _sub('["sentrygate"]', '["sentrygat"]'))]),
    ("unknown-dataset", lambda t: ["run", _profile(t, _sub('["synthetic"]', '["hapx"]'))]),
    ("missing-npz", lambda t: ["run", _profile(t, _sub('["synthetic"]', '["gone.npz"]'))]),
    ("empty-grid", lambda t: ["run", _profile(t, _sub('["early"]', "[]"))]),
    ("wrong-type", lambda t: ["run", _profile(t, _sub("epochs = 1", 'epochs = "1"'))]),
    ("bad-condition", lambda t: ["run", _profile(t, _sub('["all"]', '["random:2"]'))]),
    ("sensor-dry-run", lambda t: ["run", _profile(t, _sub('["all"]', '["drop:sound"]')), "--dry-run"]),
    ("sensor-run", lambda t: ["run", _profile(t, _sub('["all"]', '["drop:sound"]')), "--out", "o"]),
    ("replay-sensor", lambda t: ["run", _profile(t, GOOD + REPLAY.replace('"b"]', '"zz"]')), "--out", "o"]),
    ("replay-times", lambda t: ["run", _profile(t, GOOD + REPLAY.replace("t_s = 0.0", "t_s = 5.0"))]),
    ("power-mode", lambda t: ["run", _profile(t, _sub('["max"]', '["turbo"]'))]),
    ("runtime", lambda t: ["run", _profile(t, _sub('["torch"]', '["tensorflow"]'))]),
    ("out-is-file", lambda t: ["run", _profile(t, GOOD), "--out", (t / "f").write_text("x") and "f"]),
    ("out-under-file", lambda t: ["run", _profile(t, GOOD), "--out", (t / "f").write_text("x") and "f/o"]),
    ("out-uncreatable", lambda t: ["run", _profile(t, GOOD), "--out", "/proc/sentryfuse-test/o"]),
    ("out-user-files", lambda t: ["run", _profile(t, GOOD), "--out", _user_dir(t, "mine.txt")]),
    ("out-user-report", lambda t: ["run", _profile(t, GOOD), "--out", _user_dir(t, "report/mine.txt")]),
    ("out-other-profile", lambda t: ["run", _profile(t, GOOD), "--out", _store_of(t, "quickstart")]),
    ("out-store-no-resume", lambda t: ["run", _profile(t, GOOD.replace('"ok"', '"quickstart"')), "--out", _store_of(t, "q")]),
    ("train-out-file", lambda t: _train(t, (t / "f").write_text("x") and "f")),
    ("train-out-foreign", lambda t: _train(t, _user_dir(t, "notes.txt"))),
    ("train-out-uncreatable", lambda t: _train(t, "/proc/sentryfuse-test/ck")),
    ("train-backbone", lambda t: ["train", "--dataset", "synthetic", "--backbone", "erly", "--out", "ck"]),
    ("prune-out-foreign", lambda t: ["prune", "ck", "--method", "magnitude", "--sparsity", "0.5", "--out", _user_dir(t, "x.txt")]),
    ("prune-sparsity", lambda t: ["prune", "ck", "--method", "magnitude", "--sparsity", "abc", "--out", "v"]),
    ("prune-missing-ckpt", lambda t: ["prune", "ck", "--method", "magnitude", "--sparsity", "0.5", "--out", "v"]),
    ("report-missing", lambda t: ["report", "nowhere"]),
    ("report-out-foreign", lambda t: ["report", str(STORES / "generated_report.sqlite"), "--out", _user_dir(t, "keep.txt")]),
    ("check-missing", lambda t: ["check", "--baseline", "a", "--candidate", "b"]),
    ("eval-missing", lambda t: ["eval", "nothing-here"]),
    ("datasets-unknown", lambda t: ["datasets", "hapx"]),
]  # fmt: skip


def _user_dir(tmp: Path, rel: str) -> str:
    """A folder holding a user's file at ``rel``; returns the folder's name."""
    f = tmp / "mine" / rel
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("precious\n")
    return "mine"


def _train(tmp: Path, out: str) -> list[str]:
    return ["train", "--dataset", "synthetic", "--backbone", "early", "--size", "tiny",
            "--epochs", "1", "--out", out]  # fmt: skip


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("setup", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_input_is_one_line_exit_2_nothing_written(setup, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    argv = setup(tmp_path)
    before = _tree(tmp_path)
    rc = cli.main(argv)
    out, err = capfd.readouterr()
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sentryfuse {argv[0]}: error: "), err
    assert "Traceback" not in err and out == ""
    assert _tree(tmp_path) == before  # nothing created, nothing removed, nothing changed


def test_messages_say_what_to_do(tmp_path, monkeypatch, capfd):
    """The hints the issue asked for, word for word where it matters."""
    monkeypatch.chdir(tmp_path)
    expect = {
        "unknown-top-key": "valid: name, description",
        "train-max_train": "'max_train' belongs in [eval]",
        "sparsity-singular": "did you mean 'sparsities'",
        "sensor-dry-run": "unknown sensor 'sound'",
        "out-user-report": "was not written by sentryfuse",
        "out-user-files": "not a sentryfuse run",
        "out-store-no-resume": "--resume",
        "out-other-profile": "holds results of profile 'quickstart'",
        "unknown-shipped-name": "did you mean 'quickstart'",
    }
    setups = dict(CASES)
    for case, words in expect.items():
        for p in tmp_path.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        assert cli.main(setups[case](tmp_path)) == 2
        err = capfd.readouterr().err
        assert words in err, (case, err)
