"""Suite-wide test settings.

Tiny models on a shared 2-core box run ~10x slower with PyTorch's default intra-op
threads (they spin against each other and against other processes); one thread keeps
the whole suite fast and deterministic. Each test starts at one thread and whatever it
changes (power-mode tests set thread counts) is put back afterwards. So are the SIGINT
and SIGTERM handlers: a test (or a library it starts, such as Ray) that leaves its own
handler installed must not change how Ctrl-C reaches the tests after it.
"""

from __future__ import annotations

import signal

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _signal_handlers():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        if signal.getsignal(s) is not handler and handler is not None:
            signal.signal(s, handler)
