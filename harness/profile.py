"""Load a TOML profile and validate it into frozen objects before anything runs.

Every problem is a ``ProfileError`` whose one-line message is
``file: key: problem (did you mean 'x'?)`` so a user can fix the profile without reading
code. Names are checked against the registries of the parts that use them
(``harness.registry``); power modes against the target's own list when the target is
available here (a Jetson profile still validates on a laptop).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import registry
from harness.dropout import parse_condition
from harness.offline import SCENARIOS
from harness.policy import read_budgets
from harness.profile_schema import (
    EvalSettings,
    FinetuneSettings,
    Grid,
    MeasureSettings,
    Profile,
    ReplayEvent,
    ReplaySettings,
    TrainSettings,
    UserModel,
)
from harness.reader import Section, check_name, fail
from sentryfuse.errors import ProfileError, SentryFuseError
from sentryfuse.train_config import SUBNET_GRADS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pyproject pulls tomli on 3.10
    import tomli as tomllib

TargetFactory = Callable[[str], Any]
_TOP_KEYS = ("name", "description", "dense_baseline")
_SECTIONS = ("grid", "measure", "train", "eval", "finetune", "replay", "models")


def load_profile(path: str | Path, *, target_factory: TargetFactory | None = None) -> Profile:
    """Read and validate ``path``; raise ``ProfileError`` on the first problem."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ProfileError(f"{file}: file not found (check the path; profiles/ has examples)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{file}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{file}: not a UTF-8 text file") from None
    return parse_profile(
        raw, file, target_factory=target_factory or registry.default_target_factory
    )


def parse_profile(
    raw: dict[str, Any],
    file: str,
    *,
    target_factory: TargetFactory,
    models: tuple[UserModel, ...] | None = None,
) -> Profile:
    """``models``: the ``[[models]]`` entries as the driver parsed them, for a fleet node
    that has the files by content hash in its cache, not at the driver's paths."""
    top = Section(file, "", raw, allowed=_TOP_KEYS + _SECTIONS)
    name = top.str("name", default=Path(file).stem)
    description = top.str("description", default="")
    dense_baseline = top.bool("dense_baseline", default=True)
    if "models" in top.unread():  # a suite of the user's own ONNX files (harness/usermodel.py)
        return _models_profile(top, file, name, description, target_factory, models)
    grid = _grid(top.section("grid", required=True), target_factory)
    measure = _measure(top.section("measure"))
    train = _train(top.section("train"))
    eval_ = _eval(top.section("eval"))
    finetune = _finetune(top.section("finetune"))
    replay_sec = top.section("replay", required=False)
    replay = _replay(replay_sec, grid, target_factory) if replay_sec.present else None
    top.done()
    return Profile(
        name, description, file, grid, measure, train, eval_, finetune, replay, dense_baseline
    )


def _models_profile(
    top: Section,
    file: str,
    name: str,
    description: str,
    target_factory: TargetFactory,
    given: tuple[UserModel, ...] | None,
) -> Profile:
    from harness.usermodel import parse_model_grid, parse_models

    tables = top.tables("models")
    models = given if given is not None else parse_models(tables, Path(file).parent)
    grid = parse_model_grid(top.section("grid", required=True), target_factory)
    measure = _measure(top.section("measure"))
    top.done()
    return Profile(name, description, file, grid, measure, dense_baseline=False, models=models)


def _grid(s: Section, target_factory: TargetFactory) -> Grid:
    datasets = s.names("datasets", registry.dataset_names(), kind="dataset", allow_path=True)
    backbones = s.names("backbones", registry.backbone_names(), kind="backbone")
    attentions = s.names("attentions", registry.attention_names(), kind="attention")
    methods = s.names("methods", _method_choices(), kind="method")
    sparsities = s.floats("sparsities")
    for i, sp in enumerate(sparsities):
        if not 0.0 <= sp < 1.0:
            fail(
                file=s.file,
                key=f"{s.key('sparsities')}[{i}]",
                problem=f"sparsity {sp} is out of range; use a fraction in [0, 1)",
            )
    conditions = s.per_name("conditions", datasets, kind="dataset", item=_condition_item(s.file))
    targets = s.names("targets", registry.target_names(), kind="target")
    runtimes = s.strs("runtimes")  # checked per target below (a target knows its runtimes)
    modes = s.per_name(
        "power_modes", targets, kind="target", item=None, default=(registry.CURRENT_MODE,)
    )
    seeds = s.ints("seeds", default=(0,))
    batch_sizes = s.ints("batch_sizes", default=())
    if any(b < 1 for b in batch_sizes):
        fail(file=s.file, key=s.key("batch_sizes"), problem="batch sizes must be ≥ 1")
    scenarios = s.names("scenarios", SCENARIOS, kind="scenario", default=())
    s.done()
    for target in targets:
        _check_target(
            s.file,
            s.key("runtimes"),
            target,
            runtimes,
            dict(modes)[target],
            s.key("power_modes"),
            target_factory,
        )
    return Grid(
        datasets,
        backbones,
        attentions,
        methods,
        sparsities,
        conditions,
        targets,
        runtimes,
        modes,
        seeds,
        batch_sizes,
        scenarios,
    )


