"""`OutputLayer`: the sink of the last row; it sums incoming messages and keeps them as scores."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from darnax.modules.interfaces import Layer


class OutputLayer(Layer):
    """Output layer with no parameters: self-message zeros, ``reduce`` = sum (of any pytree of
    messages, :meth:`~darnax.modules.interfaces.Layer.reduce`), identity activation.

    Its state holds the labels during training (clamped) and the class scores after
    :meth:`~darnax.orchestrators.sequential.SequentialOrchestrator.predict`.
    """

    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """Zeros shaped like ``x`` (the output layer sends nothing to itself)."""
        return jnp.zeros_like(x)

    def activation(self, h: jax.Array) -> jax.Array:
        """Identity: the scores are the field."""
        return h

    def backward(self, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None) -> OutputLayer:
        """Itself (no leaves, nothing to update)."""
        return self


__all__ = ["OutputLayer"]
