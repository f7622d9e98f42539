"""The frozen objects a profile validates into.

Every field that changes a result lives here, so a cell's definition (and its hash) can
be built from these objects alone and the store records exactly what ran.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Grid:
    """The axes a profile sweeps; conditions/power modes may differ per dataset/target."""

    datasets: tuple[str, ...]
    backbones: tuple[str, ...]
    attentions: tuple[str, ...]
    methods: tuple[str, ...]  # zero-shot names and '<m>+ft' fine-tuning baselines
    sparsities: tuple[float, ...]
    conditions: tuple[tuple[str, tuple[str, ...]], ...]  # ((dataset, (cond, ...)), ...)
    targets: tuple[str, ...]
    runtimes: tuple[str, ...]
    power_modes: tuple[tuple[str, tuple[str, ...]], ...]  # ((target, (mode, ...)), ...)
    seeds: tuple[int, ...]
    batch_sizes: tuple[int, ...] = ()  # () = [measure] batch_size only
    scenarios: tuple[str, ...] = ()  # () = single-stream only; 'offline' (harness/offline.py)

    def conditions_for(self, dataset: str) -> tuple[str, ...]:
        return dict(self.conditions)[dataset]

    def modes_for(self, target: str) -> tuple[str, ...]:
        return dict(self.power_modes)[target]


@dataclass(frozen=True)
class MeasureSettings:
    """MLPerf/trtexec-style window: warm-up excluded, min duration AND min count."""

    warmup_s: float = 0.2
    warmup_n: int = 10
    min_duration_s: float = 1.0
    min_count: int = 100
    batch_size: int = 1  # SingleStream: one query = one sample
    percentiles: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)
    cv_warn: float = 0.10  # trtexec warns at 1%; CPUs under a shared OS rarely get there
    # Replication (harness.trials): a cell is `trials` windows interleaved with its group;
    # it is stable when the relative MAD of its trial medians is at most max_trial_spread.
    trials: int = 5
    max_trial_spread: float = 0.05


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 5
    size: str = "small"  # 'tiny' | 'small' (model_config_for)
    batch_size: int = 64
    lr: float = 1e-3
    # SentryGate scorer steps after the last epoch (None: sentryfuse's default). Tiny test
    # profiles cut it, since it dominates the training time of a one-epoch model.
    scorer_final_steps: int | None = None
    # Prunability-aware training (sentryfuse.subnet_train); subnet = false is the old recipe.
    subnet: bool = True
    subnet_ranking: str = "scorer"  # 'scorer' | 'random' (structured-dropout control)
    distill: bool = True  # distil the full model into the sub-networks
    # Epochs at the end trained with SentryGate's ranking frozen (None: sentryfuse's
    # default, frozen where the sub-network passes start; 0: never frozen).
    subnet_freeze_epochs: float | None = None
    # Weight of the sub-network passes against the full pass (None: sentryfuse's 0.5);
    # lower trades some of the pruned accuracy for the full model's (BENCHMARKS.md, issue 10).
    subnet_weight: float | None = None
    # How the passes' gradient reaches the weights (None: sentryfuse's default,
    # "separate": its own Adam update; "sum": added to the full pass's, the recipe
    # before the eighth build).
    subnet_grad: str | None = None


@dataclass(frozen=True)
class EvalSettings:
    """Dataset slicing: limits keep CPU suites short; calib feeds calibration methods."""

    max_train: int | None = None
    max_test: int | None = None
    batch_size: int = 256
    calib_samples: int = 128


@dataclass(frozen=True)
class FinetuneSettings:
    """Budget of the '<m>+ft' baselines (same budget for every method, so it is fair)."""

    steps: int = 200
    lr: float = 1e-4


@dataclass(frozen=True)
class ReplayEvent:
    """At stream time ``t_s`` the present sensors and/or power mode change."""

    t_s: float
    present: tuple[str, ...] | None = None  # None: unchanged from the previous event
    power_mode: str | None = None


@dataclass(frozen=True)
class ReplaySettings:
    """A deployment replay: one stream, a timeline of changes, a policy mode -> sparsity."""

    dataset: str
    backbone: str
    attention: str
    target: str
    runtime: str
    methods: tuple[str, ...]
    events: tuple[ReplayEvent, ...]
    duration_s: float
    rate_hz: float  # stream samples per second of stream time (simulated, not slept)
    deadline_ms: float
    policy: tuple[tuple[str, float], ...]  # ((power mode, sparsity), ...)
    # ((power mode, 'deadline_ms' | 'energy_mj', value), ...): a target per mode, met by
    # the least pruning a measured latency model allows (harness/policy.py)
    budgets: tuple[tuple[str, str, float], ...] = ()

    def sparsity_for(self, mode: str) -> float:
        return dict(self.policy)[mode]

    def budget_for(self, mode: str) -> tuple[str, float] | None:
        """(kind, value) when ``mode`` has a target rather than a fixed sparsity."""
        return next(((k, v) for m, k, v in self.budgets if m == mode), None)


@dataclass(frozen=True)
class UserModel:
    """A user's own ONNX file benchmarked as a variant of a suite (``[[models]]``).

    Cells are keyed by ``name``, ``shapes`` and ``batch`` (not the file's bytes), so
    ``check`` compares two versions of the same model; ``sha256`` is the content digest
    (``targets.onnx_content``: the file and its external weights), stored with each cell
    so ``--resume`` refuses a store measured on other content."""

    name: str
    path: str  # absolute
    sha256: str
    shapes: tuple[tuple[str, tuple[int, ...]], ...]  # every input's concrete shape
    batch: int = 1
    external: tuple[str, ...] = ()  # external-data files, relative to the model's folder


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    source: str  # the file it came from (not part of the hash)
    grid: Grid
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    replay: ReplaySettings | None = None
    dense_baseline: bool = True
    models: tuple[UserModel, ...] = ()  # user ONNX files (harness/usermodel.py)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        if not self.models:
            d.pop("models")  # profiles without models hash as they always did
        for m in d.get("models", ()):
            if not m["external"]:
                m.pop("external")  # nor do models without external data
        return d

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    def profile_hash(self) -> str:
        return sha256_hex(self.to_json())


def canonical_json(obj: Any) -> str:
    """Key-sorted, compact JSON: the same definition always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
