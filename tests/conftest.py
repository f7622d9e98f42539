"""Suite-wide test settings.

Tiny models on a shared 2-core box run ~10x slower with PyTorch's default intra-op
threads (they spin against each other and against other processes); one thread keeps
the whole suite fast and deterministic. Each test starts at one thread and whatever it
changes (power-mode tests set thread counts) is put back afterwards.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
