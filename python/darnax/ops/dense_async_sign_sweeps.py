"""``dense_async_sign_sweeps``: asynchronous dynamics of ±1 units with dense couplings."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from darnax.ops import _ffi
from darnax.ops._batching import fold_vmap
from darnax.ops._checks import count, dense_layer_arrays, permutations
from darnax.ops.async_sign_sweeps import sweeps_reference


def dense_async_sign_sweeps(
    h_ext: jax.Array,
    couplings: jax.Array,
    s0: jax.Array,
    order: jax.Array,
    n_sweeps: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Asynchronous sweeps of a square layer with dense couplings ``J`` (diagonal: self couplings).

    The rule of :func:`async_sign_sweeps`: per sample and sweep, units are visited one at a time
    in ``order``; unit ``i`` takes ``s_i = +1 if h_ext_i + sum_j s_j J_ji >= 0 else -1`` on the
    *current* states, its own included. The results equal those of :func:`async_sign_sweeps`
    on the pattern of every off-diagonal entry with ``diag = diagonal(J)``, bit for bit (fields
    start as ``h_ext + s0 @ W`` summed in the input dtype in the same order, then are kept in
    float64 and moved by ``delta * J[i, :]`` on each flip), without that pattern's ``N^2``
    indices: nothing of size ``N^2`` but ``J`` itself enters the compiled program. Samples run
    one at a time (split across threads).

    Args:
        h_ext: ``(B, N)`` field from outside the layer (fixed during the call).
        couplings: ``(N, N)`` couplings ``J``; ``J[i, k]`` is what a flip of unit ``i`` adds to the
            field of unit ``k``; the diagonal holds the self couplings.
        s0: ``(B, N)`` initial states (±1).
        order: int32 visiting orders, as for :func:`async_sign_sweeps`: ``(N,)``, ``(B, N)`` or
            ``(B, n_sweeps, N)``, with a leading 1 instead of ``B`` to share them by the batch.
        n_sweeps: sweeps to run, ``>= 0`` (a compile-time constant).

    Returns:
        ``(states, flips, fields)``: ``(B, N)`` final states; int32 ``(B, n_sweeps)`` units that
        changed in each sweep (0 from the first sweep without a change on: a fixed point ends the
        call); ``(B, N)`` final total local fields ``h_ext + s @ J``.

    Example:
        >>> s, flips, fields = dense_async_sign_sweeps(jnp.zeros((1, 2)), jnp.array([[0.5, 1.0], [1.0, 0.5]]),
        ...     jnp.array([[1.0, -1.0]]), jnp.array([1, 0], jnp.int32), 2)
        >>> s.tolist(), flips.tolist(), fields.tolist()
        ([[1.0, 1.0]], [[1, 0]], [[1.5, 1.5]])
    """
    h_ext, couplings, s0 = dense_layer_arrays(h_ext, couplings, s0)
    n_sweeps = count("n_sweeps", n_sweeps)
    order = permutations("order", order, couplings.shape[0], h_ext.shape[0], n_sweeps)
    if order.ndim == 1:
        order = order[None]

    def call(h_ext: jax.Array, s0: jax.Array, order: jax.Array, couplings: jax.Array):
        outs = (
            jax.ShapeDtypeStruct(h_ext.shape, h_ext.dtype),
            jax.ShapeDtypeStruct((h_ext.shape[0], n_sweeps), jnp.int32),
            jax.ShapeDtypeStruct(h_ext.shape, h_ext.dtype),
        )
        run = _ffi.ffi_call("dense_async_sign_sweeps", outs, vmap_method="sequential")
        return run(h_ext, couplings, s0, order, n_sweeps=n_sweeps)

    return fold_vmap(call, n_sample=3, shareable=(2,))(h_ext, s0, order, couplings)


def dense_async_sign_sweeps_reference(
    h_ext: jax.Array,
    couplings: jax.Array,
    s0: jax.Array,
    order: jax.Array,
    n_sweeps: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Pure ``jax.numpy`` oracle of :func:`dense_async_sign_sweeps`: each visit recomputes the
    unit's field, ``h_ext_i + J_ii s_i + s @ W[:, i]`` with ``W`` = ``J`` without its diagonal."""
    couplings = jnp.asarray(couplings)
    n = couplings.shape[-1]
    off_diagonal = jnp.where(jnp.eye(n, dtype=bool), jnp.zeros((), couplings.dtype), couplings)
    return sweeps_reference(h_ext, off_diagonal, jnp.diagonal(couplings), s0, order, n_sweeps)
