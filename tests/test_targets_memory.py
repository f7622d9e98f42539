"""Peak memory per measurement window: the high-water mark restarts where the window does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from targets.memory import peak_rss_mb, reset_peak_rss

CLEAR_REFS = Path("/proc/self/clear_refs")


@pytest.mark.skipif(not CLEAR_REFS.exists(), reason="needs Linux /proc/self/clear_refs")
def test_reset_restarts_the_peak_from_the_current_rss():
    big = np.ones(64 * 1024 * 1024, dtype=np.uint8)  # 64 MiB, touched
    big[::4096] = 2
    peak_with_big = peak_rss_mb()
    del big
    assert reset_peak_rss()
    assert peak_rss_mb() < peak_with_big - 32  # the freed 64 MiB no longer counts


def test_reset_reports_when_it_cannot(tmp_path: Path):
    assert reset_peak_rss(tmp_path / "no-such-root") is False
