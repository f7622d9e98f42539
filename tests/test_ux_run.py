"""``sentryfuse run`` as a user runs it (a subprocess): the default --out, the per-cell
progress lines, the report folder's marker and permissions, the replay's results, the
lock that keeps a second run out, and Ctrl-C during a replay (exit 130 within 2 s with
the command that continues)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from profile_helpers import tiny_profile

from harness.cells import expand
from harness.outdir import lock_holder
from harness.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _tiny(tmp: Path, duration_s: float = 4.0, deadline_ms: float = 0.3) -> Path:
    text = tiny_profile(
        "tiny",
        dense_baseline=False,
        grid={"attentions": ["dense"], "methods": ["sentrygate"], "seeds": None},
        measure={"warmup_n": 1},
        replay={
            "methods": ["sentrygate", "magnitude"],
            "duration_s": duration_s,
            "rate_hz": 10.0,
            "deadline_ms": deadline_ms,
            "policy": {"max": 0.3, "single": 0.5},
            "events": [
                {"t_s": 0.0, "present": ["a", "b", "c"], "power_mode": "max"},
                {"t_s": duration_s / 2, "present": ["a"], "power_mode": "single"},
            ],
        },
    )
    path = tmp / "tiny.toml"
    path.write_text(text)
    return path


def _cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished run of the tiny profile, started without --out (so into runs/tiny)."""
    tmp = tmp_path_factory.mktemp("run")
    profile = _tiny(tmp)
    res = _cli("run", profile.name, cwd=tmp)
    return tmp, profile, res


def test_run_without_out_goes_to_runs_name_with_progress_lines(finished):
    tmp, _, res = finished
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp / "runs" / "tiny"
    assert (out / "results.sqlite").is_file()
    # not a terminal: one line per cell with the measured elapsed time and an ETA
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("[")]
    assert [ln.split("]")[0] for ln in lines] == ["[1/3", "[2/3", "[3/3"], res.stderr
    assert all(" ok " in ln and "ETA" in ln for ln in lines)
    assert lines[-1].endswith("ETA 0:00")
    # the first estimate says it is rough; training is a phase of its own with an ETA
    err = res.stderr.splitlines()
    assert any(ln.startswith("3 cells to run in") and "(rough" in ln for ln in err), res.stderr
    assert any(ln.startswith("trained synthetic/early/dense s0") and "ETA" in ln for ln in err)
    # no leftovers: no lock held, no temp folders, no empty work/<hash>
    assert lock_holder(out) is None
    assert not list(out.rglob(".tmp-*")) and not list(out.glob(".report.*"))
    assert not [p for p in (out / "work").glob("*") if p.is_dir() and not any(p.iterdir())]


def test_report_folder_is_marked_and_not_private(finished):
    tmp, _, _ = finished
    report = tmp / "runs" / "tiny" / "report"
    assert (report / ".sentryfuse-report").is_file() and (report / "report.html").is_file()
    mode = stat.S_IMODE(report.stat().st_mode)
    assert mode & 0o055 == 0o055, oct(mode)  # group/others may read it (umask 022), not 0700
    assert "synthetic" in (report / "summary.md").read_text()


def test_rerun_needs_resume_then_resume_skips_everything_and_sweeps(finished):
    tmp, profile, _ = finished
    again = _cli("run", profile.name, cwd=tmp)
    assert again.returncode == 2 and "--resume" in again.stderr
    out = tmp / "runs" / "tiny"
    stale = [
        out / "checkpoints" / ".tmp-0123abcd-999" / "ckpt",
        out / ".report.tmp-999-ab",
        out / "work" / "deadbeefdeadbeef",
    ]  # fmt: skip  (what killed runs leave)
    for path in stale:
        path.mkdir(parents=True)
    (stale[0] / "model.safetensors").write_bytes(b"half")
    resumed = _cli("run", profile.name, "--resume", cwd=tmp)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "3 already finished" in resumed.stdout
    assert not any(p.exists() for p in stale)
    assert not (out / "checkpoints" / ".tmp-0123abcd-999").exists()


