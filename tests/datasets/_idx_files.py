"""Helpers that write small IDX files (gzip'ed) for the parser and loader tests."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from darnax.datasets.classification.idx_dataset import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IdxDataset,
    idx_source,
)

TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array`` (big-endian header and payload)."""
    array = np.asarray(array)
    code = TYPE_CODES[f"{array.dtype.kind}{array.dtype.itemsize}"]
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_gz(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))
    return path


def tiny_arrays(n_train_per_class: int = 12, n_test: int = 53, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images (with zero pixels) and labels: train shuffled, test cycling."""
    rng = np.random.default_rng(seed)
    n_train = 10 * n_train_per_class
    train_labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), n_train_per_class))
    test_labels = (np.arange(n_test) % 10).astype(np.uint8)

    def images(n: int) -> np.ndarray:
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        x[rng.random(x.shape) < 0.5] = 0
        return x

    return {
        TRAIN_IMAGES: images(n_train),
        TRAIN_LABELS: train_labels,
        TEST_IMAGES: images(n_test),
        TEST_LABELS: test_labels,
    }


def write_tiny(folder: Path, arrays: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Write the four IDX files of a tiny MNIST-like dataset into ``folder``; return the arrays."""
    arrays = tiny_arrays() if arrays is None else arrays
    for name, array in arrays.items():
        write_gz(folder / name, idx_bytes(array))
    return arrays


class TinyMnist(IdxDataset):
    """An IDX dataset named ``mnist`` whose content checksums are not checked (for generated files)."""

    name = "mnist"
    source = idx_source(
        "mnist",
        dict.fromkeys((TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS), ("0" * 32, None)),
        mirrors=("https://mirror.invalid/a/",),
    )


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
