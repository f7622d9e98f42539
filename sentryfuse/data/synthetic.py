"""A seeded synthetic dataset for tests: small, fast, and genuinely multimodal.

Three modalities ``a``, ``b``, ``c`` of shape ``(steps, features)``. Two hidden bits set
the label, ``y = 2 * bit_a + bit_b`` (4 classes):
- ``a`` carries ``bit_a`` (a fixed temporal template, sign-flipped),
- ``b`` carries ``bit_b`` (a mean shift of every channel, up or down),
- ``c`` carries ``bit_a XOR bit_b`` (a second template, weaker).
So any one modality alone identifies one bit (at most 50% accuracy, chance is 25%),
while any two of them determine the label. Different modalities therefore hold
different, partly redundant information: a model must fuse, heads and channels that
read different modalities matter under different missing-modality conditions (what the
SentryGate tests need), and dropping one modality is survivable. All signals are linear
in the inputs, so even a tiny model learns them in a few steps.
"""

from __future__ import annotations

import numpy as np

from sentryfuse.data.base import ModalitySpec, MultimodalDataset, Split

CLASSES = ("a0b0", "a0b1", "a1b0", "a1b1")
MODALITIES = ("a", "b", "c")


def _split(n: int, templates: dict[str, np.ndarray], noise: float, subjects: range, rng) -> Split:
    bit_a = rng.integers(0, 2, n)
    bit_b = rng.integers(0, 2, n)
    steps, features = templates["a"].shape
    sign = {"a": 2 * bit_a - 1, "b": 2 * bit_b - 1, "c": 2 * (bit_a ^ bit_b) - 1}
    x = {}
    for m in MODALITIES:
        base = rng.normal(0.0, noise, (n, steps, features))
        if m == "b":
            signal = sign[m][:, None, None] * 0.8 * np.ones((1, steps, features))
        else:
            strength = 1.0 if m == "a" else 0.7
            signal = sign[m][:, None, None] * strength * templates[m][None]
        x[m] = (base + signal).astype(np.float32)
    y = (2 * bit_a + bit_b).astype(np.int64)
    subj = rng.choice(np.asarray(subjects, np.int64), n)
    return Split(x, y, subj)


def make_synthetic(
    n_train: int = 512,
    n_test: int = 256,
    *,
    steps: int = 16,
    features: int = 4,
    noise: float = 1.0,
    seed: int = 0,
) -> MultimodalDataset:
    """Generate the dataset; same arguments give bit-identical arrays."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    freq = np.arange(1, features + 1)[None, :]
    templates = {
        "a": np.sin(2 * np.pi * freq * t),  # (steps, features), unit-ish amplitude
        "c": np.sign(np.cos(2 * np.pi * freq * t + 0.5)),
    }
    train = _split(n_train, templates, noise, range(0, 6), rng)
    test = _split(n_test, templates, noise, range(6, 8), rng)
    meta = {
        "source": "synthetic (sentryfuse.data.synthetic)",
        "licence": "generated",
        "rule": "y = 2*bit_a + bit_b; a->bit_a, b->bit_b, c->bit_a xor bit_b",
        "params": {
            "n_train": n_train,
            "n_test": n_test,
            "steps": steps,
            "features": features,
            "noise": noise,
            "seed": seed,
        },
        "split": "subjects 0-5 train, 6-7 test (synthetic ids)",
    }
    specs = tuple(ModalitySpec(m, steps, features) for m in MODALITIES)
    return MultimodalDataset("synthetic", specs, CLASSES, train, test, meta).validate()
