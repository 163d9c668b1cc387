"""Random sparsity patterns of any size, sampled in O(nnz) time and memory.

Both samplers return a column-compressed pattern ``(col_ptr, row_idx)`` as int32 NumPy arrays,
the layout of :class:`~darnax.ops.SparsityPattern`: column ``k`` (receiving unit ``k``) stores
the rows ``row_idx[col_ptr[k]:col_ptr[k + 1]]``, its inputs, strictly increasing. Nothing of size
``d * K`` is built, except by the dense draw of small Bernoulli patterns (see
:data:`DENSE_DRAW_LIMIT`).

Randomness comes from a JAX key: the sparse samplers seed a NumPy ``Generator`` (PCG64) with
four words of ``jax.random.bits(key)``, so one key gives one pattern on every machine and in
every process (for a given NumPy version, whose ``Generator`` streams may change between
releases).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

DENSE_DRAW_LIMIT = 2**24
"""Largest ``d * K`` that :func:`bernoulli_columns` draws densely, bit for bit as
``jax.random.bernoulli(key, density, (d, K))``.

2**24 entries (4096 x 4096, or 784 x 21,400): every layer that the existing experiments draw
with ``SparsityPattern.random`` (784 x 2000, 2000 x 2000) keeps its pattern, with a 4x margin,
while the dense draw stays within about 1.5 s and 0.5 GB of transient memory at the limit
(JAX's threefry words and uniforms for 16.8 M entries, measured on 2 vCPUs), the budget of the
sparse sampler for 10 M entries. Above it the dense draw's cost keeps growing with ``d * K``.
"""

_I32_MAX = int(np.iinfo(np.int32).max)
_I64_MAX = int(np.iinfo(np.int64).max)


def bernoulli_columns(
    key: jax.Array, shape: tuple[int, int], density: float, *, zero_diagonal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pattern with every entry present independently with probability ``density``.

    For ``d * K <= DENSE_DRAW_LIMIT`` the pattern is exactly the nonzeros of
    ``jax.random.bernoulli(key, density, (d, K))`` (and ``~eye`` when ``zero_diagonal``), as
    ``SparsityPattern.random`` draws it. Larger shapes are sampled in O(nnz): the gaps between
    successive entries in column-major order are geometric, so the positions come out sorted,
    distinct and independent; this is the same distribution (per-column counts
    ``Binomial(rows, density)``, then uniform distinct rows) but not the same draw. Like
    ``jax.random.bernoulli``, the dense draw depends on ``jax_enable_x64`` (float64 uniforms
    when set); the sparse one does not.

    Args:
        key: a JAX PRNG key (typed or raw uint32).
        shape: ``(d, K)``, non-negative ints.
        density: probability of each entry, in ``[0, 1]``.
        zero_diagonal: exclude the diagonal (needs ``d == K``).

    Returns:
        ``(col_ptr, row_idx)``: int32 ``(K + 1,)`` and ``(nnz,)``.

    Raises:
        ValueError: on a bad ``shape`` or ``density``, ``zero_diagonal`` with a non-square shape,
            or more than 2**31 - 1 entries.

    Example:
        >>> col_ptr, row_idx = bernoulli_columns(jax.random.key(0), (3, 3), 1.0, zero_diagonal=True)
        >>> col_ptr.tolist(), row_idx.tolist()
        ([0, 2, 4, 6], [1, 2, 0, 2, 0, 1])
    """
    d, k = checked_shape(shape, zero_diagonal)
    try:
        p = float(density)
    except (TypeError, ValueError):
        p = float("nan")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"density: expected a number in [0, 1], got {density!r}")
    if d * k <= DENSE_DRAW_LIMIT:  # the dense draw's nonzeros, column by column as SparsityPattern.from_mask
        return mask_columns(np.asarray(_bernoulli_by_columns(key, p, (d, k))), zero_diagonal=zero_diagonal)
    n = d - zero_diagonal  # rows available to each column
    if k * n * p > _I32_MAX:
        raise ValueError(f"pattern too large for int32 indices: about {k * n * p:.3g} entries expected")
    return _columns(_bernoulli_positions(_numpy_rng(key), k * n, p), n, d, k)


