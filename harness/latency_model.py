"""A measured latency (and energy) model of a model's pruned shapes on one deployment.

A latency or energy budget can only be met by choosing the pruning from what the device
*measured*: FLOPs do not predict batch-1 latency (fixed per-op costs, kernel widths,
threads). ``build_latency_model`` exports the variant the method would deploy at each
sparsity of a grid, runs it on the target under the active power mode, and records p50/p99
latency and energy per inference: one ``LatencyModel`` per target × runtime × power mode
× present sensors. ``LatencyModelCache`` keeps them in the results store (its own table,
created by its own statement) keyed by everything that changes the answer, the device
fingerprint included, so a rerun on the same device reuses them and another device
measures its own.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.profile_schema import canonical_json, sha256_hex
from harness.store import utc_now

# Sparsities a budget policy chooses from (the least pruning that meets the budget).
BUDGET_SPARSITIES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CALLS_PER_POINT = 200  # p99 of 200 calls: the 2nd-largest; enough to see a 1% tail
WARMUP_CALLS = 10

_TABLE = """
CREATE TABLE IF NOT EXISTS latency_models (
    model_key        TEXT PRIMARY KEY,
    target           TEXT NOT NULL,
    runtime          TEXT NOT NULL,
    power_mode       TEXT NOT NULL,
    fingerprint_json TEXT NOT NULL,
    definition_json  TEXT NOT NULL,
    points_json      TEXT NOT NULL,
    created_at       TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class LatencyPoint:
    """One measured sparsity: batch-1 latency percentiles and energy per inference."""

    sparsity: float
    latency_ms_p50: float
    latency_ms_p99: float
    energy_mj: float | None = None
    energy_source: str | None = None


@dataclass(frozen=True)
class LatencyModel:
    """Measured points, ascending in sparsity, and the key they are cached under."""

    key: str
    points: tuple[LatencyPoint, ...]
    cached: bool = False  # True when read back from the store rather than measured now

    def to_json(self) -> str:
        return json.dumps([asdict(p) for p in self.points])

    @classmethod
    def from_json(cls, key: str, text: str, cached: bool = True) -> LatencyModel:
        return cls(key, tuple(LatencyPoint(**p) for p in json.loads(text)), cached)


def model_key(definition: Mapping[str, Any], fingerprint: Mapping[str, Any]) -> str:
    """Hash of what was measured (variant source, sensors, grid, runtime, mode) and where."""
    return sha256_hex(canonical_json({"definition": definition, "fingerprint": fingerprint}))


def measure_point(
    runner: Any,
    inputs: Sequence[Mapping[str, np.ndarray]],
    sensor: Any,
    sparsity: float,
    calls: int = CALLS_PER_POINT,
    clock: Callable[[], float] = time.perf_counter,
) -> LatencyPoint:
    """Time ``calls`` batch-1 calls (cycling over ``inputs``) after a warm-up, inside one
    energy window when the sensor is available."""
    for i in range(WARMUP_CALLS):
        runner(inputs[i % len(inputs)])
    lat: list[float] = []
    window = sensor.window() if sensor.available().ok else contextlib.nullcontext(None)
    with window as win:
        runner.synchronize()
        for i in range(calls):
            t0 = clock()
            runner(inputs[i % len(inputs)])
            runner.synchronize()
            lat.append((clock() - t0) * 1e3)
    reading = getattr(win, "reading", None)
    p50, p99 = np.percentile(lat, [50, 99])
    energy = None if reading is None else reading.charged_mj(p50 / 1e3, calls) / calls
    return LatencyPoint(
        float(sparsity), float(p50), float(p99), energy, None if reading is None else reading.source
    )


def build_latency_model(
    variant_at: Callable[[float], Any],
    inputs: Sequence[Mapping[str, np.ndarray]],
    target: Any,
    runtime: str,
    workdir: Path,
    key: str,
    sparsities: Sequence[float] = BUDGET_SPARSITIES,
    calls: int = CALLS_PER_POINT,
) -> LatencyModel:
    """Export ``variant_at(s)`` for every sparsity and measure it on ``target`` under the
    power mode that is active now (the caller sets it)."""
    sensor = target.energy_sensor()
    points = []
    for s in sorted(sparsities):
        runner = target.export(variant_at(s).eval(), inputs[0], runtime, workdir / f"lm-{s:.2f}")
        try:
            points.append(measure_point(runner, inputs, sensor, s, calls))
        finally:
            runner.close()
    return LatencyModel(key, tuple(points))


class LatencyModelCache:
    """Latency models in the results store's own ``latency_models`` table."""

    def __init__(self, store_path: Path) -> None:
        self.path = Path(store_path)

    @contextlib.contextmanager
    def _db(self):  # type: ignore[no-untyped-def]
        conn = sqlite3.connect(self.path, timeout=30)
        try:
            with conn:
                conn.execute(_TABLE)
                yield conn
        finally:
            conn.close()

    def get(self, key: str) -> LatencyModel | None:
        with self._db() as db:
            row = db.execute(
                "SELECT points_json FROM latency_models WHERE model_key = ?", (key,)
            ).fetchone()
        return None if row is None else LatencyModel.from_json(key, row[0])

    def put(
        self,
        model: LatencyModel,
        definition: Mapping[str, Any],
        fingerprint: Mapping[str, Any],
    ) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO latency_models VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model.key,
                    str(fingerprint.get("target", definition.get("target", ""))),
                    str(definition["runtime"]),
                    str(definition["power_mode"]),
                    canonical_json(fingerprint),
                    canonical_json(definition),
                    model.to_json(),
                    utc_now(),
                ),
            )
