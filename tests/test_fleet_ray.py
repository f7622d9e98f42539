"""The fleet on a real local Ray cluster (loopback only, no mocks of Ray).

One module-scoped cluster: a head without devices, two CPU devices (``cpu:a``,
``cpu:b``) and a simulated Jetson (``jetson:orin-nano-01``: the real CPU target under
the jetson name, injected on the nodes by ``fleet_targets:factory``). Tests that kill a
node add their own node first, so the others keep theirs. Every test is bounded by an
alarm, every subprocess by a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the fleet extra is not installed (pip install '.[fleet]')")

import fleet_targets  # noqa: E402
from profile_helpers import tiny_profile  # noqa: E402

from harness import cli  # noqa: E402
from harness.cells import expand  # noqa: E402
from harness.fleet.cluster import LOOPBACK, keep_ray_on_loopback  # noqa: E402
from harness.fleet.driver import run_fleet_suite  # noqa: E402
from harness.fleet.resources import node_resources  # noqa: E402
from harness.profile import load_profile  # noqa: E402
from harness.suite import run_suite  # noqa: E402
from reports.fleet import device_table, device_view  # noqa: E402
from reports.store import load_store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FACTORY = "fleet_targets:factory"


# 4 cell groups (power mode x runtime) of 4 cells: more units than devices
FOUR_GROUPS = {"power_modes": ["max", "single"], "runtimes": ["torch", "onnxruntime"]}


def _profile(
    tmp_path: Path, targets: list[str], duration_s: float = 0.05, **grid: list[str]
) -> Path:
    text = tiny_profile(
        "fleet",
        grid={"conditions": ["all", "drop:a"], "targets": targets, **grid},
        train={"scorer_final_steps": 4},
        eval={"max_train": 256, "max_test": 128, "calib_samples": 32},
        measure={"min_duration_s": duration_s, "min_count": 10, "trials": 2},
    )
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _bounded():
    """No test here may hang: SIGALRM interrupts the driver's wait loop."""

    def _timeout(*_):
        raise TimeoutError("fleet test exceeded 300 s")

    old = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(300)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def cluster():
    keep_ray_on_loopback()
    old_path = os.environ.get("PYTHONPATH")
    # the nodes' workers import our code and the injected factory from this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(ROOT / "tests")] + ([old_path] if old_path else [])
    )
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "node_ip_address": LOOPBACK,
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3},
        },
    )
    try:
        for kind, device in (("cpu", "a"), ("cpu", "b"), ("jetson", "orin-nano-01")):
            add_device(c, kind, device)
        yield c
    finally:
        c.shutdown()
        if old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_path


def add_device(c, kind: str, device: str):
    node = c.add_node(node_ip_address=LOOPBACK, num_cpus=1, resources=node_resources(kind, device))
    c.wait_for_nodes()
    return node


def _cells(store: Path) -> dict[str, dict]:
    if not store.exists():
        return {}
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute("SELECT * FROM cells").fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
    return {r["cell_key"]: {**dict(r), "extra": json.loads(r["extra_json"] or "{}")} for r in rows}


def _iso(s: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(s).timestamp()


def test_two_kinds_land_on_their_nodes_like_a_single_machine_run(cluster, tmp_path):
    path = _profile(tmp_path, ["cpu", "jetson"])
    profile = load_profile(path, target_factory=fleet_targets.factory)
    fleet = run_fleet_suite(
        profile, tmp_path / "fleet", cluster.address, target_factory_ref=FACTORY,
        cache_dir=tmp_path / "node-cache",
    )  # fmt: skip
    assert (fleet.total, fleet.ok, fleet.failed) == (8, 8, 0)
    rows = _cells(fleet.store_path)
    assert set(rows) == {c.key for c in expand(profile)}
    where = {"cpu": {"a", "b"}, "jetson": {"orin-nano-01"}}
    for row in rows.values():
        device = row["extra"]["device"]
        assert device["device_id"] in where[row["target"]], row["target"]
        assert device["resource"] == f"sentryfuse/{row['target']}"
        assert device["fingerprint"]["target"] == row["target"]  # the node's own fingerprint
        assert len(device["fingerprint_hash"]) == 64
        assert row["latency_n"] >= 10
    spans: dict[tuple[str, str], list[float]] = {}  # (device, group) -> [start, end]
    for row in rows.values():
        key = (row["extra"]["device"]["device_id"], row["target"])  # one group per target here
        span = spans.setdefault(key, [float("inf"), 0.0])
        span[0] = min(span[0], _iso(row["started_at"]))
        span[1] = max(span[1], _iso(row["finished_at"]))
    for device in {d for d, _ in spans}:  # one unit at a time per device
        mine = sorted(v for (d, _), v in spans.items() if d == device)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:], strict=False))
    # the same suite on one machine: same cell keys, same statuses
    single_out = tmp_path / "single"
    (single_out / "checkpoints").mkdir(parents=True)
    for ck in (tmp_path / "fleet" / "checkpoints").iterdir():  # reuse, do not retrain
        os.symlink(ck, single_out / "checkpoints" / ck.name)
    single = run_suite(profile, single_out, target_factory=fleet_targets.factory)
    single_rows = _cells(single.store_path)
    assert {k: r["status"] for k, r in single_rows.items()} == {
        k: r["status"] for k, r in rows.items()
    }
    # the report groups by device fingerprint; check compares device by device
    fleet_store = load_store(fleet.store_path)
    table = device_table(fleet_store)
    assert sorted(table["targets"]) == ["cpu", "jetson"] and table["cells ok"].sum() == 8
    assert set(table[table["targets"] == "jetson"]["devices"]) == {"orin-nano-01"}
    view = device_view(fleet_store)
    assert view.cells["run_id"].nunique() == 2 and set(view.runs["fingerprint_hash"]) == {
        r["extra"]["device"]["fingerprint_hash"] for r in rows.values()
    }
    assert device_table(load_store(single.store_path))["cells ok"].tolist() == [8]
    out_dir = str(tmp_path / "fleet")
    assert cli.main(["check", "--baseline", out_dir, "--candidate", out_dir]) in (0, 3)
    # the single machine's one fingerprint covers both targets: not the fleet's devices
    assert cli.main(["check", "--baseline", out_dir, "--candidate", str(single_out)]) == 2


