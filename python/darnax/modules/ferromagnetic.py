"""`Ferromagnetic`: a fixed elementwise coupling ``x * strength`` between two layers of one width."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from darnax.modules.interfaces import Adapter, SquareModule
from darnax.utils._checks import as_vector, positive_int


class Ferromagnetic(SquareModule, Adapter):
    """Message ``x * strength`` (unit ``k`` of the sender drives unit ``k`` of the receiver); frozen.

    Attributes:
        strength: ``(features,)`` coupling per unit.
    """

    strength: jax.Array
    features: int = eqx.field(static=True)

    def __init__(self, features: int, strength: jax.typing.ArrayLike, dtype: jax.typing.DTypeLike = jnp.float32):
        """Set the per-unit coupling.

        Args:
            features: width of both layers.
            strength: scalar or ``(features,)``.
            dtype: parameter dtype.

        Raises:
            ValueError: on a ``strength`` of the wrong length.
        """
        self.features = positive_int("features", features)
        self.strength = as_vector("strength", strength, self.features, dtype)

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """``x * strength`` (broadcast over the batch)."""
        return x * self.strength[None, :]

    def backward(self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None) -> Ferromagnetic:
        """Zeros (the coupling is fixed)."""
        return self.zero_update()


__all__ = ["Ferromagnetic"]
