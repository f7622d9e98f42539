"""Which runtime a user would deploy on a target: the fastest one that is installed.

On a GPU that is TensorRT where installed, else ONNX Runtime's CUDA execution provider,
else torch on CUDA; on a CPU, ONNX Runtime (2–3× faster than eager torch on these
models, ``BENCHMARKS.md``), else torch. Profiles name runtimes explicitly; this order is
what ``fastest_runtime`` answers and what the shipped CPU profiles default to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sentryfuse.errors import TargetError
from targets.base import Availability, Target

PREFERENCE: dict[str, tuple[str, ...]] = {
    "cpu": ("onnxruntime", "torch-compiled", "torch"),
    "cuda": ("tensorrt", "onnxruntime", "torch"),
    "jetson": ("tensorrt", "torch"),
}
# torch.compile needs a C compiler and a long first call; it is measured where a profile
# asks, never picked unasked.
NOT_BY_DEFAULT = ("torch-compiled",)


def ranked(target_name: str, availability: Mapping[str, Availability]) -> list[str]:
    """The target's available runtimes, fastest-first (unknown ones last, in given order)."""
    order = PREFERENCE.get(target_name, ())
    known = [r for r in order if r in availability]
    rest = [r for r in availability if r not in order]
    return [r for r in known + rest if availability[r].ok]


def fastest_runtime(target: Target) -> str:
    """The runtime to deploy on ``target`` by default; a one-line error if none can run."""
    avail = target.runtime_availability()
    for runtime in ranked(target.name, avail):
        if runtime not in NOT_BY_DEFAULT:
            return runtime
    reasons = "; ".join(f"{r}: {a.reason}" for r, a in avail.items())
    raise TargetError(f"no runtime can run on target '{target.name}' here ({reasons})")


def ort_provider_availability(
    provider: str, providers: Callable[[], Sequence[str]] | None = None
) -> Availability:
    """Whether ONNX Runtime here offers ``provider`` (``providers`` injects the list that
    ``onnxruntime.get_available_providers`` would give, for tests)."""
    if providers is None:
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(False, "onnxruntime is not installed")
        import onnxruntime

        providers = onnxruntime.get_available_providers
    have = list(providers())
    if provider in have:
        return Availability(True)
    return Availability(
        False, f"onnxruntime here has no {provider} (has {', '.join(have) or 'none'}); "
        "install onnxruntime-gpu",
    )  # fmt: skip
