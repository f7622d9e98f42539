"""Zero-shot deployment pruning: SentryGate and the baselines, one physical path.

``prune(checkpoint, method, sparsity, present=..., calib=..., budget=...)`` scores units
(``scores.py``, Fisher in ``fisher.py``/``masktune.py``), applies a budget (``budget.py``)
and rebuilds a smaller model with ``sentryfuse.models.prune_model``. ``Repruner`` re-prunes
an already loaded checkpoint in milliseconds for the harness's deployment replay.
"""

from __future__ import annotations

from sentryfuse.prune.api import METHODS, PrunedVariant, Repruner, check_method, prune
from sentryfuse.prune.budget import BUDGETS, check_sparsity

__all__ = [
    "BUDGETS",
    "METHODS",
    "PrunedVariant",
    "Repruner",
    "check_method",
    "check_sparsity",
    "prune",
]
