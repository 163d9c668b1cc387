"""Argument checks shared by the op wrappers: readable errors before anything is traced."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from darnax.ops.pattern import SparsityPattern

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(name: str, x: jax.typing.ArrayLike, shape: tuple[int | None, ...]) -> jax.Array:
    """``x`` as a float32/float64 array of rank ``len(shape)``, sizes matching where not None.

    Raises:
        TypeError: wrong dtype.
        ValueError: wrong rank or size; the message names ``name``, expected and got.
    """
    x = jnp.asarray(x)
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected float32 or float64, got {x.dtype}")
    expected = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    if x.ndim != len(shape) or any(s is not None and s != xs for s, xs in zip(shape, x.shape)):
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    return x


def same_dtype(**arrays: jax.Array) -> None:
    """Raise ``TypeError`` unless all ``arrays`` share one dtype."""
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{n}={d}" for n, d in dtypes.items())
        raise TypeError(f"expected one float dtype for all of {', '.join(dtypes)}; got {listing}")


def count(name: str, n: int) -> int:
    """A non-negative Python int (a compile-time attribute)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {n!r}")
    return int(n)


def is_concrete(x: jax.Array) -> bool:
    """Whether ``x`` holds values now (not a tracer inside jit/vmap/scan)."""
    return not isinstance(x, jax.core.Tracer)


def layer_arrays(
    h_ext: jax.typing.ArrayLike,
    values: jax.typing.ArrayLike,
    pattern: SparsityPattern,
    diag: jax.typing.ArrayLike,
    s0: jax.typing.ArrayLike,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Check the arrays of a square ±1 layer: ``h_ext, s0`` ``(B, N)``, ``values`` ``(nnz,)``, ``diag`` ``(N,)``."""
    n, k = pattern.shape
    if n != k:
        raise ValueError(f"pattern: a recurrent layer needs a square pattern, got shape {pattern.shape}")
    h_ext = float_array("h_ext", h_ext, (None, n))
    s0 = float_array("s0", s0, h_ext.shape)
    values = float_array("values", values, (pattern.nnz,))
    diag = float_array("diag", diag, (n,))
    same_dtype(h_ext=h_ext, values=values, diag=diag, s0=s0)
    return h_ext, values, diag, s0


def dense_layer_arrays(
    h_ext: jax.typing.ArrayLike, couplings: jax.typing.ArrayLike, s0: jax.typing.ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Check the arrays of a dense ±1 layer: ``couplings`` ``(N, N)``, ``h_ext, s0`` ``(B, N)``."""
    couplings = float_array("couplings", couplings, (None, None))
    n = couplings.shape[0]
    if couplings.shape != (n, n):
        raise ValueError(f"couplings: expected a square (N, N) matrix, got shape {tuple(couplings.shape)}")
    h_ext = float_array("h_ext", h_ext, (None, n))
    s0 = float_array("s0", s0, h_ext.shape)
    same_dtype(h_ext=h_ext, couplings=couplings, s0=s0)
    return h_ext, couplings, s0


def permutations(name: str, order: jax.typing.ArrayLike, n: int, batch: int, n_sweeps: int) -> jax.Array:
    """``order`` as int32 ``(N,)``, ``(S, N)`` or ``(S, n_sweeps, N)`` with ``S`` 1 (shared by the
    batch) or ``B``; when concrete, every row must be a permutation of ``0..N-1``."""
    order = jnp.asarray(order)
    if order.dtype != jnp.int32:
        raise TypeError(f"{name}: expected int32, got {order.dtype}")
    lead = {1, batch}
    if order.shape not in {(n,)} | {(s, n) for s in lead} | {(s, n_sweeps, n) for s in lead}:
        raise ValueError(
            f"{name}: expected shape ({n},), (1 or {batch}, {n}) or (1 or {batch}, {n_sweeps}, {n}), "
            f"got {tuple(order.shape)}"
        )
    if is_concrete(order) and n > 0:
        rows = np.asarray(order).reshape(-1, n)
        if not np.array_equal(np.sort(rows, axis=1), np.broadcast_to(np.arange(n), rows.shape)):
            raise ValueError(f"{name}: every row must be a permutation of 0..{n - 1}")
    return order