def test_report_out_writes_elsewhere_and_refuses_a_users_folder(finished):
    tmp, _, _ = finished
    ok = _cli("report", "runs/tiny", "--out", "rep", cwd=tmp)
    assert ok.returncode == 0, ok.stderr
    assert (tmp / "rep" / "report.html").is_file() and (
        tmp / "rep" / ".sentryfuse-report"
    ).is_file()
    again = _cli("report", "runs/tiny", "--out", "rep", cwd=tmp)  # ours: replaced
    assert again.returncode == 0
    user = tmp / "userdir"
    user.mkdir()
    (user / "mine.txt").write_text("keep me")
    bad = _cli("report", "runs/tiny", "--out", "userdir", cwd=tmp)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert (user / "mine.txt").read_text() == "keep me" and sorted(os.listdir(user)) == ["mine.txt"]


def test_replay_results_per_segment(finished):
    """Accuracy, energy and deadline misses of every segment agree with the raw samples."""
    tmp, profile, _ = finished
    db = sqlite3.connect(tmp / "runs" / "tiny" / "results.sqlite")
    cells = db.execute(
        "SELECT cell_key, method, accuracy, n_eval, energy_mj_per_inference, extra_json "
        "FROM cells WHERE kind='replay' AND status='ok' ORDER BY method"
    ).fetchall()
    assert [c[1] for c in cells] == ["magnitude", "sentrygate"]
    for key, method, accuracy, n_eval, energy_per_inf, extra in cells:
        segs = db.execute(
            "SELECT seq, n_samples, accuracy, deadline_misses, energy_mj, energy_source, "
            "sparsity, present_json, power_mode FROM replay_segments WHERE cell_key=? "
            "ORDER BY seq",
            (key,),
        ).fetchall()
        lat = [r[0] for r in db.execute(
            "SELECT latency_ms FROM latency_samples WHERE cell_key=? ORDER BY idx", (key,))]  # fmt: skip
        assert [s[1] for s in segs] == [20, 20] and n_eval == len(lat) == 40
        assert [json.loads(s[7]) for s in segs] == [["a", "b", "c"], ["a"]]
        assert [s[8] for s in segs] == ["max", "single"]
        # the policy: sentrygate re-prunes per mode, a static mask keeps its first budget
        assert [s[6] for s in segs] == ([0.3, 0.5] if method == "sentrygate" else [0.3, 0.3])
        start = 0
        for _seq, n, acc, misses, energy_mj, source, *_ in segs:
            window = lat[start : start + n]
            start += n
            assert misses == sum(x > 0.3 for x in window)  # deadline_ms = 0.3
            assert (
                acc is not None and 0.0 <= acc <= 1.0 and round(acc * n) == pytest.approx(acc * n)
            )
            assert energy_mj > 0 and source == "estimated"
            # charged at the median query (8 W a thread × the threads), not the window
            threads = energy_mj / (n * statistics.median(window) / 1e3 * 8000.0)
            assert threads == pytest.approx(round(threads)) and round(threads) >= 1
        total_correct = sum(round(s[2] * s[1]) for s in segs)
        assert accuracy == pytest.approx(total_correct / 40)
        assert energy_per_inf == pytest.approx(sum(s[4] for s in segs) / 40)
        assert json.loads(extra)["deadline_misses"] == sum(s[3] for s in segs)


def _wait_for_replay(proc: subprocess.Popen, out: Path, replay_key: str) -> None:
    """Until the replay cell runs: the static cell is committed and the lock is held."""
    deadline = time.monotonic() + 300
    store = out / "results.sqlite"
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists():
            db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
            try:
                kinds = [r[0] for r in db.execute("SELECT kind FROM cells")]
            except sqlite3.OperationalError:
                kinds = []
            finally:
                db.close()
            if kinds == ["static"]:
                time.sleep(1.5)  # into the 2000-sample replay stream
                return
        time.sleep(0.1)
    raise AssertionError(f"the run never reached its replay: {proc.poll()}")


