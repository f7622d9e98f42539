"""Tensors derived from parameters (a concatenated weight, a repeated gate, a summed
embedding table), cached for inference.

At batch 1 on a CPU every op costs ~1 µs however small, so recomputing e.g. ``[q; k; v]``
per call would eat the saving of one matmul instead of three. ``derived`` recomputes on
every call where autograd must see the parameters (grad mode with any source requiring
grad) or an exporter is tracing (so the graph reads the parameters), and otherwise
returns a cached copy that is rebuilt when a source changes: in-place updates (optimizer
steps, ``load_state_dict``, ``with no_grad(): p[i] = 0``) bump the tensor's ``_version``
and a replaced tensor has a new ``data_ptr``. Writes through ``p.data`` are invisible to
version counting; ``model.train()``/``eval()`` clear every cache (``clear_derived``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

_PREFIX = "_derived_"


def derived(
    owner: nn.Module, name: str, sources: Sequence[torch.Tensor], build: Callable[..., Any]
) -> Any:
    """``build(*sources)``, cached on ``owner`` under ``name`` while ``sources`` are unchanged."""
    if torch.jit.is_tracing() or (
        torch.is_grad_enabled() and any(p.requires_grad for p in sources)
    ):
        return build(*sources)
    key = tuple((p.data_ptr(), p._version) for p in sources)
    slot = _PREFIX + name
    cached = owner.__dict__.get(slot)
    if cached is None or cached[1] != key:
        with torch.inference_mode(False), torch.no_grad():
            # Holding the detached sources keeps their storage alive, so a data_ptr in
            # ``key`` cannot be reused by a new tensor while this entry exists.
            src = tuple(p.detach() for p in sources)
            cached = (src, key, build(*src))
        owner.__dict__[slot] = cached
    return cached[2]


def clear_derived(owner: nn.Module) -> None:
    """Drop ``owner``'s cached tensors (its submodules are not touched)."""
    for slot in [k for k in owner.__dict__ if k.startswith(_PREFIX)]:
        del owner.__dict__[slot]


class DerivedCacheMixin:
    """``train(mode)`` (and so ``eval()``) clears the module's derived tensors."""

    def train(self, mode: bool = True):  # type: ignore[no-untyped-def]
        clear_derived(self)  # type: ignore[arg-type]
        return super().train(mode)  # type: ignore[misc]
