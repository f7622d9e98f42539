"""A planted slowdown for testing the gate: a target wrapper, injected through the suite's
``target_factory`` parameter (no production flag, no environment variable).

The wrapped target exports runners exactly as the real one does; for the models the
predicate picks (by default every pruned variant, leaving the dense reference model
untouched, as a regression in the pruning code would), the runner busy-waits after each
call for ``fraction`` of that call's own measured time. Busy-waiting keeps the core busy
as real work would (a sleep would free it and change the machine's load), and scaling by
the call's own time makes the slowdown a true ``1 + fraction`` factor at any load.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from harness import registry


def is_pruned(model: Any) -> bool:
    """A pruned variant carries its per-block shapes; the dense model does not."""
    return getattr(getattr(model, "config", None), "blocks", None) is not None


class SlowRunner:
    """Delegates to ``inner``; each call then spins for ``fraction`` of its own time."""

    def __init__(
        self, inner: Any, fraction: float, clock: Callable[[], int] = time.perf_counter_ns
    ) -> None:
        self._inner = inner
        self._fraction = fraction
        self._clock = clock

    def __call__(self, inputs: Mapping[str, Any]) -> Any:
        t0 = self._clock()
        out = self._inner(inputs)
        self._inner.synchronize()
        end = self._clock() + int((self._clock() - t0) * self._fraction)
        while self._clock() < end:
            pass
        return out

    def __getattr__(self, name: str) -> Any:  # prepare, synchronize, close, weights_bytes...
        return getattr(self._inner, name)


class SlowTarget:
    """A target whose ``export`` wraps the runners of the models ``pick`` selects."""

    def __init__(
        self, inner: Any, fraction: float, pick: Callable[[Any], bool] = is_pruned
    ) -> None:
        self._inner = inner
        self._fraction = fraction
        self._pick = pick

    def export(self, model: Any, example_inputs: Any, runtime: str, workdir: Any) -> Any:
        runner = self._inner.export(model, example_inputs, runtime, workdir)
        return SlowRunner(runner, self._fraction) if self._pick(model) else runner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def slow_target_factory(
    fraction: float, pick: Callable[[Any], bool] = is_pruned
) -> Callable[[str], Any]:
    """A ``target_factory`` for ``run_suite``: the default targets, slowed by ``fraction``."""

    def factory(name: str) -> Any:
        target = registry.default_target_factory(name)
        return None if target is None else SlowTarget(target, fraction, pick)

    return factory
