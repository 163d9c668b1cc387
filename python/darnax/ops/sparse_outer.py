"""``sparse_outer``: the plasticity update of a sparse weight, ``(x^T e) ⊙ M`` on the pattern only."""

from __future__ import annotations

import jax

from darnax.ops._checks import float_array, same_dtype
from darnax.ops._sparse_products import outer
from darnax.ops.pattern import SparsityPattern


def sparse_outer(x: jax.Array, e: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """Sampled dense-dense product: ``out[p] = sum_b x[b, i_p] e[b, k_p]`` for each stored ``(i_p, k_p)``.

    Cost O(B * (d + K + nnz)), never O(B * d * K). Differentiable in reverse mode (it is
    linear in ``x`` and in ``e``; the gradients are two :func:`sparse_matmul` products, see
    :mod:`darnax.ops._sparse_products`); no forward mode.

    Args:
        x: ``(B, d)`` presynaptic activity, float32 or float64.
        e: ``(B, K)`` postsynaptic signal (e.g. the gated perceptron error), same dtype.
        pattern: the ``(d, K)`` pattern.

    Returns:
        ``(nnz,)`` array aligned with the pattern's values (column order).

    Example:
        >>> p = SparsityPattern.from_mask(np.array([[True, False], [True, True]]))
        >>> sparse_outer(jnp.array([[1.0, 2.0]]), jnp.array([[3.0, 5.0]]), p).tolist()
        [3.0, 6.0, 10.0]
    """
    d, k = pattern.shape
    x = float_array("x", x, (None, d))
    e = float_array("e", e, (x.shape[0], k))
    same_dtype(x=x, e=e)
    return outer(x, e, pattern)


def sparse_outer_reference(x: jax.Array, e: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """Pure ``jax.numpy`` oracle of :func:`sparse_outer`: the dense outer product, gathered."""
    return pattern.gather(x.T @ e)
