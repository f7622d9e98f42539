"""Suite-wide test settings.

Tiny models on a shared 2-core box run ~10x slower with PyTorch's default intra-op
threads (they spin against each other and against the other process); one thread keeps
the whole suite fast and deterministic. Tests that measure thread modes set their own.
"""

from __future__ import annotations

import torch

torch.set_num_threads(1)
