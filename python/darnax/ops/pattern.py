"""`SparsityPattern`: the fixed set of stored entries of a sparse ``(d, K)`` weight matrix."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from darnax.ops._ffi import direct
from darnax.ops.pattern_sampling import bernoulli_columns, checked_shape, fixed_fan_in_columns

_I32_MAX = np.iinfo(np.int32).max


def _index_array(name: str, a: np.ndarray, bound: int) -> np.ndarray:
    """``a`` as a C-contiguous int32 array; values that would not fit int32 are reported as
    outside ``[0, bound)`` (the store checks the exact ranges)."""
    if a.dtype != np.int32 and a.size and (a.min() < 0 or a.max() > _I32_MAX):
        raise ValueError(f"{name}: expected entries in [0, {bound}), got [{a.min()}, {a.max()}]")
    return np.ascontiguousarray(a, dtype=np.int32)


class SparsityPattern:
    """Which entries of a ``(d, K)`` matrix are stored, in both compressed orientations.

    Weight values live in a flat ``(nnz,)`` array in *column order*: entry ``p`` is
    ``W[row_idx[p], k]`` for ``col_ptr[k] <= p < col_ptr[k + 1]``. The row orientation
    (``row_ptr``, ``col_idx``) serves incremental field updates; ``csr_pos[q]`` is the position
    in the value array of the ``q``-th entry in row order. Rows and columns are sorted.

    The index arrays live once, in darnax's process-wide pattern store (C++), which validates
    them when the pattern is built; the arrays here are read-only views of it. Compiled programs
    name a pattern by its :attr:`key` (one integer, whatever nnz), so their size and compile
    time do not grow with the pattern. A stored pattern lives as long as a ``SparsityPattern``
    or a compiled program that uses it; equal content is stored once and shared.

    A pattern is immutable and *static* under ``jax.jit``, ``vmap`` and ``lax.scan``: it is a
    pytree with no leaves whose auxiliary data is the pattern itself, so changing it recompiles
    and keeping it costs no tracing. Build it with :meth:`from_mask`, :meth:`from_coo` or
    :meth:`random`.

    Example:
        >>> p = SparsityPattern.from_mask(np.array([[1, 0], [1, 1]], bool))
        >>> p.nnz, p.shape, p.row_idx.tolist()
        (3, (2, 2), [0, 1, 1])
    """

    __slots__ = ("shape", "col_ptr", "row_idx", "_stored", "_transposed")

    def __init__(self, shape: tuple[int, int], col_ptr: np.ndarray, row_idx: np.ndarray):
        """Validate a column-compressed pattern, derive its row orientation and store it.

        Args:
            shape: ``(d, K)``, the matrix shape.
            col_ptr: ``(K + 1,)`` int, non-decreasing, from 0 to ``nnz``.
            row_idx: ``(nnz,)`` int, rows of the entries, strictly increasing in each column.

        Raises:
            ValueError: naming what is inconsistent.
        """
        d, k = checked_shape(shape)
        col_ptr = np.asarray(col_ptr)
        row_idx = np.asarray(row_idx)
        if col_ptr.shape != (k + 1,):
            raise ValueError(f"col_ptr: expected shape ({k + 1},), got {col_ptr.shape}")
        if row_idx.ndim != 1:
            raise ValueError(f"row_idx: expected rank 1, got shape {row_idx.shape}")
        if row_idx.size > _I32_MAX:  # (d and K: checked_shape)
            raise ValueError("pattern too large for int32 indices")
        col_ptr = _index_array("col_ptr", col_ptr, row_idx.size + 1)
        row_idx = _index_array("row_idx", row_idx, d)
        self._stored = direct.store_pattern(d, k, col_ptr, row_idx)
        self.shape = (d, k)
        self.col_ptr = self._stored.col_ptr
        self.row_idx = self._stored.row_idx
        self._transposed: SparsityPattern | None = None

    @classmethod
    def from_mask(cls, mask: np.ndarray | jax.Array) -> SparsityPattern:
        """Pattern of the nonzero entries of a 2-D ``mask``."""
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask: expected rank 2 (d, K), got shape {mask.shape}")
        cols, rows = np.nonzero(mask.T)
        col_ptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=mask.shape[1]))])
        return cls(mask.shape, col_ptr, rows)

    @classmethod
    def from_coo(cls, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> SparsityPattern:
        """Pattern from coordinate lists (any order; duplicates are an error)."""
        rows, cols = np.asarray(rows).ravel(), np.asarray(cols).ravel()
        for name, idx in (("rows", rows), ("cols", cols)):
            if not np.issubdtype(idx.dtype, np.integer):
                raise TypeError(f"{name}: expected integer coordinates, got dtype {idx.dtype}")
        if rows.shape != cols.shape:
            raise ValueError(f"rows and cols must have one length, got {rows.size} and {cols.size}")
        d, k = checked_shape(shape)  # before bincount, which would fail on a negative K unnamed
        for name, idx, n in (("rows", rows, d), ("cols", cols, k)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"{name}: expected entries in [0, {n}), got [{idx.min()}, {idx.max()}]")
        order = np.lexsort((rows, cols))
        rows, cols = rows[order], cols[order]
        if np.any((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])):
            raise ValueError("rows/cols: duplicate coordinates")
        col_ptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=k))])
        return cls(shape, col_ptr, rows)

    @classmethod
    def random(
        cls, key: jax.Array, shape: tuple[int, int], sparsity: float, *, zero_diagonal: bool = False
    ) -> SparsityPattern:
        """Every entry present independently with probability ``1 - sparsity``.

        Up to ``d * K = DENSE_DRAW_LIMIT`` (2**24) entries this is exactly the reference's draw,
        ``jax.random.bernoulli(key, 1 - sparsity, shape)``; larger shapes are sampled in O(nnz)
        time and memory (same distribution, another draw): see
        :func:`~darnax.ops.pattern_sampling.bernoulli_columns`.

        Args:
            key: a JAX PRNG key.
            shape: ``(d, K)``.
            sparsity: fraction of entries dropped, in ``[0, 1]``.
            zero_diagonal: drop the diagonal (square recurrent couplings).
        """
        if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer, np.floating)):
            raise TypeError(f"sparsity: expected a number in [0, 1], got {sparsity!r}")
        if not 0.0 <= float(sparsity) <= 1.0:
            raise ValueError(f"sparsity: expected a value in [0, 1], got {sparsity}")
        if zero_diagonal and shape[0] != shape[1]:
            raise ValueError(f"zero_diagonal needs a square shape, got {shape}")
        col_ptr, row_idx = bernoulli_columns(key, shape, 1.0 - float(sparsity), zero_diagonal=zero_diagonal)
        return cls(shape, col_ptr, row_idx)

    @classmethod
    def fixed_fan_in(
        cls, key: jax.Array, shape: tuple[int, int], fan_in: int, *, zero_diagonal: bool = False
    ) -> SparsityPattern:
        """Every column (receiving unit) gets exactly ``fan_in`` distinct random rows (inputs).

        O(nnz) time and memory at any size; no self-coupling with ``zero_diagonal``. See
        :func:`~darnax.ops.pattern_sampling.fixed_fan_in_columns`.

        Example:
            >>> p = SparsityPattern.fixed_fan_in(jax.random.key(0), (100, 100), 5, zero_diagonal=True)
            >>> p.nnz, bool(np.all(np.diff(p.col_ptr) == 5))
            (500, True)
        """
        col_ptr, row_idx = fixed_fan_in_columns(key, shape, fan_in, zero_diagonal=zero_diagonal)
        return cls(shape, col_ptr, row_idx)

    @property
    def row_ptr(self) -> np.ndarray:
        """``(d + 1,)`` row pointers of the row orientation (derived on first use unless square)."""
        return self._stored.row_ptr

    @property
    def col_idx(self) -> np.ndarray:
        """``(nnz,)`` columns of the entries in row order, sorted inside each row."""
        return self._stored.col_idx

    @property
    def csr_pos(self) -> np.ndarray:
        """``(nnz,)`` position in the value array of each entry in row order."""
        return self._stored.csr_pos

    def transpose(self) -> SparsityPattern:
        """The ``(K, d)`` pattern of ``W^T``: this pattern's row orientation, stored once and cached.

        Its value order (column order of ``W^T``) is this pattern's row order, so ``W^T`` holds
        ``values[p.csr_pos]``. Built on first use in O(nnz) (the gradients of the sparse products
        use it).

        Example:
            >>> p = SparsityPattern.from_mask(np.array([[0, 1], [1, 1], [0, 1]], bool))
            >>> p.transpose().shape, p.transpose().row_idx.tolist(), p.csr_pos.tolist()
            ((2, 3), [1, 0, 1, 1], [1, 0, 2, 3])
        """
        if self._transposed is None:
            self._transposed = SparsityPattern(self.shape[::-1], self.row_ptr, self.col_idx)
        return self._transposed

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return int(self.row_idx.size)

    @property
    def density(self) -> float:
        """``nnz / (d * K)`` (0 for an empty shape)."""
        size = self.shape[0] * self.shape[1]
        return self.nnz / size if size else 0.0

    def col_of_entry(self) -> np.ndarray:
        """``(nnz,)`` column of each stored entry, in value (column) order."""
        return np.repeat(np.arange(self.shape[1], dtype=np.int32), np.diff(self.col_ptr))

    def to_dense_mask(self) -> np.ndarray:
        """``(d, K)`` boolean mask of the stored entries."""
        mask = np.zeros(self.shape, bool)
        mask[self.row_idx, self.col_of_entry()] = True
        return mask

    def gather(self, dense: jax.Array) -> jax.Array:
        """The ``(nnz,)`` values of a dense ``(d, K)`` matrix on the pattern, in column order."""
        if dense.shape[-2:] != self.shape:
            raise ValueError(f"dense: expected shape (..., {self.shape[0]}, {self.shape[1]}), got {dense.shape}")
        return dense[..., self.row_idx, self.col_of_entry()]

    def to_dense(self, values: jax.Array) -> jax.Array:
        """The dense ``(d, K)`` matrix holding ``values`` on the pattern and zeros elsewhere."""
        if values.shape != (self.nnz,):
            raise ValueError(f"values: expected shape ({self.nnz},), got {values.shape}")
        return jnp.zeros(self.shape, values.dtype).at[self.row_idx, self.col_of_entry()].set(values)

    @property
    def key(self) -> int:
        """The pattern's content key in the store, by which compiled programs name it."""
        return int(self._stored.key)

    def __hash__(self) -> int:
        return hash(self._stored.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparsityPattern):
            return NotImplemented
        return self._stored.same(other._stored)

    def __reduce__(self) -> tuple:
        return SparsityPattern, (self.shape, np.array(self.col_ptr), np.array(self.row_idx))

    def __repr__(self) -> str:
        return f"SparsityPattern(shape={self.shape}, nnz={self.nnz}, density={self.density:.4g})"


jax.tree_util.register_pytree_node(SparsityPattern, lambda p: ((), p), lambda aux, _: aux)
