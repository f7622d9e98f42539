"""A target factory the fleet tests inject on the Ray nodes (``fleet_targets:factory``).

This machine has only a CPU, so a second device kind is the real CPU target under
another target's name: every code path of the fleet (resources, placement, the node's
fingerprint, the store) sees a different kind, and the measurement is real.
"""

from __future__ import annotations

from typing import Any

from targets.cpu import CpuTarget


class CpuAs(CpuTarget):
    """The CPU target answering to ``name`` (its fingerprint says it is simulated)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "simulated_kind": self.name}


def factory(name: str) -> Any:
    return CpuTarget() if name == "cpu" else CpuAs(name)
