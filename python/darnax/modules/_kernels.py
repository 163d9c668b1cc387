"""Backend dispatch for the maths of modules: darnax.ops kernels or their jnp oracles.

``"compiled"`` calls the XLA FFI kernels of :mod:`darnax.ops` (O(nnz) work and memory for sparse
layers); ``"jax"`` calls the pure ``jax.numpy`` oracles beside them (dense masked maths, no custom calls,
runs on any JAX device).
"""

from __future__ import annotations

import jax

from darnax import ops
from darnax.ops import SparsityPattern


def matmul(x: jax.Array, values: jax.Array, pattern: SparsityPattern, backend: str) -> jax.Array:
    """``x @ W`` for ``W`` stored as ``values`` on ``pattern``."""
    if backend == "compiled":
        return ops.sparse_matmul(x, values, pattern)
    return ops.sparse_matmul_reference(x, values, pattern)


def outer(x: jax.Array, e: jax.Array, pattern: SparsityPattern, backend: str) -> jax.Array:
    """``(x^T e)`` on ``pattern`` only, ``(nnz,)`` in value order."""
    if backend == "compiled":
        return ops.sparse_outer(x, e, pattern)
    return ops.sparse_outer_reference(x, e, pattern)


def dense_outer(x: jax.Array, e: jax.Array, backend: str) -> jax.Array:
    """``x^T e`` for dense ``x`` and ``e``: :func:`darnax.ops.dense_outer` where the program is
    compiled for CPU with the compiled backend (it has no GPU kernel: XLA's product there).

    The choice is made per lowering platform (:func:`jax.lax.platform_dependent`), not by the
    process's default backend: a program placed on a CPU device of a GPU machine uses the kernel.
    """
    if backend != "compiled":
        return ops.dense_outer_reference(x, e)
    return jax.lax.platform_dependent(x, e, cpu=ops.dense_outer, default=ops.dense_outer_reference)


def sync_steps(
    h_ext: jax.Array,
    values: jax.Array,
    pattern: SparsityPattern,
    diag: jax.Array,
    s0: jax.Array,
    n_steps: int,
    backend: str,
) -> tuple[jax.Array, jax.Array]:
    """``n_steps`` synchronous sign steps; returns the final states and their fields ``h_ext + s @ J``."""
    fn = ops.sync_sign_steps if backend == "compiled" else ops.sync_sign_steps_reference
    s, _, fields = fn(h_ext, values, pattern, diag, s0, n_steps)
    return s, fields


def async_sweeps(
    h_ext: jax.Array,
    values: jax.Array,
    pattern: SparsityPattern,
    diag: jax.Array,
    s0: jax.Array,
    order: jax.Array,
    n_sweeps: int,
    backend: str,
) -> tuple[jax.Array, jax.Array]:
    """``n_sweeps`` asynchronous sign sweeps in the given orders; returns the final states and
    their fields ``h_ext + s @ J``."""
    fn = ops.async_sign_sweeps if backend == "compiled" else ops.async_sign_sweeps_reference
    s, _, fields = fn(h_ext, values, pattern, diag, s0, order, n_sweeps)
    return s, fields


def dense_async_sweeps(
    h_ext: jax.Array, couplings: jax.Array, s0: jax.Array, order: jax.Array, n_sweeps: int, backend: str
) -> tuple[jax.Array, jax.Array]:
    """``n_sweeps`` asynchronous sign sweeps with dense ``(N, N)`` couplings (diagonal: self
    couplings) in the given orders; returns the final states and their fields ``h_ext + s @ J``."""
    fn = ops.dense_async_sign_sweeps if backend == "compiled" else ops.dense_async_sign_sweeps_reference
    s, _, fields = fn(h_ext, couplings, s0, order, n_sweeps)
    return s, fields


def permutations(bits: jax.Array, backend: str) -> jax.Array:
    """One Fisher-Yates shuffle of ``0..N-1`` per row of the uint32 random words ``bits``."""
    fn = ops.random_permutations if backend == "compiled" else ops.random_permutations_reference
    return fn(bits)
