"""Generate ``docs/profiles.md``, the profile reference, from the schema.

Keys, types and defaults come from the dataclasses in ``harness.profile_schema`` (via
``harness.profile_keys``), allowed names from the registries the validator checks
against; only the sentence describing each key is written here. Every schema key must
have one, and a test regenerates the file and fails when it differs from the committed
``docs/profiles.md``, so the reference cannot drift from what the validator accepts.

    python -m harness.profile_docs > docs/profiles.md
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from harness import registry
from harness.profile_keys import SECTIONS, section_keys

_Allowed = Callable[[], str] | str | None


def _scenarios() -> tuple[str, ...]:
    from harness.offline import SCENARIOS

    return SCENARIOS


def _names(fn: Callable[[], tuple[str, ...]], extra: str = "") -> Callable[[], str]:
    return lambda: ", ".join(f"`{n}`" for n in fn()) + extra


_METHODS = _names(registry.method_names, ", and any of them + `+ft` (fine-tuned baseline)")
_CONDITIONS = ("`all`, `drop:MOD[+MOD...]`, `random:P` (P in [0, 1)), `burst:P_OFF:MEAN_LEN` "
               "(each sensor off P_OFF of the time in bursts of MEAN_LEN samples)")  # fmt: skip

# (section, key) -> (description, unit, allowed values, default shown when the schema has none)
DOCS: dict[tuple[str, str], tuple[str, str, _Allowed, str | None]] = {
    ("", "name"): ("profile name; the default --out is runs/<name>", "", None, "the file's stem"),
    ("", "description"): ("one line shown by `sentryfuse profiles`", "", None, '""'),
    ("", "grid"): ("the axes the suite sweeps (section below)", "", None, "required"),
    ("", "measure"): ("the measurement window (section below)", "", None, "defaults"),
    ("", "train"): ("how checkpoints are trained (section below)", "", None, "defaults"),
    ("", "eval"): ("dataset slicing and calibration (section below)", "", None, "defaults"),
    ("", "finetune"): ("budget of `<method>+ft` baselines (section below)", "", None, "defaults"),
    ("", "replay"): ("a deployment replay (section below)", "", None, "none"),
    ("", "models"): (
        "`[[models]]`: your own ONNX files, benchmarked instead of a trained grid "
        "(section below; `[grid]` then takes only targets, runtimes, power_modes)",
        "",
        None,
        "none",
    ),
    ("models", "name"): (
        "the model's name in the store and the report; `check` matches "
        "two versions of a model by it",
        "",
        "unique",
        "required",
    ),
    ("models", "path"): ("the .onnx file, relative to the profile's folder", "", None, "required"),
    ("models", "shapes"): (
        "table input name → shape, for inputs with free dimensions",
        "",
        "integers ≥ 1",
        "the file's own",
    ),
    ("models", "batch"): ("batch size of the free batch dimension", "samples", "≥ 1", None),
    ("", "dense_baseline"): ("also measure the unpruned model in every grid cell", "", None, None),
    ("grid", "datasets"): (
        "datasets to train and evaluate on",
        "",
        _names(registry.dataset_names, ", or a path to a `.npz`"),
        "required",
    ),  # fmt: skip
    ("grid", "backbones"): ("fusion backbones", "", _names(registry.backbone_names), "required"),
    ("grid", "attentions"): ("attention kinds", "", _names(registry.attention_names), "required"),
    ("grid", "methods"): ("pruning methods (besides the dense baseline)", "", _METHODS, "required"),
    ("grid", "sparsities"): (
        "fractions of prunable units removed",
        "fraction",
        "numbers in [0, 1)",
        "required",
    ),  # fmt: skip
    ("grid", "conditions"): (
        "sensor conditions each cell is evaluated under: a list for every "
        "dataset, or a table `{dataset = [..]}`",
        "",
        _CONDITIONS,
        "required",
    ),  # fmt: skip
    ("grid", "batch_sizes"): (
        "batch sizes measured besides `[measure] batch_size`",
        "samples",
        "integers ≥ 1",
        "[]",
    ),
    ("grid", "scenarios"): (
        "load scenarios besides single-stream",
        "",
        _names(lambda: _scenarios()),
        "[]",
    ),
    ("grid", "targets"): ("devices to measure on", "", _names(registry.target_names), "required"),
    ("grid", "runtimes"): (
        "runtimes (each checked against each target)",
        "",
        _names(lambda: registry.KNOWN_RUNTIMES),
        "required",
    ),  # fmt: skip
    ("grid", "power_modes"): (
        "power modes: a list for every target, or a table `{target = [..]}`"
        "; `current` leaves the device as it is",
        "",
        "the target's modes (`sentryfuse targets`), `current`",
        '["current"]',
    ),  # fmt: skip
    ("grid", "seeds"): ("training/slicing seeds", "", "integers", "[0]"),
    ("measure", "warmup_s"): ("warm-up before timing (excluded)", "s", "≥ 0", None),
    ("measure", "warmup_n"): ("warm-up queries before timing (excluded)", "queries", "≥ 0", None),
    ("measure", "min_duration_s"): ("timed window lasts at least this long", "s", "≥ 0", None),
    ("measure", "min_count"): ("and at least this many queries", "queries", "≥ 1", None),
    ("measure", "batch_size"): ("samples per query (1 = SingleStream)", "samples", "≥ 1", None),
    ("measure", "percentiles"): ("latency percentiles stored", "%", "numbers in (0, 100)", None),
    ("measure", "cv_warn"): (
        "coefficient of variation above which one timed window warns (informational: "
        "cells are judged by trial spread and CPU share)",
        "fraction",
        "≥ 0",
        None,
    ),  # fmt: skip
    ("measure", "trials"): (
        "timed windows per cell, interleaved with the other cells of its "
        "group (the unit of replication)",
        "windows",
        "≥ 1",
        None,
    ),
    ("measure", "max_trial_spread"): (
        "a cell is stable when the relative MAD of its trial medians is at most this",
        "fraction",
        "≥ 0",
        None,
    ),  # fmt: skip
    ("train", "epochs"): ("training epochs per checkpoint", "epochs", "≥ 1", None),
    ("train", "size"): ("model size", "", _names(lambda: registry.MODEL_SIZES), None),
    ("train", "batch_size"): ("training batch size", "samples", "≥ 1", None),
    ("train", "lr"): ("peak learning rate", "", "≥ 0", None),
    ("train", "scorer_final_steps"): (
        "SentryGate scorer steps on the final weights",
        "steps",
        "≥ 0",
        "sentryfuse's default (60)",
    ),  # fmt: skip
    ("train", "subnet"): (
        "prunability-aware training: sub-network passes without the units the pruner would "
        "remove (false: the old recipe, bit-identical)",
        "",
        "true, false",
        None,
    ),  # fmt: skip
    ("train", "subnet_ranking"): (
        "units those passes remove: SentryGate's choice for the batch's sensor pattern, or "
        "random (structured-dropout control)",
        "",
        "scorer, random",
        None,
    ),  # fmt: skip
    ("train", "distill"): (
        "sub-networks also learn from the full model's outputs (KL, temperature 2)",
        "",
        "true, false",
        None,
    ),  # fmt: skip
    ("train", "subnet_freeze_epochs"): (
        "last epochs trained with SentryGate's ranking frozen, so they train exactly the "
        "sub-networks it deploys (0: the ranking keeps learning and is refit at the end)",
        "epochs",
        "0 .. epochs",
        "sentryfuse's default: from where the sub-network passes start (epoch 1)",
    ),  # fmt: skip
    ("train", "subnet_weight"): (
        "weight of the sub-network passes against the full model's (their update's "
        "learning rate as a fraction of the schedule's with subnet_grad = separate): "
        "lower keeps more of the full model's accuracy and gains less when pruned",
        "",
        "> 0",
        "0.5",
    ),  # fmt: skip
    ("train", "subnet_grad"): (
        "how the sub-network passes' gradient reaches the weights: separate (its own "
        "Adam update after the full model's, so the full model learns at its own pace), "
        "sum (added to the full model's: the recipe before the eighth build), project, "
        "project_tensor (PCGrad)",
        "",
        "separate, sum, project, project_tensor",
        "separate",
    ),  # fmt: skip
    ("eval", "max_train"): ("train on a balanced slice of N samples", "samples", "≥ 1", "all"),
    ("eval", "max_test"): ("evaluate on a balanced slice of N samples", "samples", "≥ 1", "all"),
    ("eval", "batch_size"): ("evaluation batch size", "samples", "≥ 1", None),
    ("eval", "calib_samples"): (
        "seeded, class-stratified calibration sample of data-using "
        "baselines (fisher, taylor, taylor-calib)",
        "samples",
        "≥ 1",
        None,
    ),  # fmt: skip
    ("finetune", "steps"): ("fine-tuning steps of every `<method>+ft`", "steps", "≥ 1", None),
    ("finetune", "lr"): ("fine-tuning learning rate", "", "≥ 0", None),
    ("replay", "dataset"): (
        "dataset of the stream",
        "",
        "one of grid.datasets",
        "grid.datasets[0]",
    ),
    ("replay", "backbone"): ("backbone", "", "one of grid.backbones", "grid.backbones[0]"),
    ("replay", "attention"): ("attention kind", "", "one of grid.attentions", "grid.attentions[0]"),
    ("replay", "target"): ("device", "", "one of grid.targets", "grid.targets[0]"),
    ("replay", "runtime"): ("runtime", "", "one of grid.runtimes", "grid.runtimes[0]"),
    ("replay", "methods"): ("methods replayed (one replay cell each)", "", _METHODS, "required"),
    ("replay", "events"): (
        "`[[replay.events]]` changes over stream time (section below); the "
        "first at t_s = 0 sets both present and power_mode",
        "",
        None,
        "required",
    ),  # fmt: skip
    ("replay", "duration_s"): ("stream length in stream time", "s", "> 0", "60.0"),
    ("replay", "rate_hz"): (
        "samples per second of stream time (simulated, not slept)",
        "Hz",
        "> 0",
        "10.0",
    ),  # fmt: skip
    ("replay", "deadline_ms"): (
        "a sample whose latency exceeds this misses its deadline",
        "ms",
        "≥ 0",
        "10.0",
    ),  # fmt: skip
    ("replay", "policy"): (
        "table power mode → sparsity used while that mode holds",
        "fraction",
        "sparsities in [0, 1)",
        "required unless [replay.budgets] is given",
    ),
    ("replay", "budgets"): (
        "`[replay.budgets]`: per power mode a target instead of a fixed "
        "sparsity, `mode = { deadline_ms = X }` (p99) or `{ energy_mj = X }`;"
        " met by the least pruning a measured latency model allows",
        "ms or mJ",
        "numbers > 0; a mode is in policy or budgets, not both",
        "none",
    ),
    ("replay.events", "t_s"): (
        "when the change happens (strictly increasing, < duration_s)",
        "s",
        "≥ 0",
        "required",
    ),  # fmt: skip
    ("replay.events", "present"): (
        "sensors present from now on",
        "",
        "the dataset's sensors (`sentryfuse datasets`)",
        "unchanged",
    ),  # fmt: skip
    ("replay.events", "power_mode"): (
        "power mode from now on",
        "",
        "a mode of the policy",
        "unchanged",
    ),  # fmt: skip
}

_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
          "tuple[str, ...]": "list of strings", "tuple[float, ...]": "list of numbers",
          "tuple[int, ...]": "list of integers", "int | None": "integer",
          "tuple[tuple[str, str, float], ...]": "table of tables",
          "tuple[str, ...] | None": "list of strings", "str | None": "string",
          "float | None": "number"}  # fmt: skip
_TYPE_OVERRIDES = {
    ("", "grid"): "table", ("", "measure"): "table", ("", "train"): "table",
    ("", "eval"): "table", ("", "finetune"): "table", ("", "replay"): "table",
    ("grid", "conditions"): "list of strings, or table", ("grid", "power_modes"): "list of strings, or table",
    ("replay", "events"): "array of tables", ("replay", "policy"): "table of numbers",
    ("replay", "budgets"): "table of tables",
    ("", "models"): "array of tables", ("models", "shapes"): "table of integer lists",
}  # fmt: skip

_EXAMPLE = Path(__file__).resolve().parent.parent / "profiles" / "quickstart.toml"


def _default(cls: type, key: str, override: str | None) -> str:
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    if f.default is not dataclasses.MISSING and f.default is not None:
        v = f.default
        return (
            f"`{str(v).lower() if isinstance(v, bool) else list(v) if isinstance(v, tuple) else v}`"
        )
    if f.default_factory is not dataclasses.MISSING and override is None:  # type: ignore[misc]
        return "defaults"
    if override is None:
        raise KeyError(f"docs for {cls.__name__}.{key} need a default to show")
    return (
        override
        if override in ("required", "defaults", "none")
        else f"`{override}`"
        if override[0] in '["0123456789'
        else override
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def generate() -> str:
    """The whole ``docs/profiles.md``; raises ``KeyError`` for an undocumented schema key."""
    schema_keys = {(s, k) for s in SECTIONS for k in section_keys(s)}
    extra = set(DOCS) - schema_keys
    if extra:
        raise KeyError(f"docs for keys the schema does not have: {sorted(extra)}")
    out = [
        "# Profile reference",
        "",
        "<!-- generated by `python -m harness.profile_docs > docs/profiles.md`; do not edit -->",
        "",
        "A profile is a TOML file that `sentryfuse run PROFILE` validates before anything runs:",
        "an unknown key, a wrong type, an unknown name or an out-of-range value is one line",
        "naming the file, the key and what to do (exit code 2). Shipped profiles are listed by",
        "`sentryfuse profiles` and can be run by name (`sentryfuse run quickstart`).",
        "",
    ]
    for section in SECTIONS:
        title = (
            "Top level"
            if not section
            else f"`[[{section}]]`"
            if section in ("replay.events", "models")
            else f"`[{section}]`"
        )
        cls = SECTIONS[section]
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ and section else ""
        out += [f"## {title}", ""]
        if doc and not doc.startswith(cls.__name__):
            out += [doc, ""]
        out += [
            "| key | type | default | unit | allowed values | meaning |",
            "|---|---|---|---|---|---|",
        ]
        for key in section_keys(section):
            if (section, key) not in DOCS:
                raise KeyError(
                    f"profile key '{section + '.' if section else ''}{key}' is not documented in harness/profile_docs.py"
                )
            text, unit, allowed, override = DOCS[(section, key)]
            f = next(f for f in dataclasses.fields(cls) if f.name == key)
            typ = _TYPE_OVERRIDES.get((section, key), _TYPES.get(str(f.type), str(f.type)))
            allowed_s = allowed() if callable(allowed) else (allowed or "")
            out.append(f"| `{key}` | {typ} | {_cell(_default(cls, key, override))} | {unit} | "
                       f"{_cell(allowed_s)} | {_cell(text)} |")  # fmt: skip
        out.append("")
    out += [
        "## Conditions",
        "",
        _CONDITIONS + ". Every sample keeps at least one sensor.",
        "",
        "## Example (`profiles/quickstart.toml`)",
        "",
        "```toml",
        _EXAMPLE.read_text(encoding="utf-8").rstrip(),
        "```",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(generate())
