"""The planted slowdown the gate benchmark injects through ``target_factory``."""

from __future__ import annotations

from benchmarks.planted import SlowRunner, SlowTarget, is_pruned


class _Clock:
    """A nanosecond clock that advances 1 µs per read (the spin loop reads it)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += 1_000
        return self.now


class _Runner:
    """A runner whose call takes exactly 2 ms on the clock."""

    weights_bytes = 123

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.synced = 0

    def __call__(self, inputs):  # noqa: ANN001, ANN204
        self.clock.now += 2_000_000
        return "logits"

    def synchronize(self) -> None:
        self.synced += 1


def test_slow_runner_spins_for_its_fraction_of_the_call() -> None:
    clock = _Clock()
    inner = _Runner(clock)
    slow = SlowRunner(inner, 0.10, clock=clock)
    t0 = clock.now
    assert slow({}) == "logits" and inner.synced == 1
    elapsed_ns = clock.now - t0
    assert 2_200_000 <= elapsed_ns <= 2_210_000  # 2 ms + 10%, to the clock's 1 µs steps
    assert slow.weights_bytes == 123  # everything else delegates


class _Config:
    def __init__(self, blocks):  # noqa: ANN001, ANN204
        self.blocks = blocks


class _Model:
    def __init__(self, blocks):  # noqa: ANN001, ANN204
        self.config = _Config(blocks)


class _Target:
    name = "fake"

    def __init__(self) -> None:
        self.clock = _Clock()

    def export(self, model, example_inputs, runtime, workdir):  # noqa: ANN001, ANN201
        return _Runner(self.clock)


def test_slow_target_slows_only_pruned_variants() -> None:
    target = SlowTarget(_Target(), 0.10)
    assert target.name == "fake"
    dense, pruned = _Model(None), _Model({"joint.0": object()})
    assert not is_pruned(dense) and is_pruned(pruned)
    assert isinstance(target.export(pruned, {}, "torch", None), SlowRunner)
    assert not isinstance(target.export(dense, {}, "torch", None), SlowRunner)