def mask_columns(mask_t: np.ndarray, *, zero_diagonal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(col_ptr, row_idx)`` of the nonzeros of a ``(K, d)`` boolean mask given by columns (the
    transpose of the ``(d, K)`` mask), without its diagonal when ``zero_diagonal``.

    Example:
        >>> col_ptr, row_idx = mask_columns(np.array([[1, 1, 0], [0, 1, 1]], bool))
        >>> col_ptr.tolist(), row_idx.tolist()
        ([0, 2, 4], [0, 1, 1, 2])
    """
    k, d = mask_t.shape
    if zero_diagonal:
        mask_t = mask_t.copy() if not mask_t.flags.writeable else mask_t
        np.fill_diagonal(mask_t, False)
    return _columns(np.flatnonzero(mask_t), d, d, k)


@partial(jax.jit, static_argnames=("shape",))
def _bernoulli_by_columns(key: jax.Array, p: float, shape: tuple[int, int]) -> jax.Array:
    """``jax.random.bernoulli(key, p, shape).T``: one compiled program, the transpose included."""
    return jax.random.bernoulli(key, p, shape).T


def _columns(pos: np.ndarray, n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(col_ptr, row_idx)`` from sorted positions ``column * n + row`` (``n = d - 1``: rows
    sampled without the diagonal, shifted past it)."""
    if pos.size > _I32_MAX:
        raise ValueError(f"pattern too large for int32 indices: {pos.size} entries drawn")
    col_ptr = np.searchsorted(pos, np.arange(k + 1, dtype=np.int64) * n)  # pos: column * n + row
    rows = np.remainder(pos, max(n, 1), out=pos)
    if n < d:  # sampled without the diagonal: row j >= k of the d - 1 available ones is row j + 1
        rows += rows >= np.repeat(np.arange(k, dtype=np.int32), np.diff(col_ptr))
    return col_ptr.astype(np.int32), rows.astype(np.int32)


def fixed_fan_in_columns(
    key: jax.Array, shape: tuple[int, int], fan_in: int, *, zero_diagonal: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pattern whose every column holds exactly ``fan_in`` distinct rows, uniformly at random.

    Each column's row set is a uniform ``fan_in``-subset of its available rows (all ``d``, or the
    ``d - 1`` off the diagonal), independently of the other columns. Sampled in O(nnz) by
    drawing with replacement and redrawing only the duplicates; above half the available rows
    the excluded rows are drawn instead.

    Args:
        key: a JAX PRNG key (typed or raw uint32).
        shape: ``(d, K)``, non-negative ints.
        fan_in: rows per column, an int in ``[0, d]`` (``[0, d - 1]`` with ``zero_diagonal``).
        zero_diagonal: no self-coupling: column ``k`` never holds row ``k`` (needs ``d == K``).

    Returns:
        ``(col_ptr, row_idx)``: int32 ``(K + 1,)`` and ``(K * fan_in,)``.

    Raises:
        ValueError: on a bad ``shape`` or ``fan_in``, ``zero_diagonal`` with a non-square shape,
            or more than 2**31 - 1 entries.

    Example:
        >>> col_ptr, row_idx = fixed_fan_in_columns(jax.random.key(0), (4, 4), 3, zero_diagonal=True)
        >>> col_ptr.tolist(), row_idx.tolist()
        ([0, 3, 6, 9, 12], [1, 2, 3, 0, 2, 3, 0, 1, 3, 0, 1, 2])
    """
    d, k = checked_shape(shape, zero_diagonal)
    n = max(d - zero_diagonal, 0)
    if not (_is_int(fan_in) and 0 <= fan_in <= n):
        raise ValueError(f"fan_in: expected an int in [0, {n}], got {fan_in!r}")
    f = int(fan_in)
    if k * f > _I32_MAX:
        raise ValueError(f"pattern too large for int32 indices: {k} x {f} = {k * f} entries")
    rng = _numpy_rng(key)
    if 2 * f <= n:
        rows = _distinct_sorted(rng, k, f, n)
    else:
        rows = _complement(_distinct_sorted(rng, k, n - f, n), n)
    if zero_diagonal:
        rows += rows >= np.arange(k, dtype=np.int32)[:, None]
    return (np.arange(k + 1, dtype=np.int64) * f).astype(np.int32), rows.ravel()


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def checked_shape(shape: tuple[int, int], zero_diagonal: bool = False) -> tuple[int, int]:
    """``(d, K)`` as two ints in ``[0, 2**31)`` (square when ``zero_diagonal``), else a ValueError
    naming ``shape``: the check of every pattern constructor."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if len(dims) != 2 or not all(_is_int(s) and s >= 0 for s in dims):
        raise ValueError(f"shape: expected two non-negative ints (d, K), got {shape!r}")
    d, k = int(dims[0]), int(dims[1])
    if max(d, k) > _I32_MAX:
        raise ValueError(f"shape: expected sizes up to {_I32_MAX} (int32 indices), got {shape!r}")
    if zero_diagonal and d != k:
        raise ValueError(f"zero_diagonal: expected a square shape (d == K), got {shape!r}")
    return d, k


def _numpy_rng(key: jax.Array) -> np.random.Generator:
    words = np.asarray(jax.random.bits(key, (4,), jnp.uint32))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words.tolist())))


