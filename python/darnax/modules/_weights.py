"""Initial weights of sparse modules: the reference's dense draw wherever it is affordable."""

from __future__ import annotations

import jax

from darnax.ops import SparsityPattern
from darnax.ops.pattern_sampling import DENSE_DRAW_LIMIT


def normal_on_pattern(
    key: jax.Array, pattern: SparsityPattern, dtype: jax.typing.DTypeLike, *, like_reference: bool
) -> jax.Array:
    """``(nnz,)`` standard normal values on ``pattern``'s stored entries, in value (column) order.

    With ``like_reference`` and at most ``DENSE_DRAW_LIMIT`` entries in the full shape, the
    values are those of the reference's dense draw ``jax.random.normal(key, (d, K))`` on the
    pattern, bit for bit; otherwise one value per stored entry is drawn (same distribution,
    O(nnz) memory).
    """
    d, k = pattern.shape
    if like_reference and d * k <= DENSE_DRAW_LIMIT:
        return pattern.gather(jax.random.normal(key, pattern.shape, dtype=dtype))
    return jax.random.normal(key, (pattern.nnz,), dtype=dtype)