def _method_choices() -> tuple[str, ...]:
    zero_shot = registry.method_names()
    return zero_shot + tuple(f"{m}+ft" for m in zero_shot)


def _condition_item(file: str) -> Callable[[str, str], None]:
    def check(key: str, value: str) -> None:
        try:
            parse_condition(value)
        except SentryFuseError as exc:
            fail(file=file, key=key, problem=str(exc))

    return check


def _check_target(
    file: str,
    runtimes_key: str,
    target_name: str,
    runtimes: tuple[str, ...],
    modes: tuple[str, ...],
    modes_key: str,
    target_factory: TargetFactory,
) -> None:
    """Check runtimes and power modes against the target itself where it can answer."""
    target = target_factory(target_name)
    if target is None or not target.availability().ok:
        for i, rt in enumerate(runtimes):
            check_name(file, f"{runtimes_key}[{i}]", rt, registry.KNOWN_RUNTIMES, "runtime")
        return
    supported = tuple(target.runtimes())
    for i, rt in enumerate(runtimes):
        if rt not in supported:
            check_name(file, f"{runtimes_key}[{i}]", rt, supported, f"{target_name} runtime")
    power = target.power_modes()
    if not power.available().ok:
        valid = (registry.CURRENT_MODE,)
    else:
        valid = tuple(m.name for m in power.list()) + (registry.CURRENT_MODE,)
    for i, mode in enumerate(modes):
        check_name(file, f"{modes_key}[{i}]", mode, valid, f"{target_name} power mode")


def _measure(s: Section) -> MeasureSettings:
    d = MeasureSettings()
    m = MeasureSettings(
        warmup_s=s.float("warmup_s", d.warmup_s, minimum=0.0),
        warmup_n=s.int("warmup_n", d.warmup_n, minimum=0),
        min_duration_s=s.float("min_duration_s", d.min_duration_s, minimum=0.0),
        min_count=s.int("min_count", d.min_count, minimum=1),
        batch_size=s.int("batch_size", d.batch_size, minimum=1),
        percentiles=s.floats("percentiles", default=d.percentiles),
        cv_warn=s.float("cv_warn", d.cv_warn, minimum=0.0),
        trials=s.int("trials", d.trials, minimum=1),
        max_trial_spread=s.float("max_trial_spread", d.max_trial_spread, minimum=0.0),
    )
    for i, p in enumerate(m.percentiles):
        if not 0.0 < p < 100.0:
            fail(
                file=s.file,
                key=f"{s.key('percentiles')}[{i}]",
                problem=f"percentile {p} is out of range; use a number in (0, 100)",
            )
    s.done()
    return m


def _train(s: Section) -> TrainSettings:
    d = TrainSettings()
    t = TrainSettings(
        epochs=s.int("epochs", d.epochs, minimum=1),
        size=s.choice("size", registry.MODEL_SIZES, d.size),
        batch_size=s.int("batch_size", d.batch_size, minimum=1),
        lr=s.float("lr", d.lr, minimum=0.0),
        scorer_final_steps=s.int("scorer_final_steps", None, minimum=0),
        subnet=s.bool("subnet", d.subnet),
        subnet_ranking=s.choice("subnet_ranking", ("scorer", "random"), d.subnet_ranking),
        distill=s.bool("distill", d.distill),
        subnet_freeze_epochs=s.float("subnet_freeze_epochs", None, minimum=0.0),
        subnet_weight=s.float("subnet_weight", None, minimum=0.0),
        subnet_grad=s.choice("subnet_grad", SUBNET_GRADS, None),
    )
    if t.subnet_weight == 0.0:
        fail(
            file=s.file,
            key=s.key("subnet_weight"),
            problem="must be > 0; to train without sub-network passes set subnet = false",
        )
    if t.subnet_freeze_epochs is not None and t.subnet_freeze_epochs > t.epochs:
        fail(
            file=s.file,
            key=s.key("subnet_freeze_epochs"),
            problem=f"{t.subnet_freeze_epochs:g} is more than epochs ({t.epochs}); "
            f"use 0..{t.epochs}",
        )
    s.done()
    return t