def _bernoulli_positions(rng: np.random.Generator, total: int, p: float) -> np.ndarray:
    """Sorted int64 positions in ``[0, total)``, each present independently with probability ``p``."""
    if p == 0.0 or total == 0:
        return np.zeros(0, np.int64)
    cap = total + 1  # a gap this long already leaves the range; capping keeps the sums in int64
    chunks, end = [], -1  # end: the last position drawn so far
    while end < total:
        mean = (total - 1 - end) * p
        size = min(int(mean + 6 * (mean * (1 - p)) ** 0.5 + 16), (_I64_MAX - total) // cap)
        gaps = rng.geometric(p, size)  # >= 1: trials up to the next success
        np.minimum(gaps, cap, out=gaps)
        gaps[0] += end
        chunks.append(np.cumsum(gaps, out=gaps))
        end = int(gaps[-1])
    pos = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return pos[: np.searchsorted(pos, total)]


def _distinct_sorted(rng: np.random.Generator, k: int, m: int, n: int) -> np.ndarray:
    """``(k, m)`` int32: each row ``m`` distinct values of ``[0, n)``, a uniform subset, sorted.

    Draws with replacement and redraws only the repeated values until none is left; the rule
    treats every value alike, so each row ends as a uniform ``m``-subset.
    """
    out = rng.integers(0, n, (k, m), dtype=np.int32)
    out.sort(axis=1)
    rows, block = np.arange(k), out  # block: the rows of out still to check
    while True:
        r, c = np.nonzero(block[:, 1:] == block[:, :-1])
        if r.size == 0:
            return out
        hit, r = np.unique(r, return_inverse=True)
        rows, block = rows[hit], block[hit]
        block[r, c + 1] = rng.integers(0, n, r.size, dtype=np.int32)
        block.sort(axis=1)
        out[rows] = block


def _complement(excluded: np.ndarray, n: int) -> np.ndarray:
    """``(k, n - m)`` int32: per row, the values of ``[0, n)`` missing from the sorted ``(k, m)`` rows.

    The ``t``-th kept value is ``t`` plus the number of ``i`` with ``excluded[i] - i <= t``.
    """
    k, m = excluded.shape
    f = n - m
    row_base = (np.arange(k, dtype=np.int64) * (f + 1))[:, None]
    flat = (excluded - np.arange(m, dtype=np.int32)) + row_base  # excluded[i] - i, in [0, f], per row
    below = np.bincount(flat.ravel(), minlength=k * (f + 1)).reshape(k, f + 1)[:, :f]
    del flat  # peak memory: the int64 counts and the int32 result, not this too
    np.cumsum(below, axis=1, out=below)
    below += np.arange(f)
    return below.astype(np.int32)
