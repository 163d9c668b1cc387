"""``sparse_matmul``: ``y = x @ (W ⊙ M)`` for a weight stored only on its pattern ``M``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from darnax.ops import _ffi
from darnax.ops._batching import fold_vmap
from darnax.ops._checks import float_array, same_dtype
from darnax.ops.pattern import SparsityPattern


def sparse_matmul(x: jax.Array, values: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """Product of a batch of rows with a sparse matrix: ``y[b, k] = sum_i x[b, i] W[i, k]``.

    Cost O(B * (d + nnz + K)), one compiled kernel (single-threaded per call), exact
    float accumulation in column order (results do not depend on thread count).

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
    d, k = pattern.shape
    x = float_array("x", x, (None, d))
    values = float_array("values", values, (pattern.nnz,))
    same_dtype(x=x, values=values)

    def call(x: jax.Array, values: jax.Array) -> tuple[jax.Array]:
        out = jax.ShapeDtypeStruct((x.shape[0], k), x.dtype)
        run = _ffi.ffi_call("sparse_matmul", out, vmap_method="sequential")
        return (run(x, values, **_ffi.pattern_attrs(pattern)),)

    return fold_vmap(call, n_sample=1)(x, values)[0]


def sparse_matmul_reference(x: jax.Array, values: jax.Array, pattern: SparsityPattern) -> jax.Array:
    """Pure ``jax.numpy`` oracle of :func:`sparse_matmul`: the dense masked product."""
    return x @ pattern.to_dense(values)
