"""Test helpers: a small slice of the real Fashion-MNIST IDX files, read with darnax's IDX reader.

The folder is ``$DARNAX_SHARED_DIR/datasets/fashion-mnist`` or ``../shared/datasets/fashion-mnist``
relative to the repository; tests that need it are skipped (with this reason) when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from darnax.datasets import read_idx

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    """The shared folder holding ``datasets/`` (env ``DARNAX_SHARED_DIR`` or ``../shared``)."""
    return Path(os.environ.get("DARNAX_SHARED_DIR", REPO.parent / "shared"))


def fashion_mnist(n_train: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_test, y_test)``: pixels in [0, 1] (float32, flat 784) and ±1 one-vs-all
    labels (``label_mode="pm1"``), a random class-mixed slice of each split."""
    folder = shared_dir() / "datasets" / "fashion-mnist"
    if not (folder / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found in {folder} (set DARNAX_SHARED_DIR)")
    rng = np.random.default_rng(seed)
    out = []
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = read_idx(folder / f"{split}-images-idx3-ubyte.gz")
        labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
        take = rng.permutation(images.shape[0])[:n]
        x = images[take].reshape(n, -1).astype(np.float32) / 255.0
        y = np.where(np.eye(10, dtype=bool)[labels[take]], 1.0, -1.0).astype(np.float32)
        out += [x, y]
    return tuple(out)


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, rng: np.random.Generator | None = None):
    """Yield ``(x, y)`` batches (the last one may be smaller), reshuffled when ``rng`` is given."""
    order = rng.permutation(x.shape[0]) if rng is not None else np.arange(x.shape[0])
    for lo in range(0, x.shape[0], batch_size):
        idx = order[lo : lo + batch_size]
        yield x[idx], y[idx]