def test_cluster_without_a_node_for_a_target_fails_before_any_cell(cluster, tmp_path, capsys):
    path = _profile(tmp_path, ["cpu", "cuda"])
    out = tmp_path / "out"
    rc = cli.main(["run", str(path), "--out", str(out), "--cluster", cluster.address])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "'sentryfuse/cuda'" in err[0] and "ray start --address" in err[0]
    assert not (out / "results.sqlite").exists()


def test_unreachable_cluster_address_is_one_line_exit_2(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    path = _profile(tmp_path, ["cpu"])
    out = tmp_path / "out"
    t0 = time.monotonic()
    rc = cli.main(["run", str(path), "--out", str(out), "--cluster", f"{LOOPBACK}:{port}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no Ray head answers" in err[0], err
    assert time.monotonic() - t0 < 60
    assert not (out / "results.sqlite").exists()
    rc = cli.main(["run", str(path), "--out", str(out), "--cluster", "local:0"])
    assert rc == 2 and "from 1 to 16" in capsys.readouterr().err


def _busy(node) -> bool:
    """A worker of ``node``'s raylet is executing a unit now (Ray titles a worker process
    ``ray::<task name>`` while it runs a task and ``ray::IDLE`` otherwise)."""
    raylet = node.all_processes["raylet"][0].process.pid
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            title = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == raylet and title.startswith(b"ray::run_unit_task"):
            return True
    return False


def _kill_mid_cell(cluster, node) -> threading.Thread:
    """SIGKILL ``node`` (no grace) half a second into a unit: it dies mid-unit."""

    def watch() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if _busy(node):
                time.sleep(0.5)
                cluster.remove_node(node, allow_graceful=False)
                return
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_node_killed_mid_suite_its_cell_is_retried_on_another_node(cluster, tmp_path):
    node = add_device(cluster, "cpu", "c")
    path = _profile(tmp_path, ["cpu"], 0.4, **FOUR_GROUPS)
    profile = load_profile(path)
    out = tmp_path / "out"
    killer = _kill_mid_cell(cluster, node)
    s = run_fleet_suite(profile, out, cluster.address, cache_dir=tmp_path / "node-cache")
    killer.join(5)
    rows = _cells(s.store_path)
    assert (s.total, s.ok, s.failed) == (16, 16, 0)
    retried = [r for r in rows.values() if r["extra"]["fleet"]["attempts"] == 2]
    assert retried, "no cell was in flight on the killed node"
    for r in retried:
        assert r["extra"]["fleet"]["lost"] and r["extra"]["device"]["device_id"] in {"a", "b"}


def test_last_node_of_a_kind_killed_its_cells_fail_with_the_reason(cluster, tmp_path):
    node = add_device(cluster, "cuda", "gpu-01")
    path = _profile(tmp_path, ["cuda"], 0.4, **FOUR_GROUPS)
    profile = load_profile(path, target_factory=fleet_targets.factory)
    out = tmp_path / "out"
    killer = _kill_mid_cell(cluster, node)
    s = run_fleet_suite(
        profile, out, cluster.address, target_factory_ref=FACTORY, cache_dir=tmp_path / "nc"
    )
    killer.join(5)
    rows = _cells(s.store_path)
    assert s.total == 16 and s.failed >= 4 and s.ok + s.failed == 16
    for r in rows.values():
        if r["status"] != "ok":
            assert r["error"].startswith("NodeLost:") and "cuda" in r["error"], r["error"]


def test_driver_kill_9_then_resume_finishes_exactly_the_grid(cluster, tmp_path):
    path = _profile(tmp_path, ["cpu"], 0.2, **FOUR_GROUPS)
    expected = {c.key for c in expand(load_profile(path))}
    out = tmp_path / "out"
    store = out / "results.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(out),
            "--cluster", cluster.address]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and len(_cells(store)) < 2:
        time.sleep(0.05)
    assert proc.poll() is None, "the driver ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    before = _cells(store)
    assert 2 <= len(before) < len(expected)
    resumed = subprocess.run([*argv, "--resume"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=240)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(before)} already finished" in resumed.stdout
    after = _cells(store)
    assert set(after) == expected and all(r["status"] == "ok" for r in after.values())
    for key, row in before.items():  # finished cells were not redone
        assert (
            after[key]["run_id"] == row["run_id"] and after[key]["started_at"] == row["started_at"]
        )
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_user_onnx_model_is_shipped_by_content_hash_into_the_node_cache(cluster, tmp_path):
    import onnx
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    src = tmp_path / "driver-only"
    src.mkdir()
    onnx_path = src / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net.eval(), (torch.randn(1, 4),), str(onnx_path), input_names=["x"],
            output_names=["out"], opset_version=17, dynamo=False,
        )  # fmt: skip
    (src / "ext").mkdir()  # the same network with its weights in an external-data file
    onnx.save_model(
        onnx.load(str(onnx_path)), str(src / "ext" / "mlp.onnx"), save_as_external_data=True,
        all_tensors_to_one_file=True, location="w.bin", size_threshold=0,
    )  # fmt: skip
    (src / "mine.toml").write_text(
        'name = "mine"\n[[models]]\nname = "mlp"\npath = "mlp.onnx"\n'
        '[[models]]\nname = "mlpx"\npath = "ext/mlp.onnx"\n'
        '[grid]\ntargets = ["cpu"]\nruntimes = ["onnxruntime"]\npower_modes = ["single"]\n'
        "[measure]\nwarmup_s = 0.0\nmin_duration_s = 0.05\nmin_count = 10\ntrials = 2\n"
    )
    profile = load_profile(src / "mine.toml")
    s = run_fleet_suite(profile, tmp_path / "out", cluster.address, cache_dir=tmp_path / "nc")
    assert (s.total, s.ok, s.failed) == (2, 2, 0)
    rows = {r["backbone"]: r for r in _cells(s.store_path).values()}
    models = tmp_path / "nc" / "artifacts" / "models"
    plain, ext = profile.models
    local = models / f"{plain.sha256}.onnx"
    assert rows["mlp"]["extra"]["model_file"] == str(local)  # the node read its own copy
    assert rows["mlp"]["extra"]["model_path"] == str(onnx_path.resolve())  # provenance
    assert local.read_bytes() == onnx_path.read_bytes()
    local_ext = models / ext.sha256 / "mlp.onnx"  # laid out as it was, weights beside it
    assert rows["mlpx"]["extra"]["model_file"] == str(local_ext)
    assert (local_ext.parent / "w.bin").read_bytes() == (src / "ext" / "w.bin").read_bytes()
    assert not list(models.glob(".tmp-*"))


def test_tensorrt_engines_are_built_on_the_device_once_and_reused(cluster, tmp_path):
    """Fake TensorRT on a simulated GPU node (``fleet_targets``): two power-mode groups
    measure the same variants, so the second group reuses every engine, and a later run
    on the same device (as a ``--resume`` would) builds none."""
    node = add_device(cluster, "cuda", "gpu-02")
    try:
        path = _profile(tmp_path, ["cuda"], runtimes=["tensorrt"], power_modes=["max", "single"])
        profile = load_profile(path, target_factory=fleet_targets.factory)
        cache = tmp_path / "nc"
        s = run_fleet_suite(
            profile, tmp_path / "out", cluster.address, target_factory_ref=FACTORY, cache_dir=cache
        )
        assert (s.total, s.ok, s.failed) == (8, 8, 0)
        rows = sorted(_cells(s.store_path).values(), key=lambda r: r["started_at"])
        by_key: dict[str, list[bool]] = {}
        for r in rows:
            by_key.setdefault(r["extra"]["engine"]["key"], []).append(
                r["extra"]["engine"]["reused"]
            )
        assert all(flags == [False, True] for flags in by_key.values()), by_key
        log = cache / "engines" / fleet_targets.BUILD_LOG
        assert len(log.read_text().splitlines()) == len(by_key)  # one build per engine key
        (tmp_path / "again" / "checkpoints").mkdir(parents=True)
        for ck in (tmp_path / "out" / "checkpoints").iterdir():  # reuse, do not retrain
            os.symlink(ck, tmp_path / "again" / "checkpoints" / ck.name)
        again = run_fleet_suite(
            profile, tmp_path / "again", cluster.address, target_factory_ref=FACTORY,
            cache_dir=cache,
        )  # fmt: skip
        assert again.ok == 8
        assert all(r["extra"]["engine"]["reused"] for r in _cells(again.store_path).values())
        assert len(log.read_text().splitlines()) == len(by_key)
    finally:
        cluster.remove_node(node)
