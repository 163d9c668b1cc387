"""`ClassificationDataset`: splits, transforms, batching and per-epoch shuffling for every dataset.

A dataset is configured by its constructor (nothing is read there), loaded and preprocessed once
by ``build(key)``, then iterated:

- ``for x, y in ds``: training batches of exactly ``batch_size`` (the last, partial batch is
  dropped when ``drop_last``, the default: a jitted train step then compiles once), reshuffled
  at every pass when ``shuffle``. Pass ``e`` uses ``fold_in(shuffle_key, e)``, where
  ``shuffle_key`` comes from the build key: the same key gives the same sequence of epochs.
- ``ds.iter_test()`` / ``ds.iter_valid()``: every image exactly once, in a fixed order, in
  batches of ``batch_size`` and one smaller last batch when the size is not a multiple.
- ``ds.arrays(split)`` / ``ds.epoch_arrays()``: whole splits as arrays, for trainers that run an
  epoch in one compiled call (``trainer.fit_epoch(*ds.epoch_arrays(), key, batch_size=B)`` trains
  on exactly the batches ``for x, y in ds`` would give).

Preprocessing, in order: ``rescale`` (pixels / ``pixel_max``: 255 for MNIST, 16 for Digits),
``flatten``, ``linear_projection`` (``x @ W.T``, ``W ~ N(0,1)/sqrt(d)`` fixed by the build key),
``x_transform``. Targets follow ``label_mode``. ``x`` and ``y`` are float32.

Raw ``uint8`` images without a projection are stored as they are (a quarter of float32's
memory), with a 256-entry table of their preprocessed values: every accessor returns the table
gathered at the stored pixels, the same float32 values a whole-split conversion gives.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from functools import partial
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from darnax.datasets.classification.transforms import (
    LABEL_MODES,
    X_TRANSFORMS,
    encode_labels,
    first_per_class,
    projection_matrix,
    transform_inputs,
)

Batch = tuple[jax.Array, jax.Array]
RawSplits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
SPLITS = ("train", "valid", "test")


def _int_or_none(name: str, value: int | None, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected None or an int >= {minimum}, got {value!r}")
    return int(value)


class ClassificationDataset(abc.ABC):
    """Base class: subclasses set the class attributes and implement :meth:`_load`.

    Attributes:
        name: the dataset's name (also its folder name for file-based datasets).
        num_classes: number of classes ``C`` (targets have shape ``(C,)``).
        image_shape: shape of one raw sample, e.g. ``(28, 28)``.
        pixel_max: the largest raw pixel value (``rescale`` divides by it).
    """

    name: ClassVar[str] = "dataset"
    num_classes: int = 10
    image_shape: tuple[int, ...] = ()
    pixel_max: float = 1.0

    def __init__(
        self,
        batch_size: int = 64,
        linear_projection: int | None = None,
        num_images_per_class: int | None = None,
        label_mode: str = "c-rescale",
        x_transform: str = "sign",
        validation_fraction: float = 0.0,
        flatten: bool = True,
        shuffle: bool = True,
        rescale: bool = True,
        *,
        drop_last: bool = True,
    ) -> None:
        """Check and store the configuration; nothing is loaded until :meth:`build`.

        Args:
            batch_size: samples per batch, at least 2.
            linear_projection: project flattened inputs to this many dimensions (needs ``flatten``).
            num_images_per_class: keep only the first ``n`` training images of each class (file order).
            label_mode: ``"pm1"``, ``"ooe"`` or ``"c-rescale"`` (see :func:`encode_labels`).
            x_transform: ``"sign"``, ``"tanh"`` or ``"identity"`` (see :func:`transform_inputs`).
            validation_fraction: fraction in ``[0, 1)`` of the training set held out for validation.
            flatten: give inputs as ``(B, prod(image_shape))`` rather than ``(B, *image_shape)``.
            shuffle: reshuffle the training set at every pass (else keep the stored order).
            rescale: divide raw pixels by ``pixel_max`` (to ``[0, 1]``).
            drop_last: drop the last, partial training batch (test and validation never drop).

        Raises:
            ValueError: for ``batch_size <= 1``, a fraction outside ``[0, 1)``, an unknown mode, a
                non-positive count, or ``linear_projection`` without ``flatten``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 1:
            raise ValueError(f"batch_size: expected an int > 1, got {batch_size!r}")
        if label_mode not in LABEL_MODES:
            raise ValueError(f"label_mode: expected one of {LABEL_MODES}, got {label_mode!r}")
        if x_transform not in X_TRANSFORMS:
            raise ValueError(f"x_transform: expected one of {X_TRANSFORMS}, got {x_transform!r}")
        fraction = float(validation_fraction)
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"validation_fraction: expected a value in [0, 1), got {validation_fraction!r}")
        if linear_projection is not None and not flatten:
            raise ValueError("linear_projection requires flatten=True (the projection acts on flat vectors)")
        self.batch_size = int(batch_size)
        self.linear_projection = _int_or_none("linear_projection", linear_projection, 1)
        self.num_images_per_class = _int_or_none("num_images_per_class", num_images_per_class, 1)
        self.label_mode = label_mode
        self.x_transform = x_transform
        self.validation_fraction = fraction
        self.flatten = bool(flatten)
        self.shuffle = bool(shuffle)
        self.rescale = bool(rescale)
        self.drop_last = bool(drop_last)
        self._data: dict[str, Batch] = {}  # inputs as stored: raw uint8 pixels when _table is set
        self._table: jax.Array | None = None
        self._shuffle_key: jax.Array | None = None  # set by build()
        self._epoch = 0

    # ------------------------------------------------------------------ loading
    @abc.abstractmethod
    def _load(self, key: jax.Array) -> RawSplits:
        """Raw ``(x_train, labels_train, x_test, labels_test)``: images ``(N, *image_shape)``, int labels."""

    def build(self, key: jax.Array) -> jax.Array:
        """Load the data, split, preprocess and move it to the device.

        The key is split into five: projection matrix, validation split, epoch shuffles, the
        loader's own randomness (synthetic data), and the key returned.

        Args:
            key: a JAX PRNG key.

        Returns:
            A fresh key for the caller.
        """
        key_proj, key_valid, key_shuffle, key_data, key_out = jax.random.split(key, 5)
        x_train, l_train, x_test, l_test = self._checked(self._load(key_data))
        if self.num_images_per_class is not None:
            keep = first_per_class(l_train, self.num_images_per_class, self.num_classes, self.name)
            x_train, l_train = x_train[keep], l_train[keep]
        splits = {"train": (x_train, l_train), "test": (x_test, l_test)}
        if self.validation_fraction > 0.0:
            n = x_train.shape[0]
            n_valid = int(n * self.validation_fraction)
            if not 0 < n_valid < n:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} of {n} training images leaves "
                    f"{n_valid} for validation and {n - n_valid} for training; both must be > 0"
                )
            perm = np.asarray(jax.random.permutation(key_valid, n))
            valid, train = np.sort(perm[:n_valid]), np.sort(perm[n_valid:])
            splits["train"] = (x_train[train], l_train[train])
            splits["valid"] = (x_train[valid], l_train[valid])
        n_train = splits["train"][0].shape[0]
        if self.drop_last and n_train < self.batch_size:
            raise ValueError(f"batch_size={self.batch_size} exceeds the {n_train} training images of {self.name}")
        flat_dim = int(np.prod(self.image_shape))
        w = projection_matrix(key_proj, self.linear_projection, flat_dim) if self.linear_projection else None
        self._table = None
        if w is None and x_train.dtype == np.uint8 and x_test.dtype == np.uint8:
            self._table = jax.device_put(self._floats(np.arange(256, dtype=np.uint8)[:, None], None)[:, 0])
        self._data = {  # device_put, not jnp.asarray: that would load one more small program per shape
            split: (self._inputs(x, w), jax.device_put(encode_labels(labels, self.num_classes, self.label_mode)))
            for split, (x, labels) in splits.items()
        }
        self._shuffle_key = key_shuffle
        self._epoch = 0
        return key_out

    def _checked(self, raw: RawSplits) -> RawSplits:
        x_train, l_train, x_test, l_test = (np.asarray(a) for a in raw)
        for split, x, labels in (("train", x_train, l_train), ("test", x_test, l_test)):
            if x.shape[1:] != tuple(self.image_shape) or labels.shape != x.shape[:1]:
                raise ValueError(
                    f"{self.name} {split}: images {x.shape} and labels {labels.shape} do not match "
                    f"(N, {', '.join(map(str, self.image_shape))}) and (N,)"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f"{self.name} {split}: labels outside [0, {self.num_classes})")
        return x_train, l_train.astype(np.int64), x_test, l_test.astype(np.int64)

    def _inputs(self, x: np.ndarray, w: np.ndarray | None) -> jax.Array:
        if self._table is not None:  # device_put: a read-only, aligned mapping is used without a copy
            return jax.device_put(x.reshape(x.shape[0], -1) if self.flatten else x)
        return jax.device_put(self._floats(x, w))

    def _floats(self, x: np.ndarray, w: np.ndarray | None) -> np.ndarray:
        """The float32 network inputs of raw images ``x``: rescaled, flattened, projected, transformed."""
        x = x.astype(np.float32)  # always a fresh copy: divided in place below
        if self.rescale:
            np.divide(x, np.float32(self.pixel_max), out=x)
        if self.flatten:
            x = x.reshape(x.shape[0], -1)
        if w is not None:
            x = x @ w.T
        return transform_inputs(x, self.x_transform)

    # ------------------------------------------------------------------ access
    def _split(self, split: str) -> Batch:
        if not self._data:
            raise RuntimeError(f"{type(self).__name__} is not built: call build(key) first")
        if split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
        if split not in self._data:
            raise RuntimeError(f"{type(self).__name__} has no validation split: pass validation_fraction > 0 (got 0.0)")
        return self._data[split]

    def _decoded(self, x: jax.Array) -> jax.Array:
        return x if self._table is None else self._table[x]

    def arrays(self, split: str = "train") -> Batch:
        """The whole split ``"train"``, ``"valid"`` or ``"test"`` as ``(x, y)`` arrays, in stored order."""
        x, y = self._split(split)
        return self._decoded(x), y

    def rows(self, split: str, index: jax.Array | slice) -> Batch:
        """``arrays(split)`` at ``index`` (an index array or a slice of rows), decoding only those
        rows: the way to walk a split in chunks without a float32 copy of all of it. One compiled
        program per chunk length (the gathers and the decoding fused)."""
        x, y = self._split(split)
        if isinstance(index, slice):
            index = np.arange(*index.indices(x.shape[0]))
        return _take_rows(x, y, index, self._table)

    def epoch_arrays(self) -> Batch:
        """The training arrays of the next pass, in its order, cut to whole batches if ``drop_last``.

        Advances the epoch counter, as one ``for x, y in ds`` does; iterating ``batch_size`` rows
        at a time gives exactly that pass's batches.
        """
        return self.rows("train", self.epoch_order())

    def epoch_order(self) -> jax.Array:
        """The stored rows of the training split that the next pass visits, in its order (a
        shuffle when ``shuffle``, cut to whole batches if ``drop_last``): ``epoch_arrays()`` is
        ``arrays("train")`` indexed by it. Advances the epoch counter; lets a caller gather one
        chunk of a pass at a time instead of holding a shuffled copy of the whole split.
        """
        n = self._split("train")[0].shape[0]
        keep = n - n % self.batch_size if self.drop_last else n
        if self.shuffle and self._shuffle_key is not None:
            order = _shuffled(self._shuffle_key, self._epoch, n=n, keep=keep)
        else:
            order = jnp.arange(keep)
        self._epoch += 1
        return order

    @property
    def epoch(self) -> int:
        """Training passes taken so far (the next pass's shuffle is drawn from this count)."""
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        """Set the pass counter, e.g. to resume a run after ``value`` completed epochs."""
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"epoch: expected an int >= 0, got {value!r}")
        self._epoch = int(value)

    def _batches(self, x: jax.Array, y: jax.Array) -> Iterator[Batch]:
        for lo in range(0, x.shape[0], self.batch_size):
            yield _rows(x, y, min(self.batch_size, x.shape[0] - lo), lo)

    def __iter__(self) -> Iterator[Batch]:
        """Training batches of one pass (a new shuffle every pass when ``shuffle``)."""
        return self._batches(*self.epoch_arrays())

    def iter_test(self) -> Iterator[Batch]:
        """Test batches: every test image once, in order; the last batch may be smaller."""
        return self._batches(*self._split("test"))

    def iter_valid(self) -> Iterator[Batch]:
        """Validation batches: every held-out image once, in order; the last batch may be smaller."""
        return self._batches(*self._split("valid"))

    def __len__(self) -> int:
        """Number of training batches per pass."""
        n = self._split("train")[0].shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def spec(self) -> dict[str, Any]:
        """Shapes, dtypes, sizes and encodings of the built dataset."""
        x, y = self.rows("train", slice(0, 1))
        n_train = self._split("train")[0].shape[0]
        return {
            "name": self.name,
            "x_shape": tuple(x.shape[1:]),
            "x_dtype": x.dtype,
            "y_shape": tuple(y.shape[1:]),
            "y_dtype": y.dtype,
            "num_classes": self.num_classes,
            "input_dim": int(np.prod(x.shape[1:])),
            "projected_dim": self.linear_projection,
            "label_encoding": self.label_mode,
            "x_transform": self.x_transform,
            "batch_size": self.batch_size,
            "num_train": int(n_train),
            "num_valid": int(self._data["valid"][0].shape[0]) if "valid" in self._data else 0,
            "num_test": int(self._data["test"][0].shape[0]),
            "train_batches": len(self),
        }


@partial(jax.jit, static_argnums=2)
def _rows(x: jax.Array, y: jax.Array, size: int, start: int) -> Batch:
    """Rows ``start .. start + size - 1`` of ``x`` and ``y``: one compiled call for both (a fifth
    of the time of two ``x[lo:hi]`` slices, which a per-batch training loop would pay per batch)."""
    return jax.lax.dynamic_slice_in_dim(x, start, size), jax.lax.dynamic_slice_in_dim(y, start, size)


@jax.jit
def _take_rows(x: jax.Array, y: jax.Array, index: jax.Array, table: jax.Array | None) -> Batch:
    """``(table[x[index]], y[index])`` (``x[index]`` without a table), as one program."""
    rows = x[index]
    return (rows if table is None else table[rows]), y[index]


@partial(jax.jit, static_argnames=("n", "keep"))
def _shuffled(key: jax.Array, epoch: int, *, n: int, keep: int) -> jax.Array:
    """The first ``keep`` entries of ``permutation(fold_in(key, epoch), n)``, as one program."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)[:keep]
