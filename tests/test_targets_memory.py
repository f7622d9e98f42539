"""Peak memory per measurement window: the high-water mark restarts where the window does."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from targets.memory import peak_rss_mb, reset_peak_rss

CLEAR_REFS = Path("/proc/self/clear_refs")


@pytest.mark.skipif(not CLEAR_REFS.exists(), reason="needs Linux /proc/self/clear_refs")
def test_reset_restarts_the_peak_from_the_current_rss():
    # An anonymous mapping, not a numpy array: malloc may serve 64 MiB from pages the
    # process already holds (after a long test session the heap stays resident), which
    # neither raises the RSS nor returns it; a mapping is added on touch and gone on close.
    big = mmap.mmap(-1, 64 * 1024 * 1024)
    for off in range(0, len(big), 4096):
        big[off] = 1  # touch every page
    peak_with_big = peak_rss_mb()
    big.close()
    assert reset_peak_rss()
    assert peak_rss_mb() < peak_with_big - 32  # the freed 64 MiB no longer counts


def test_reset_reports_when_it_cannot(tmp_path: Path):
    assert reset_peak_rss(tmp_path / "no-such-root") is False
