"""The power-mode context restores the previous state in every injected fault."""

from __future__ import annotations

import pytest

from sentryfuse.errors import PowerModeError
from targets.base import Availability, PowerMode, PowerModes


class RecordingModes(PowerModes):
    """A PowerModes whose ``set`` can be made to fail half-way (after changing state)."""

    def __init__(self) -> None:
        self.state = "balanced"
        self.fail_on: str | None = None
        self.history: list[str] = []

    def available(self) -> Availability:
        return Availability(True)

    def list(self) -> list[PowerMode]:
        return [PowerMode(n) for n in ("low", "balanced", "max")]

    def current(self) -> str:
        return self.state

    def set(self, name: str) -> None:
        self.mode(name)
        self.state = name  # the device changed...
        self.history.append(name)
        if name == self.fail_on:
            raise PowerModeError(
                f"set {name} failed after partly applying"
            )  # ...then the command failed


@pytest.mark.parametrize("fault", [RuntimeError("boom mid-run"), KeyboardInterrupt()])
def test_restores_on_exception_and_ctrl_c(fault):
    modes = RecordingModes()
    with pytest.raises(type(fault)), modes.apply("low"):
        assert modes.current() == "low"
        raise fault
    assert modes.current() == "balanced" and modes.history == ["low", "balanced"]


def test_restores_when_the_set_command_fails():
    modes = RecordingModes()
    modes.fail_on = "max"
    with pytest.raises(PowerModeError, match="failed"), modes.apply("max"):
        pytest.fail("body must not run")
    assert modes.current() == "balanced"


def test_unknown_mode_changes_nothing_and_lists_valid_ones():
    modes = RecordingModes()
    with (
        pytest.raises(
            PowerModeError,
            match="unknown power mode 'maxx' \\(did you mean 'max'\\?\\); valid: balanced, low, max",
        ),
        modes.apply("maxx"),
    ):
        pass
    assert modes.history == []


def test_cpu_modes_restore_on_ctrl_c():
    import os

    import torch

    from targets import get_target

    modes = get_target("cpu").power_modes()
    before = (torch.get_num_threads(), os.sched_getaffinity(0))
    with pytest.raises(KeyboardInterrupt), modes.apply(modes.list()[-1].name):
        raise KeyboardInterrupt
    assert (torch.get_num_threads(), os.sched_getaffinity(0)) == before
