"""Expand a profile into cells in a deterministic order, each keyed by its definition.

A cell's key is the sha256 of the canonical JSON of everything that defines its result
(axes plus the training, evaluation, fine-tuning and measurement settings), so a rerun
finds finished cells by key, and changing a setting that changes results makes new
cells instead of silently mixing old numbers with new ones.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from harness.profile_schema import Profile, canonical_json, sha256_hex


@dataclass(frozen=True)
class Cell:
    kind: str  # 'static' | 'replay'
    dataset: str
    backbone: str
    attention: str
    method: str  # 'dense', a zero-shot method, or '<m>+ft'
    sparsity: float
    condition: str  # condition string, or 'replay'
    target: str
    runtime: str
    power_mode: str  # mode name, 'current', or 'timeline' for replay cells
    seed: int
    settings: tuple[tuple[str, Any], ...]  # sorted (name, JSON-safe value) pairs

    @property
    def definition(self) -> dict[str, Any]:
        d = asdict(self)
        d["settings"] = {k: v for k, v in self.settings}
        return d

    @property
    def definition_json(self) -> str:
        return canonical_json(self.definition)

    @property
    def key(self) -> str:
        return cell_key(self.definition)

    @property
    def base_method(self) -> str:
        return self.method.removesuffix("+ft")

    @property
    def finetuned(self) -> bool:
        return self.method.endswith("+ft")

    @property
    def batch_size(self) -> int:
        return int(dict(self.settings)["measure"]["batch_size"])

    @property
    def scenario(self) -> str:
        return str(dict(self.settings).get("scenario", "single-stream"))

    def label(self) -> str:
        extra = f" b{self.batch_size}" if self.batch_size != 1 else ""
        extra += f" {self.scenario}" if self.scenario != "single-stream" else ""
        return (
            f"{self.dataset}/{self.backbone}/{self.attention} {self.method}@{self.sparsity:g} "
            f"{self.condition} {self.target}/{self.runtime}/{self.power_mode} s{self.seed}{extra}"
        )


def cell_key(definition: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(definition))


def _settings(
    profile: Profile,
    finetuned: bool,
    replay: bool,
    batch_size: int | None = None,
    scenario: str = "single-stream",
) -> tuple[tuple[str, Any], ...]:
    d: dict[str, Any] = {
        "train": asdict(profile.train),
        "eval": asdict(profile.eval),
        "measure": asdict(profile.measure),
    }
    if batch_size is not None:  # grid batch_sizes; the default one keeps the old key
        d["measure"]["batch_size"] = batch_size
    if scenario != "single-stream":
        d["scenario"] = scenario
    if finetuned:
        d["finetune"] = asdict(profile.finetune)
    if replay and profile.replay is not None:
        r = asdict(profile.replay)
        r.pop("methods")
        if not r["budgets"]:  # profiles without budgets keep their cell keys
            r.pop("budgets")
        d["replay"] = r
    return tuple(sorted((k, _jsonable(v)) for k, v in d.items()))


def _jsonable(v: Any) -> Any:
    """Tuples -> lists, so the definition round-trips through JSON unchanged."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def expand(profile: Profile) -> list[Cell]:
    """All cells, in a fixed order: checkpoint axes outermost so checkpoints are reused."""
    g = profile.grid
    cells: list[Cell] = []
    seen: set[str] = set()
    for dataset, backbone, attention, seed in itertools.product(
        g.datasets, g.backbones, g.attentions, g.seeds
    ):
        for target, runtime in itertools.product(g.targets, g.runtimes):
            for condition in g.conditions_for(dataset):
                for mode in g.modes_for(target):
                    combos: list[tuple[str, float]] = []
                    if profile.dense_baseline:
                        combos.append(("dense", 0.0))
                    combos += [(m, s) for m in g.methods for s in g.sparsities]
                    shapes = itertools.product(
                        g.batch_sizes or (profile.measure.batch_size,),
                        g.scenarios or ("single-stream",),
                    )
                    for (method, sparsity), (batch, scenario) in itertools.product(
                        combos, list(shapes)
                    ):
                        ft = method.endswith("+ft")
                        cell = Cell(
                            "static",
                            dataset,
                            backbone,
                            attention,
                            method,
                            sparsity,
                            condition,
                            target,
                            runtime,
                            mode,
                            seed,
                            _settings(profile, ft, False, batch, scenario),
                        )
                        if cell.key not in seen:  # e.g. sparsity 0 listed for a method
                            seen.add(cell.key)
                            cells.append(cell)
    if profile.models:  # the user's own ONNX files (harness/usermodel.py)
        from harness.usermodel import model_cells

        cells += model_cells(profile)
    r = profile.replay
    if r is not None:
        for seed, method in itertools.product(g.seeds, r.methods):
            ft = method.endswith("+ft")
            sparsity = max((sp for _, sp in r.policy), default=0.0)  # budgets: chosen later
            cells.append(
                Cell(
                    "replay",
                    r.dataset,
                    r.backbone,
                    r.attention,
                    method,
                    sparsity,
                    "replay",
                    r.target,
                    r.runtime,
                    "timeline",
                    seed,
                    _settings(profile, ft, replay=True),
                )
            )
    return cells


def estimate_seconds(profile: Profile, cells: list[Cell]) -> float:
    """Prior wall time of ``cells`` (the cost model lives in ``harness.progress``)."""
    from harness.cellgroup import plan_groups
    from harness.progress import make_plan, plan_seconds

    return plan_seconds(profile, make_plan(profile, plan_groups(cells), {}))
