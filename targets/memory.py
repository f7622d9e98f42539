"""Process memory: peak resident set size (VmHWM), CUDA peak where relevant."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

from targets.hw import DEFAULT_ROOT, read_text, under


def peak_rss_mb(proc_root: Path = DEFAULT_ROOT) -> float:
    """Peak RSS of this process: ``VmHWM`` from /proc/self/status, else getrusage."""
    status = read_text(under(proc_root, "/proc/self/status"))
    if status:
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0  # kB → MiB
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0


def reset_peak_rss(proc_root: Path = DEFAULT_ROOT) -> bool:
    """Restart ``VmHWM`` from the current RSS (Linux: ``5`` into /proc/self/clear_refs), so a
    window's peak is that window's, not the whole process's high-water mark so far."""
    try:
        under(proc_root, "/proc/self/clear_refs").write_text("5\n")
    except OSError:
        return False
    return True


def cuda_peak_mb() -> float | None:
    """``torch.cuda.max_memory_allocated`` in MiB, or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / (1024.0 * 1024.0)


def reset_cuda_peak() -> None:
    """Restart ``torch.cuda.max_memory_allocated`` (the twin of ``cuda_peak_mb``)."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