def _eval(s: Section) -> EvalSettings:
    d = EvalSettings()
    e = EvalSettings(
        max_train=s.int("max_train", None, minimum=1),
        max_test=s.int("max_test", None, minimum=1),
        batch_size=s.int("batch_size", d.batch_size, minimum=1),
        calib_samples=s.int("calib_samples", d.calib_samples, minimum=1),
    )
    s.done()
    return e


def _finetune(s: Section) -> FinetuneSettings:
    d = FinetuneSettings()
    f = FinetuneSettings(
        steps=s.int("steps", d.steps, minimum=1), lr=s.float("lr", d.lr, minimum=0.0)
    )
    s.done()
    return f


def _replay(s: Section, grid: Grid, target_factory: TargetFactory) -> ReplaySettings:
    dataset = s.choice("dataset", grid.datasets, grid.datasets[0])
    backbone = s.choice("backbone", grid.backbones, grid.backbones[0])
    attention = s.choice("attention", grid.attentions, grid.attentions[0])
    target = s.choice("target", grid.targets, grid.targets[0])
    runtime = s.choice("runtime", grid.runtimes, grid.runtimes[0])
    methods = s.names("methods", _method_choices(), kind="method")
    duration_s = s.float("duration_s", 60.0, minimum=0.0)
    rate_hz = s.float("rate_hz", 10.0, minimum=0.0)
    deadline_ms = s.float("deadline_ms", 10.0, minimum=0.0)
    policy_sec = s.section("policy", required="budgets" not in s.unread())
    policy = policy_sec.float_table() if policy_sec.present else ()
    budgets = read_budgets(s.section("budgets"), policy)
    for mode, sp in policy:
        if not 0.0 <= sp < 1.0:
            fail(
                file=s.file,
                key=policy_sec.key(mode),
                problem=f"sparsity {sp} is out of range; use a fraction in [0, 1)",
            )
    modes = tuple(m for m, _ in policy) + tuple(m for m, _, _ in budgets)
    events = tuple(
        _event(ev, i, duration_s, dict.fromkeys(modes, 0.0))
        for i, ev in enumerate(s.tables("events"))
    )
    s.done()
    if duration_s <= 0 or rate_hz <= 0:
        fail(
            file=s.file,
            key=s.key("duration_s"),
            problem="duration_s and rate_hz must be > 0 so the stream has samples",
        )
    if events[0].t_s != 0.0 or events[0].present is None or events[0].power_mode is None:
        fail(
            file=s.file,
            key=s.key("events[0]"),
            problem="the first event must be at t_s = 0 and set both present and power_mode",
        )
    times = [e.t_s for e in events]
    if times != sorted(times) or len(set(times)) != len(times) or times[-1] >= duration_s:
        fail(
            file=s.file,
            key=s.key("events"),
            problem="event times must be strictly increasing and below duration_s",
        )
    _check_target(
        s.file, s.key("runtime"), target, (runtime,), modes, s.key("policy"), target_factory
    )
    return ReplaySettings(
        dataset,
        backbone,
        attention,
        target,
        runtime,
        methods,
        events,
        duration_s,
        rate_hz,
        deadline_ms,
        policy,
        budgets,
    )


def _event(ev: Section, i: int, duration_s: float, policy: dict[str, float]) -> ReplayEvent:
    t_s = ev.float("t_s", None, minimum=0.0)
    if t_s is None or math.isnan(t_s):
        fail(file=ev.file, key=ev.key("t_s"), problem="missing; give the stream time in seconds")
    present = ev.strs("present", default=None)
    if present is not None and not present:
        fail(file=ev.file, key=ev.key("present"), problem="at least one sensor must be present")
    mode = ev.str("power_mode", default=None)
    if mode is not None:
        check_name(ev.file, ev.key("power_mode"), mode, tuple(policy), "power mode in the policy")
    ev.done()
    return ReplayEvent(t_s, present, mode)
