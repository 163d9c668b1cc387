"""Label encodings, input transforms and the fixed random projection shared by every dataset.

All functions work on NumPy arrays on the host and return ``float32``; the datasets move the
results to the device once, at ``build`` time.
"""

from __future__ import annotations

import jax
import numpy as np

#: The ``label_mode`` values (``"pm1"`` one-hot * 2 - 1; ``"ooe"`` one-hot; ``"c-rescale"`` one-hot * sqrt(C)/2 - 1/2).
LABEL_MODES = ("pm1", "ooe", "c-rescale")
#: The ``x_transform`` values (``"sign"`` maps x > 0 to +1 and the rest, zeros included, to -1; ``"tanh"``; ``"identity"``).
X_TRANSFORMS = ("sign", "tanh", "identity")


def encode_labels(labels: np.ndarray, num_classes: int, mode: str) -> np.ndarray:
    """Integer class labels ``(N,)`` as ``(N, num_classes)`` float32 targets.

    ``"pm1"``: +1 on the class, -1 elsewhere (one-vs-all). ``"ooe"``: one-hot (1 and 0).
    ``"c-rescale"``: ``one_hot * sqrt(C) / 2 - 0.5`` (so ``sqrt(C)/2 - 1/2`` on the class, ``-1/2``
    elsewhere).

    Example:
        >>> encode_labels(np.array([2, 0]), 3, "pm1")
        array([[-1., -1.,  1.],
               [ 1., -1., -1.]], dtype=float32)
        >>> encode_labels(np.array([1]), 4, "c-rescale")
        array([[-0.5,  0.5, -0.5, -0.5]], dtype=float32)
    """
    if mode not in LABEL_MODES:
        raise ValueError(f"label_mode: expected one of {LABEL_MODES}, got {mode!r}")
    one_hot = np.eye(num_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    if mode == "pm1":
        return one_hot * np.float32(2.0) - np.float32(1.0)
    if mode == "c-rescale":
        return one_hot * np.float32(np.sqrt(num_classes) / 2.0) - np.float32(0.5)
    return one_hot


def transform_inputs(x: np.ndarray, mode: str) -> np.ndarray:
    """Apply ``x_transform`` elementwise: ``"sign"`` (``x > 0`` -> +1, else -1), ``"tanh"`` or ``"identity"``.

    Example:
        >>> transform_inputs(np.array([-2.0, 0.0, 0.5], dtype=np.float32), "sign")
        array([-1., -1.,  1.], dtype=float32)
    """
    if mode not in X_TRANSFORMS:
        raise ValueError(f"x_transform: expected one of {X_TRANSFORMS}, got {mode!r}")
    x = np.asarray(x, dtype=np.float32)
    if mode == "sign":
        return np.where(x > 0, np.float32(1.0), np.float32(-1.0))
    if mode == "tanh":
        return np.tanh(x)
    return x


def projection_matrix(key: jax.Array, out_dim: int, in_dim: int) -> np.ndarray:
    """The fixed projection ``W`` of shape ``(out_dim, in_dim)``, ``W_ij ~ N(0, 1) / sqrt(in_dim)``, float32.

    Inputs are projected as ``x @ W.T`` (``N(0,1)/sqrt(784)`` for MNIST's 784 pixels).
    """
    w = np.asarray(jax.random.normal(key, (out_dim, in_dim), dtype=np.float32))
    return w / np.float32(np.sqrt(in_dim))


def first_per_class(labels: np.ndarray, n: int, num_classes: int, what: str) -> np.ndarray:
    """Indices of the first ``n`` samples of every class, in their original order.

    Raises:
        ValueError: naming ``what`` when a class has fewer than ``n`` samples.

    Example:
        >>> first_per_class(np.array([1, 0, 1, 1, 0]), 2, 2, "toy")
        array([0, 1, 2, 4])
    """
    picks = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if idx.size < n:
            raise ValueError(
                f"num_images_per_class={n}: class {c} of the {what} training set has only {idx.size} images"
            )
        picks.append(idx[:n])
    return np.sort(np.concatenate(picks))