def _start_long_run(tmp: Path) -> tuple[subprocess.Popen, Path, str]:
    profile = _tiny(tmp, duration_s=6000.0, deadline_ms=50.0)
    replay_key = next(c.key for c in expand(load_profile(profile)) if c.kind == "replay")
    out = tmp / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(profile), "--out", str(out)],
        cwd=tmp, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _wait_for_replay(proc, out, replay_key)
    return proc, out, str(profile)


@pytest.mark.slow
def test_second_run_is_locked_out_and_ctrl_c_in_replay_stops_within_2s(tmp_path):
    proc, out, profile = _start_long_run(tmp_path)
    try:
        assert lock_holder(out) == f"pid {proc.pid}"
        for extra in ((), ("--resume",)):
            second = _cli("run", profile, "--out", str(out), *extra, cwd=tmp_path, timeout=120)
            assert second.returncode == 2, second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
            assert "in use by another sentryfuse run" in second.stderr
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130 and elapsed < 2.0, (elapsed, err[-2000:])
    last = err.strip().splitlines()[-1]
    assert "interrupted; 1 finished cells are kept" in last
    assert last.endswith(f"continue with: sentryfuse run {profile} --out {out} --resume")
    assert lock_holder(out) is None
    # the interrupted replay was not stored; --resume would run exactly the rest
    db = sqlite3.connect(out / "results.sqlite")
    assert [r[0] for r in db.execute("SELECT kind FROM cells")] == ["static"]


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once(tmp_path):
    proc, out, _ = _start_long_run(tmp_path)
    try:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130 and elapsed < 2.0, (elapsed, err[-2000:])


def test_dry_run_after_a_run_marks_every_cell_done_and_writes_nothing(finished):
    tmp, profile, _ = finished
    out = tmp / "runs" / "tiny"
    before = sorted((str(p), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file())
    res = _cli("run", profile.name, "--dry-run", cwd=tmp)
    assert res.returncode == 0, res.stderr
    marks = [ln.split()[1] for ln in res.stdout.splitlines()[:-1]]
    assert marks == ["done"] * 3
    assert "tiny: 3 cells (3 finished), 0 to run" in res.stdout
    after = sorted((str(p), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file())
    assert [p for p, _ in after] == [p for p, _ in before]


def test_users_file_in_out_report_survives(tmp_path):
    """The data-safety case through the real command: the run refuses before any work."""
    profile = _tiny(tmp_path)
    mine = tmp_path / "out" / "report" / "mine.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("precious")
    res = _cli("run", str(profile), "--out", "out", cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "not written by sentryfuse" in res.stderr
    assert mine.read_text() == "precious"
    assert sorted(os.listdir(tmp_path / "out")) == ["report"]
    assert sorted(os.listdir(mine.parent)) == ["mine.txt"]


def test_part_of_a_grid_first_then_the_whole_resumes_it(tmp_path):
    """A long grid's part run first (the same profile name, a narrower grid) fills the
    same store: the whole profile then skips those cells and reuses their checkpoint."""
    part = tmp_path / "part.toml"
    part.write_text(tiny_profile("grid", grid={"methods": ["sentrygate"]}, dense_baseline=False))
    whole = tmp_path / "whole.toml"
    whole.write_text(tiny_profile("grid", grid={"methods": ["sentrygate", "magnitude"]},
                                  dense_baseline=False))  # fmt: skip
    first = _cli("run", str(part), "--out", "out", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    trained = sorted((tmp_path / "out" / "checkpoints").iterdir())
    stamp = [(p / "model.safetensors").stat().st_mtime_ns for p in trained]
    rest = _cli("run", str(whole), "--out", "out", "--resume", cwd=tmp_path)
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert "1 ran ok, 0 failed, 1 already finished" in rest.stdout
    assert [(p / "model.safetensors").stat().st_mtime_ns for p in trained] == stamp
    # the checkpoint was reused, not retrained (no `trained <checkpoint>` progress line)
    assert not [ln for ln in rest.stderr.splitlines() if ln.startswith("trained ")]
    assert [ln for ln in first.stderr.splitlines() if ln.startswith("trained ")]
