"""`Prototypes`: the synthetic binary-prototype task of the simple training tutorial (seed 06).

``K`` prototypes are drawn uniformly in ``{-1, +1}^D``; the data set repeats each prototype
``N // K + 1`` times (truncated to ``N`` samples, so the last class may have fewer), flips every
sign independently with probability ``p_noise``, and shuffles; the target of a sample is its
prototype's index (±1 one-vs-all with the default ``label_mode="pm1"``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from darnax.datasets.classification.base import ClassificationDataset, RawSplits

#: ``fold_in`` constant that derives the test set's key from the data key (the training draw is untouched).
TEST_KEY_SALT = 0x7E57


@functools.partial(jax.jit, static_argnames=("num_data", "p_noise"))
def noisy_copies(prototypes: jax.Array, key: jax.Array, num_data: int, p_noise: float) -> tuple[jax.Array, jax.Array]:
    """``num_data`` noisy copies of ``prototypes`` ``(K, D)`` and their class indices, shuffled.

    Each prototype is repeated ``num_data // K + 1`` times (truncated to ``num_data``); every sign
    is kept with probability ``1 - p_noise``; ``key`` splits into ``(shuffle key, flip key)``.
    Compiled once per ``(num_data, p_noise)`` and prototype shape.
    """
    k = prototypes.shape[0]
    reps = num_data // k + 1
    labels = jnp.repeat(jnp.arange(k), reps, total_repeat_length=num_data)
    key, carry = jax.random.split(key)
    x = jnp.repeat(prototypes, reps, axis=0, total_repeat_length=num_data)
    keep = np.float32(1.0 - p_noise)  # float32 whatever jax_enable_x64 says: the draw depends on p's dtype
    flips = jax.random.bernoulli(carry, p=keep, shape=x.shape).astype(jnp.float32) * 2 - 1
    shuffle = jax.random.permutation(key, num_data)
    return (x * flips)[shuffle], labels[shuffle]


@functools.partial(jax.jit, static_argnames=("num_prototypes", "dim_prototypes", "num_data", "p_noise"))
def prototype_data(
    key: jax.Array, num_prototypes: int, dim_prototypes: int, num_data: int, p_noise: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(prototypes, x, labels)`` exactly as the tutorial's ``PrototypeData(key, ...)`` draws them.

    ``key`` splits into ``(prototype key, data key)``; prototypes are Rademacher ``float32``. The
    draws are those of JAX's default 32-bit mode, also when ``jax_enable_x64`` is on (JAX's own
    ``rademacher`` and ``bernoulli`` with a Python-float ``p`` draw differently in 64-bit mode).
    """
    key_prototypes, key_data = jax.random.split(key)
    # jax.random.rademacher(key, shape, float32) as it draws in 32-bit mode, whatever jax_enable_x64 says
    coins = jax.random.bernoulli(key_prototypes, p=np.float32(0.5), shape=(num_prototypes, dim_prototypes))
    prototypes = coins.astype(jnp.float32) * 2 - 1
    x, labels = noisy_copies(prototypes, key_data, num_data=num_data, p_noise=p_noise)
    return prototypes, x, labels


class Prototypes(ClassificationDataset):
    """Noisy binary prototypes, with the build/iteration interface of every darnax dataset.

    The training set is :func:`prototype_data` of the data key (the tutorial's ``x``, ``y`` in its
    shuffled order, ``y`` as ±1 one-vs-all); the test set is ``num_test_data`` fresh noisy copies of
    the same prototypes (a key folded from the data key). Batches follow
    :class:`ClassificationDataset` (fixed size, last partial training batch dropped, reshuffled
    each pass) rather than the tutorial's ``array_split`` into nearly equal batches.

    Example:
        >>> ds = Prototypes(batch_size=16, num_prototypes=10, dim_prototypes=100, num_data=1000)
        >>> key = ds.build(jax.random.key(0))
        >>> x, y = next(iter(ds))
        >>> x.shape, y.shape, len(ds), ds.prototypes.shape
        ((16, 100), (16, 10), 62, (10, 100))
    """

    name = "prototypes"

    def __init__(
        self,
        batch_size: int = 16,
        num_prototypes: int = 10,
        dim_prototypes: int = 100,
        num_data: int = 1000,
        p_noise: float = 0.3,
        *,
        num_test_data: int = 200,
        label_mode: str = "pm1",
        x_transform: str = "identity",
        validation_fraction: float = 0.0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        """Configure the task; samples are drawn by :meth:`build`.

        Args:
            batch_size: samples per batch, at least 2.
            num_prototypes: number of classes ``K`` (at least 2).
            dim_prototypes: input width ``D``.
            num_data: training samples ``N``, at least ``K``.
            p_noise: probability of flipping each sign, in ``[0, 0.5)``.
            num_test_data: test samples (at least 1), fresh copies of the same prototypes.
            label_mode, x_transform, validation_fraction, shuffle, drop_last: see
                :class:`ClassificationDataset`.

        Raises:
            ValueError: for any value out of its range.
        """
        for arg, value, low in (
            ("num_prototypes", num_prototypes, 2),
            ("dim_prototypes", dim_prototypes, 1),
            ("num_data", num_data, 1),
            ("num_test_data", num_test_data, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{arg}: expected an int >= {low}, got {value!r}")
        if num_data < num_prototypes:
            raise ValueError(f"num_data={num_data} must be at least num_prototypes={num_prototypes}")
        if not 0.0 <= float(p_noise) < 0.5:
            raise ValueError(f"p_noise: expected a value in [0, 0.5), got {p_noise!r}")
        super().__init__(
            batch_size,
            label_mode=label_mode,
            x_transform=x_transform,
            validation_fraction=validation_fraction,
            shuffle=shuffle,
            rescale=False,
            drop_last=drop_last,
        )
        self.num_classes = int(num_prototypes)
        self.image_shape = (int(dim_prototypes),)
        self.num_data = int(num_data)
        self.num_test_data = int(num_test_data)
        self.p_noise = float(p_noise)
        self.prototypes: jax.Array | None = None

    def _load(self, key: jax.Array) -> RawSplits:
        """Draw the prototypes, the training set (as the tutorial) and the test set."""
        k, d = self.num_classes, self.image_shape[0]
        self.prototypes, x, labels = prototype_data(
            key, num_prototypes=k, dim_prototypes=d, num_data=self.num_data, p_noise=self.p_noise
        )
        test_key = jax.random.fold_in(key, TEST_KEY_SALT)
        x_test, labels_test = noisy_copies(self.prototypes, test_key, num_data=self.num_test_data, p_noise=self.p_noise)
        return np.asarray(x), np.asarray(labels), np.asarray(x_test), np.asarray(labels_test)
