"""SentryGate: modality-conditioned importance of heads and FFN channels.

``saliency`` measures first-order unit importance under a modality mask; ``scorer`` is the
small network that predicts it from the mask alone (so deployment needs no data), trained
with the alignment loss in ``scorer``.
"""

from __future__ import annotations

from sentryfuse.gate.saliency import gate_params, normalise_per_layer, unit_saliency
from sentryfuse.gate.scorer import ImportanceScorer, alignment_loss

__all__ = [
    "ImportanceScorer",
    "alignment_loss",
    "gate_params",
    "normalise_per_layer",
    "unit_saliency",
]
