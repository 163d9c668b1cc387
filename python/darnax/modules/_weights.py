"""Initial weights of the modules: the reference's dense draws wherever they are affordable.

Each draw is one or two compiled programs (split, Bernoulli mask; split, normal values,
scaling), the same operations in the same order as the reference's op-by-op draws, so the same
bits: a network's start then compiles (or loads from the compilation cache) a few programs
instead of dozens.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from darnax.ops import SparsityPattern
from darnax.ops.pattern_sampling import DENSE_DRAW_LIMIT, mask_columns


def drawn_densely(shape: tuple[int, int]) -> bool:
    """Whether a freshly drawn layer of this shape follows the reference's dense draws bit for
    bit (at most ``DENSE_DRAW_LIMIT`` entries); larger layers are drawn in O(nnz)."""
    return shape[0] * shape[1] <= DENSE_DRAW_LIMIT


def dense_normal(
    key: jax.Array, shape: tuple[int, int], strength: jax.Array, scale: float, *, divide_first: bool = False
) -> jax.Array:
    """``normal(key, shape) * strength[None, :] / scale`` (``/ scale * strength[None, :]`` when
    ``divide_first``), in ``strength``'s dtype: the dense modules' draw, as one program."""
    return _normal(key, strength, scale, shape=tuple(shape), divide_first=divide_first)


def sparse_draw(
    key: jax.Array,
    shape: tuple[int, int],
    sparsity: float,
    strength: jax.Array,
    scale: float,
    *,
    recurrent: bool = False,
) -> tuple[SparsityPattern, jax.Array]:
    """``(pattern, values)`` of a sparse module drawn as the reference draws it densely.

    ``key -> (key_w, key_mask)``; the pattern holds the nonzeros of
    ``bernoulli(key_mask, 1 - sparsity, shape)`` (less the diagonal when ``recurrent``), exactly
    :meth:`SparsityPattern.random`'s; the values are :func:`dense_normal` of ``key_w`` (the
    recurrent layer divides first) at the pattern's entries, in value (column) order.
    """
    shape = tuple(shape)
    mask_t = np.asarray(_sparse_mask(key, 1.0 - sparsity, shape=shape))
    pattern = SparsityPattern(shape, *mask_columns(mask_t, zero_diagonal=recurrent))
    del mask_t
    dense = np.asarray(_sparse_values(key, strength, scale, shape=shape, divide_first=recurrent))
    return pattern, jax.device_put(dense[pattern.row_idx, pattern.col_of_entry()])  # a gather: exact copies


def normal_on_pattern(key: jax.Array, pattern: SparsityPattern, column_scale: jax.Array) -> jax.Array:
    """``(nnz,)`` values ``N(0, 1) * column_scale[k]`` on the stored entries, in value order.

    One fused computation: apart from the result, only the entries' column indices are held
    (no dense ``(d, K)`` draw, no chain of ``(nnz,)`` temporaries).
    """
    return _scaled_normal(key, jnp.asarray(pattern.col_of_entry()), column_scale)


def _scaled(normal: jax.Array, strength: jax.Array, scale: jax.Array, divide_first: bool) -> jax.Array:
    # the barrier keeps XLA from fusing the scaling into the normal's own arithmetic, which
    # moves ~30% of the values by one ulp: the reference computes them in separate programs
    normal = jax.lax.optimization_barrier(normal)
    if divide_first:
        return normal / scale * strength[None, :]
    return normal * strength[None, :] / scale


@partial(jax.jit, static_argnames=("shape", "divide_first"))
def _normal(
    key: jax.Array, strength: jax.Array, scale: float, *, shape: tuple[int, int], divide_first: bool
) -> jax.Array:
    return _scaled(jax.random.normal(key, shape, dtype=strength.dtype), strength, scale, divide_first)


@partial(jax.jit, static_argnames=("shape",))
def _sparse_mask(key: jax.Array, density: float, *, shape: tuple[int, int]) -> jax.Array:
    """The transposed mask of :func:`sparse_draw`; the values are another program, which halves
    the peak memory of the draw (the random bits of one ``(d, K)`` draw at a time)."""
    return jax.random.bernoulli(jax.random.split(key)[1], density, shape).T


@partial(jax.jit, static_argnames=("shape", "divide_first"))
def _sparse_values(
    key: jax.Array, strength: jax.Array, scale: float, *, shape: tuple[int, int], divide_first: bool
) -> jax.Array:
    """The dense values of :func:`sparse_draw`."""
    normal = jax.random.normal(jax.random.split(key)[0], shape, dtype=strength.dtype)
    return _scaled(normal, strength, scale, divide_first)


@jax.jit
def _scaled_normal(key: jax.Array, cols: jax.Array, column_scale: jax.Array) -> jax.Array:
    return jax.random.normal(key, cols.shape, column_scale.dtype) * column_scale[cols]
