"""Initial weights of sparse modules: the reference's dense draw wherever it is affordable."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from darnax.ops import SparsityPattern
from darnax.ops.pattern_sampling import DENSE_DRAW_LIMIT


def drawn_densely(shape: tuple[int, int]) -> bool:
    """Whether a freshly drawn layer of this shape follows the reference's dense draws bit for
    bit (at most ``DENSE_DRAW_LIMIT`` entries); larger layers are drawn in O(nnz)."""
    return shape[0] * shape[1] <= DENSE_DRAW_LIMIT


def normal_on_pattern(key: jax.Array, pattern: SparsityPattern, column_scale: jax.Array) -> jax.Array:
    """``(nnz,)`` values ``N(0, 1) * column_scale[k]`` on the stored entries, in value order.

    One fused computation: apart from the result, only the entries' column indices are held
    (no dense ``(d, K)`` draw, no chain of ``(nnz,)`` temporaries).
    """
    return _scaled_normal(key, jnp.asarray(pattern.col_of_entry()), column_scale)


@jax.jit
def _scaled_normal(key: jax.Array, cols: jax.Array, column_scale: jax.Array) -> jax.Array:
    return jax.random.normal(key, cols.shape, column_scale.dtype) * column_scale[cols]
