"""Prunability-aware training: sub-network passes, sandwich rule, grouping, distillation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from sentryfuse.data import load_dataset
from sentryfuse.gate import ImportanceScorer, gate_params
from sentryfuse.models import build_model, model_config_for
from sentryfuse.prune import budget as bud
from sentryfuse.prune.scores import sentrygate_scores
from sentryfuse.subnet_train import (
    SubnetTrainer,
    distill_loss,
    group_by_pattern,
    keep_for,
    sandwich_budgets,
    units_removed,
)
from sentryfuse.train import TrainConfig, train
from targets.hw import read_text


def _model_and_scorer(seed: int = 0):
    ds = load_dataset("synthetic", max_train=64, max_test=16, seed=seed)
    torch.manual_seed(seed)
    model = build_model(model_config_for(ds, "late", "dense", size="tiny"))
    scorer = ImportanceScorer.for_model(model, hidden=16)
    with torch.no_grad():
        for p in scorer.parameters():
            p.normal_(0.0, 0.5)
    return ds, model, scorer


def _all_present_batch(ds, n: int):
    """The first ``n`` training samples with every modality present."""
    x = {m: torch.from_numpy(ds.train.x[m][:n]) for m in ds.modality_names}
    y = torch.from_numpy(ds.train.y[:n])
    return x, y, torch.ones(n, len(ds.modality_names), dtype=torch.bool)


def _gates(model) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {n: (h.detach().clone(), c.detach().clone()) for n, (h, c) in gate_params(model).items()}


def test_subnet_pass_zeroes_exactly_the_scorers_choice_and_restores() -> None:
    ds, model, scorer = _model_and_scorer()
    cfg = TrainConfig(subnet_sparsity_min=0.5, subnet_sparsity_max=0.5, subnet_sampled=0)
    trainer = SubnetTrainer(model, scorer, cfg)
    pattern = np.array([True, False, True])
    before = _gates(model)
    # What deployment pruning would remove for this pattern (prune()'s own scores).
    scores = sentrygate_scores(scorer, ["a", "b", "c"], ["a", "c"])
    active = bud.active_blocks(list(scores), ["a", "b", "c"], ["a", "c"])
    expected = bud.select_units({n: scores[n] for n in active}, 0.5)
    keep = keep_for(trainer.ranking(pattern), 0.5, "units")
    assert keep == expected and all(".b." not in n for n in keep)
    with units_removed(model, keep):
        inside = _gates(model)
    for name, (h, c) in inside.items():
        if name not in keep:
            assert torch.equal(h, before[name][0]) and torch.equal(c, before[name][1])
            continue
        kh, kc = keep[name]
        assert torch.nonzero(h).flatten().tolist() == kh
        assert torch.nonzero(c).flatten().tolist() == kc
    after = _gates(model)
    assert all(torch.equal(after[n][i], before[n][i]) for n in before for i in (0, 1))


def test_gates_restored_when_the_pass_raises() -> None:
    _, model, scorer = _model_and_scorer()
    before = _gates(model)
    keep = keep_for(
        SubnetTrainer(model, scorer, TrainConfig()).ranking(np.ones(3, bool)), 0.6, "units"
    )
    versions = [g._version for n, pair in gate_params(model).items() if n in keep for g in pair]
    with pytest.raises(RuntimeError, match="boom"), units_removed(model, keep):
        assert any(not torch.equal(_gates(model)[n][1], before[n][1]) for n in keep)
        raise RuntimeError("boom")
    after = _gates(model)
    assert all(torch.equal(after[n][i], before[n][i]) for n in before for i in (0, 1))
    # restored in place (copy_), so version-keyed caches of the gates see the change
    now = [g._version for n, pair in gate_params(model).items() if n in keep for g in pair]
    assert all(b >= a + 2 for a, b in zip(versions, now, strict=True))  # zeroed, restored


def test_sandwich_always_includes_the_smallest_budget() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        b = sandwich_budgets(0.2, 0.7, 2, rng)
        assert b[0] == 0.7 and len(b) == 3 and all(0.2 <= s <= 0.7 for s in b)
    assert sandwich_budgets(0.3, 0.6, 0, rng) == [0.6]


def test_grouping_by_pattern_covers_every_sample_once() -> None:
    present = torch.tensor(
        [[1, 1, 0], [1, 1, 1], [0, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 0]]
    ).bool()
    groups = group_by_pattern(present)
    assert [g[0].tolist() for g in groups] == [
        [True, True, False],
        [True, True, True],
        [False, True, False],
    ]
    assert [g[1].tolist() for g in groups] == [[0, 3, 5], [1, 4], [2]]
    rows = np.concatenate([g[1] for g in groups])
    assert sorted(rows.tolist()) == list(range(6))


def test_subnet_step_runs_one_pass_per_group_and_budget_fed_its_pattern() -> None:
    ds, model, scorer = _model_and_scorer()
    cfg = TrainConfig(subnet_sampled=1)
    trainer = SubnetTrainer(model, scorer, cfg)
    x = {m: torch.from_numpy(ds.train.x[m][:6]) for m in ds.modality_names}
    y = torch.from_numpy(ds.train.y[:6])
    present = torch.tensor(
        [[1, 1, 0], [1, 1, 1], [0, 1, 0], [1, 1, 0], [1, 1, 1], [1, 1, 0]]
    ).bool()
    teacher = model(x, present).detach()
    seen: list[tuple[str, ...]] = []
    hook = model.register_forward_pre_hook(lambda m, a: seen.append(tuple(sorted(a[0]))))
    try:
        trainer.step(x, y, present, teacher)
    finally:
        hook.remove()
    assert trainer.passes == 6  # 3 patterns × (smallest + 1 sampled)
    assert seen[:3] == [("a", "b"), ("a", "b", "c"), ("b",)]
    # the default keeps the passes' gradient apart for its own update; p.grad is untouched
    assert all(p.grad is None for p in model.parameters())
    grads = trainer.pass_grads.values()
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_distill_loss_is_temperature_scaled_kl() -> None:
    torch.manual_seed(0)
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    assert float(distill_loss(t, t, 2.0)) == pytest.approx(0.0, abs=1e-6)
    p_t, logp_s = F.softmax(t / 3.0, -1), F.log_softmax(s / 3.0, -1)
    ref = (p_t * (p_t.log() - logp_s)).sum(-1).mean() * 9.0
    assert float(distill_loss(s, t, 3.0)) == pytest.approx(float(ref), rel=1e-5)
    s.requires_grad_(True)
    distill_loss(s, t, 2.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_random_control_differs_from_the_scorers_choice() -> None:
    _, model, scorer = _model_and_scorer()
    pattern = np.ones(3, bool)
    by_scorer = SubnetTrainer(model, scorer, TrainConfig())
    by_random = SubnetTrainer(model, scorer, TrainConfig(subnet_ranking="random"))
    k_s = keep_for(by_scorer.ranking(pattern), 0.5, "units")
    k_r1 = keep_for(by_random.ranking(pattern), 0.5, "units")
    k_r2 = keep_for(by_random.ranking(pattern), 0.5, "units")
    assert k_s != k_r1 and k_r1 != k_r2  # a fresh random ranking per pass
    # same number of units removed: the control differs in *which*, not how many
    count = lambda k: sum(len(h) + len(c) for h, c in k.values())  # noqa: E731
    assert count(k_s) == count(k_r1)


def _weights_digest(path) -> str:
    sd = load_file(path / "model.safetensors")
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode())
        h.update(sd[k].numpy().tobytes())
    return h.hexdigest()


def _tiny_run(tmp_path, name: str, **kw) -> str:
    torch.set_num_threads(1)
    ds = load_dataset("synthetic", max_train=96, max_test=32, seed=3)
    cfg = model_config_for(ds, "early", "dense", size="tiny")
    base = dict(epochs=2, batch_size=16, seed=3, scorer_final_steps=4, saliency_every=2,
                warmup_epochs=0.5, ramp_epochs=0.5)  # fmt: skip
    train(ds, cfg, TrainConfig(**{**base, **kw}), tmp_path / name, progress=False)
    return _weights_digest(tmp_path / name)


def _float_platform() -> str:
    """What decides a training run's exact floats besides our code: the torch build, the
    kernel family torch dispatches to, and the CPU's vector instruction sets (MKL and
    oneDNN choose their kernels from them). Two machines with the same key run the same
    kernels at one thread; "unknown" where /proc/cpuinfo cannot be read."""
    text = read_text(Path("/proc/cpuinfo")) or ""
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), None
    )
    if flags is None:
        return "unknown"
    simd = sorted(f for f in flags if f.startswith(_SIMD_PREFIXES))
    digest = hashlib.sha256(" ".join(simd).encode()).hexdigest()[:12]
    return f"{torch.__version__}/{torch.backends.cpu.get_cpu_capability()}/{digest}"


_SIMD_PREFIXES = ("sse", "ssse", "avx", "amx", "fma", "f16c", "vnni", "bmi", "adx", "gfni",
                  "vaes", "vpclmul", "sha_ni")  # fmt: skip

# sha256 of the weights the pre-prunability train.py (main at 13e8fc6) writes for
# ``_tiny_run``, per float platform (``_float_platform``): the same code gives other
# floats on other kernels, so a digest only applies where it was recorded. To record one
# for a new platform: check out 13e8fc6 and run the ``_tiny_run`` settings with its
# ``train`` (one thread). The first digest, ffd1bb41…8ffec, was recorded on the first
# build machine (13e8fc6, torch 2.13.0+cpu), whose platform key was not kept.
OLD_RECIPE_DIGESTS = {
    # Intel Xeon (AVX-512) build machine, recorded 2026-12-02 from 13e8fc6's train.py
    "2.13.0+cpu/AVX512/ec556b2faa8c": "704eea99b117044d9accc6b95ff1e8894df2679b7150513cbb7f4e43da06cce6",
}  # fmt: skip


def test_recipe_off_is_bit_identical_to_the_old_recipe(tmp_path) -> None:
    off = _tiny_run(tmp_path, "off", subnet=False)
    # the sub-network trainer built but never due: touches no RNG and no weight
    inert = _tiny_run(tmp_path, "inert", subnet=True, subnet_start_epoch=1e9)
    assert off == inert
    on = _tiny_run(tmp_path, "on", subnet=True, subnet_start_epoch=0.0)
    assert on != off
    platform = _float_platform()
    if platform not in OLD_RECIPE_DIGESTS:
        pytest.skip(f"no old-recipe digest recorded for float platform {platform}")
    assert off == OLD_RECIPE_DIGESTS[platform]


def test_frozen_scorer_phase_is_deterministic_and_changes_the_recipe(tmp_path) -> None:
    frozen = _tiny_run(tmp_path, "frozen", subnet_start_epoch=0.0, subnet_freeze_epochs=1.0)
    again = _tiny_run(tmp_path, "again", subnet_start_epoch=0.0, subnet_freeze_epochs=1.0)
    learning = _tiny_run(tmp_path, "learning", subnet_start_epoch=0.0, subnet_freeze_epochs=0.0)
    assert frozen == again
    assert frozen != learning


def test_default_freezes_the_ranking_where_the_passes_start(tmp_path) -> None:
    import json

    assert TrainConfig(epochs=5).subnet_freeze_at == 1.0  # subnet_start_epoch
    assert TrainConfig(epochs=5, subnet_freeze_epochs=2.0).subnet_freeze_at == 3.0
    assert TrainConfig(epochs=5, subnet_freeze_epochs=0.0).subnet_freeze_at == float("inf")
    assert TrainConfig(epochs=1).subnet_freeze_at == float("inf")  # no pass ever runs
    assert TrainConfig(epochs=5, subnet=False).subnet_freeze_at == float("inf")
    default = _tiny_run(tmp_path, "default", subnet_start_epoch=1.0)
    explicit = _tiny_run(tmp_path, "explicit", subnet_start_epoch=1.0, subnet_freeze_epochs=1.0)
    drifting = _tiny_run(tmp_path, "drift", subnet_start_epoch=1.0, subnet_freeze_epochs=0.0)
    assert default == explicit != drifting
    metrics = lambda n: json.loads((tmp_path / n / "metrics.json").read_text())  # noqa: E731
    assert metrics("default")["scorer_frozen_epoch"] == 1.0
    assert metrics("drift")["scorer_frozen_epoch"] is None


def test_freeze_longer_than_training_is_refused() -> None:
    from sentryfuse.errors import ModelError

    with pytest.raises(ModelError, match="subnet_freeze_epochs"):
        TrainConfig(epochs=2, subnet_freeze_epochs=3.0)
    with pytest.raises(ModelError, match="subnet_weight"):
        TrainConfig(subnet_weight=0.0)


def test_pattern_lag_freezes_the_all_present_ranking_first_and_the_rest_later(tmp_path) -> None:
    """With ``subnet_pattern_lag_epochs`` the all-present ranking freezes where the passes
    start, exactly as the default's does (same seed: the same scores), while the
    missing-sensor rankings learn on until the curriculum has dropped sensors for the lag;
    the checkpoint deploys the pinned all-present ranking."""
    import json

    from sentryfuse.checkpoint import load_checkpoint
    from sentryfuse.errors import ModelError

    cfg = TrainConfig(epochs=5, warmup_epochs=2.0, subnet_pattern_lag_epochs=1.0)
    assert (cfg.subnet_freeze_at, cfg.pattern_freeze_at) == (1.0, 3.0)
    assert TrainConfig(epochs=5).pattern_freeze_at == 1.0  # no lag: all at once
    assert TrainConfig(epochs=5, subnet_pattern_lag_epochs=0.0, warmup_epochs=0.5,
                       ).pattern_freeze_at == 1.0  # never before the freeze  # fmt: skip
    with pytest.raises(ModelError, match="subnet_pattern_lag_epochs"):
        TrainConfig(subnet_pattern_lag_epochs=-1.0)
    with pytest.raises(ModelError, match="subnet_pattern_passes"):
        TrainConfig(subnet_pattern_passes="sometimes")

    kw = dict(epochs=3, subnet_start_epoch=1.0, warmup_epochs=1.0, ramp_epochs=0.5)
    default = _tiny_run(tmp_path, "default", **kw)
    lag = _tiny_run(tmp_path, "lag", subnet_pattern_lag_epochs=1.0, **kw)
    assert lag == _tiny_run(tmp_path, "lag-again", subnet_pattern_lag_epochs=1.0, **kw)
    assert lag != default
    metrics = json.loads((tmp_path / "lag" / "metrics.json").read_text())
    assert (metrics["scorer_frozen_epoch"], metrics["scorer_patterns_frozen_epoch"]) == (1.0, 2.0)
    d, g = load_checkpoint(tmp_path / "default"), load_checkpoint(tmp_path / "lag")
    assert g.scorer.config()["pinned"] == ["111"] and "pinned" not in d.scorer.config()
    mods = g.modalities
    for name, (h, c) in sentrygate_scores(g.scorer, mods, None).items():
        dh, dc = sentrygate_scores(d.scorer, mods, None)[name]
        assert torch.equal(h, dh) and torch.equal(c, dc)  # same all-present ranking
    gone = sentrygate_scores(g.scorer, mods, mods[1:])
    assert any(
        not torch.equal(gone[n][1], sentrygate_scores(d.scorer, mods, mods[1:])[n][1]) for n in gone
    )  # the missing-sensor rankings learned on
    # "frozen" (the default) runs a pattern's passes only once its ranking froze: fewer
    # passes than "live", which trains the missing-sensor sub-networks of the live ranking
    live = _tiny_run(tmp_path, "live", subnet_pattern_lag_epochs=1.0,
                     subnet_pattern_passes="live", **kw)  # fmt: skip
    assert live != lag
    passes = {
        n: json.loads((tmp_path / n / "metrics.json").read_text())["subnet_passes"]
        for n in ("default", "lag", "live")
    }
    assert passes["lag"] < passes["live"] == passes["default"], passes


def test_pass_weight_schedule_falls_linearly_and_changes_the_recipe(tmp_path) -> None:
    from sentryfuse.errors import ModelError

    cfg = TrainConfig(epochs=5, subnet_start_epoch=1.0, subnet_weight=1.0, subnet_weight_end=0.25)
    assert [cfg.subnet_weight_at(e) for e in (0.0, 1.0, 3.0, 5.0, 9.0)] == [
        1.0, 1.0, 0.625, 0.25, 0.25,
    ]  # fmt: skip
    assert TrainConfig(subnet_weight=0.5).subnet_weight_at(3.0) == 0.5  # None: constant
    with pytest.raises(ModelError, match="subnet_weight_end"):
        TrainConfig(subnet_weight_end=-0.1)
    kw = dict(subnet_start_epoch=0.0)
    const = _tiny_run(tmp_path, "const", **kw)
    assert _tiny_run(tmp_path, "same", subnet_weight_end=0.5, **kw) == const  # 0.5 → 0.5
    falling = _tiny_run(tmp_path, "falling", subnet_weight_end=0.0, **kw)
    assert falling != const
    assert _tiny_run(tmp_path, "again", subnet_weight_end=0.0, **kw) == falling


def test_projection_removes_only_the_conflicting_component() -> None:
    from sentryfuse.subnet_train import project_conflict

    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    full = [torch.tensor([1.0, 0.0]), torch.tensor([0.0])]
    a.grad, b.grad = torch.tensor([-2.0, 3.0]), torch.tensor([5.0])  # <g, full> = -2
    assert project_conflict([a, b], full)
    # g - (<g,f>/|f|²) f = [0, 3], [5]; plus the full pass's gradient
    assert a.grad.tolist() == [1.0, 3.0] and b.grad.tolist() == [5.0]
    assert float((a.grad - full[0]) @ full[0]) == 0.0  # the pass part no longer opposes
    a.grad, b.grad = torch.tensor([2.0, 3.0]), torch.tensor([5.0])  # agreeing: plain sum
    assert not project_conflict([a, b], full)
    assert a.grad.tolist() == [3.0, 3.0] and b.grad.tolist() == [5.0]
    a.grad, b.grad = None, torch.tensor([1.0])  # a parameter only the full pass reached
    assert not project_conflict([a, b], full)
    assert a.grad is full[0]


def test_projected_passes_keep_the_full_gradients_first_order_descent(tmp_path) -> None:
    import json

    from sentryfuse.errors import ModelError

    ds, model, scorer = _model_and_scorer()
    x, y, present = _all_present_batch(ds, 16)
    params = [p for p in model.parameters() if p.requires_grad]
    grads, conflicts = {}, {}
    for mode in ("sum", "project", "project_tensor"):
        model.zero_grad(set_to_none=True)
        logits = model(x, present)
        (-F.cross_entropy(logits, y)).backward()  # a full-pass gradient the passes oppose
        full = [None if p.grad is None else p.grad.clone() for p in params]
        trainer = SubnetTrainer(model, scorer, TrainConfig(subnet_grad=mode, distill=False))
        trainer.step(x, y, present, logits.detach())
        grads[mode] = [p.grad.clone() for p in params if p.grad is not None]
        conflicts[mode] = trainer.conflicts
        if mode == "project_tensor":  # every tensor's pass part agrees with the full one
            per = [float(((p.grad - f) * f).sum()) for p, f in zip(params, full, strict=True)
                   if f is not None]  # fmt: skip
            assert min(per) >= -1e-5 and trainer.conflicts > 1
    fl = torch.cat([f.flatten() for f in full if f is not None])
    dots = {m: float(torch.cat([g.flatten() for g in gs]) @ fl) for m, gs in grads.items()}
    grads.pop("project_tensor")
    assert dots["project"] >= float(fl @ fl) - 1e-4  # the pass part adds no descent cost
    assert conflicts["project"] == 1
    assert dots["sum"] < dots["project"]
    with pytest.raises(ModelError, match="subnet_grad"):
        TrainConfig(subnet_grad="pcgrad")
    proj = _tiny_run(tmp_path, "proj", subnet_start_epoch=0.0, subnet_grad="project")
    assert proj != _tiny_run(tmp_path, "sum", subnet_start_epoch=0.0, subnet_grad="sum")
    assert _tiny_run(tmp_path, "proj2", subnet_start_epoch=0.0, subnet_grad="project") == proj
    metrics = json.loads((tmp_path / "proj" / "metrics.json").read_text())
    assert 0 <= metrics["subnet_conflicts"] <= metrics["subnet_passes"]
    assert "subnet_conflicts" not in json.loads((tmp_path / "sum" / "metrics.json").read_text())


def test_separate_update_leaves_the_full_gradient_to_the_main_step(tmp_path) -> None:
    from sentryfuse.subnet_train import SeparateUpdate

    ds, model, scorer = _model_and_scorer()
    x, y, present = _all_present_batch(ds, 16)
    params = [p for p in model.parameters() if p.requires_grad]
    summed = {}
    for mode in ("sum", "separate"):
        model.zero_grad(set_to_none=True)
        logits = model(x, present)
        F.cross_entropy(logits, y).backward()
        full = [None if p.grad is None else p.grad.clone() for p in params]
        trainer = SubnetTrainer(model, scorer, TrainConfig(subnet_grad=mode, distill=False))
        trainer.step(x, y, present, logits.detach(), weight=0.5)
        if mode == "sum":
            summed = {id(p): p.grad.clone() for p in params if p.grad is not None}
    # the main optimizer sees exactly the full pass's gradient ...
    for p, f in zip(params, full, strict=True):
        assert (p.grad is None) == (f is None) and (f is None or torch.equal(p.grad, f))
    # ... and the passes' gradient is kept apart, at weight 1 (the weight goes to the rate)
    moved = 0
    for p, f in zip(params, full, strict=True):
        g = trainer.pass_grads[id(p)]
        if f is not None and g is not None:
            torch.testing.assert_close(f + 0.5 * g, summed[id(p)], rtol=1e-4, atol=1e-6)
            moved += 1
    assert moved > 0
    weights = [p for p in params if p.ndim >= 2][:3]
    update = SeparateUpdate(weights, grad_clip=1e-3)
    before = [p.detach().clone() for p in weights]
    grads_before = [p.grad for p in weights]
    update.step(trainer.pass_grads, lr=1e-2)
    for p, b, g0 in zip(weights, before, grads_before, strict=True):
        g = trainer.pass_grads[id(p)]
        step = (b - p.detach()).abs()
        assert p.grad is g0  # the full gradient is back for anything that runs later
        # Adam's first step is lr·g/(|g|+eps): about lr where the gradient is not tiny,
        # whatever the clip did to its size, and no weight decay shrinks what it missed
        big = g.abs() > 1e-6
        assert torch.allclose(step[big], torch.full_like(step[big], 1e-2), rtol=0.05)
        assert torch.all(step[~big] <= 1e-2)
    sep = _tiny_run(tmp_path, "sep", subnet_start_epoch=0.0, subnet_grad="separate")
    assert sep != _tiny_run(tmp_path, "sum", subnet_start_epoch=0.0, subnet_grad="sum")
    assert _tiny_run(tmp_path, "default", subnet_start_epoch=0.0) == sep
    assert _tiny_run(tmp_path, "sep2", subnet_start_epoch=0.0, subnet_grad="separate") == sep
