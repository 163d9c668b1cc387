"""``sparse_matmul``: ``y = x @ (W ⊙ M)`` for a weight stored only on its pattern ``M``."""

from __future__ import annotations

import jax

from darnax.ops._checks import float_array, same_dtype
from darnax.ops._sparse_products import matmul
from darnax.ops.pattern import SparsityPattern


def sparse_matmul(x: jax.Array, values: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """Product of a batch of rows with a sparse matrix: ``y[b, k] = sum_i x[b, i] W[i, k]``.

    Cost O(B * (d + nnz + K)), one compiled kernel (single-threaded per call), exact
    float accumulation in column order (results do not depend on thread count).
    Differentiable in reverse mode (``jax.grad``, ``jax.vjp``): ``x_bar = y_bar @ W^T`` (a
    product with the transposed pattern) and ``values_bar = sparse_outer(x, y_bar, pattern)``; no
    forward mode (see :mod:`darnax.ops._sparse_products`).

    Args:
        x: ``(B, d)`` float32 or float64.
        values: ``(nnz,)`` weights on ``pattern`` (column order), same dtype as ``x``.
        pattern: the ``(d, K)`` pattern.

    Returns:
        ``(B, K)`` array of ``x``'s dtype.

    Raises:
        TypeError, ValueError: on a wrong dtype or shape, naming the argument.

    Example:
        >>> p = SparsityPattern.from_mask(np.eye(2, dtype=bool))
        >>> sparse_matmul(jnp.ones((1, 2)), jnp.array([2.0, 3.0]), p).tolist()
        [[2.0, 3.0]]
    """
    d = pattern.shape[0]
    x = float_array("x", x, (None, d))
    values = float_array("values", values, (pattern.nnz,))
    same_dtype(x=x, values=values)
    return matmul(x, values, pattern)


def sparse_matmul_reference(x: jax.Array, values: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """Pure ``jax.numpy`` oracle of :func:`sparse_matmul`: the dense masked product."""
    return x @ pattern.to_dense(values)
