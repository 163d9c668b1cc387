"""The local learning rule of darnax: a one-vs-all perceptron update with a margin.

For a receiver with targets ``y`` (``(n, K)``, ±1), fields ``y_hat`` (``(n, K)``) and a
sender with activity ``x`` (``(n, d)``)::

    mistake = (y * y_hat <= margin)                 # ties count as mistakes
    dW      = -(x^T (gate * mistake * y)) / (sqrt(n) * sqrt(d))      # (d, K)

The minus sign makes ``optax.sgd(lr)`` *add* ``lr * x^T (mistake * y) / ...`` to ``W``: the
returned array is a pseudo-gradient for Optax. Sparse modules use :func:`perceptron_error`
and evaluate ``x^T e`` only on their pattern (:func:`darnax.ops.sparse_outer`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from darnax.utils.data_parallel import batch_sum, global_batch_size


def perceptron_error(
    y: jax.Array,
    y_hat: jax.Array,
    margin: jax.typing.ArrayLike,
    gate: jax.typing.ArrayLike | None = None,
) -> jax.Array:
    """The postsynaptic factor ``e = gate * mistake * y`` of the perceptron rule.

    Args:
        y: ``(n, K)`` targets in {-1, +1}.
        y_hat: ``(n, K)`` fields (pre-activations).
        margin: scalar, ``(K,)`` or ``(n, K)``; a mistake is ``y * y_hat <= margin``.
        gate: optional multiplicative gate, a scalar or broadcastable to ``(n, K)``.

    Returns:
        ``(n, K)`` array of ``y``'s dtype.

    Raises:
        ValueError: when ``y`` and ``y_hat`` differ in shape.
    """
    if y.shape != y_hat.shape:
        raise ValueError(f"y and y_hat must have one shape, got {y.shape} and {y_hat.shape}")
    margin = jnp.broadcast_to(jnp.asarray(margin, dtype=y_hat.dtype), y.shape)
    e = jnp.where(y * y_hat <= margin, y, jnp.zeros_like(y))
    if gate is not None:
        e = e * jnp.broadcast_to(jnp.asarray(gate, dtype=e.dtype), e.shape)
    return e


def perceptron_scale(n: int, d: int) -> float:
    """The normalisation ``-1 / (sqrt(n) * sqrt(d))`` of the rule, sign included."""
    return -1.0 / (n**0.5 * d**0.5)


def perceptron_rule_backward(
    x: jax.Array,
    y: jax.Array,
    y_hat: jax.Array,
    margin: jax.typing.ArrayLike,
    gate: jax.typing.ArrayLike | None = None,
    outer: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> jax.Array:
    """Dense one-vs-all perceptron update ``dW = -(x^T (gate * mistake * y)) / (sqrt(n) sqrt(d))``.

    No learning rate is applied here. ``x``, ``y`` and ``y_hat`` may also be single samples
    (rank 1); they are then treated as a batch of one.

    Args:
        x: ``(n, d)`` sender activity.
        y: ``(n, K)`` targets in {-1, +1}.
        y_hat: ``(n, K)`` fields.
        margin: scalar, ``(K,)`` or ``(n, K)``.
        gate: optional gate, a scalar or broadcastable to ``(n, K)``.
        outer: computes ``x^T e`` for ``(n, d)`` and ``(n, K)`` arrays (e.g.
            :func:`darnax.ops.dense_outer`); None for ``x.T @ e``.

    Returns:
        ``(d, K)`` pseudo-gradient (``optax.sgd`` subtracts it, i.e. adds the perceptron step).

    Raises:
        ValueError: on inconsistent batch sizes.

    Example:
        >>> x = jnp.array([[1.0, -1.0]])
        >>> perceptron_rule_backward(x, jnp.array([[1.0]]), jnp.array([[0.0]]), 0.5).tolist()
        [[-0.7071067690849304], [0.7071067690849304]]
    """
    x, y, y_hat = jnp.atleast_2d(x), jnp.atleast_2d(y), jnp.atleast_2d(y_hat)
    n, d = x.shape
    if y.shape[0] != n:
        raise ValueError(f"x and y must share the batch size, got {n} and {y.shape[0]}")
    e = perceptron_error(y, y_hat, margin, gate)
    product = x.T @ e if outer is None else outer(x, e)
    return batch_sum(product) * perceptron_scale(global_batch_size(n), d)


__all__ = ["perceptron_error", "perceptron_rule_backward", "perceptron_scale"]
