"""``random_permutations``: visiting orders for asynchronous sweeps, shuffled in C++ from JAX bits."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from darnax.ops import _ffi
from darnax.ops._batching import fold_vmap


def random_permutations(bits: jax.Array) -> jax.Array:
    """One random permutation of ``0..N-1`` per row of ``bits``, by a Fisher-Yates shuffle.

    For ``i = N-1`` down to ``1`` the entry ``i`` is swapped with ``j = floor(bits[i] (i+1) / 2^32)``
    (Lemire's multiply-shift: every ``j <= i`` has probability ``1/(i+1)`` up to ``(i+1)/2^32``);
    ``bits[..., 0]`` is unused. O(N) per row, against O(N log N) and a slow XLA sort for
    ``argsort(jax.random.bits(...))``: a fresh order per sweep costs almost nothing.

    Args:
        bits: uint32 ``(..., N)`` random words, e.g. ``jax.random.bits(key, (n_sweeps, N), jnp.uint32)``
            (pass the dtype: with ``jax_enable_x64`` the default is uint64).

    Returns:
        int32 array shaped like ``bits``; every row a permutation of ``0..N-1``.

    Example:
        >>> bits = jax.random.bits(jax.random.key(0), (2, 5), jnp.uint32)
        >>> sorted(random_permutations(bits)[0].tolist())
        [0, 1, 2, 3, 4]
    """
    bits = _uint32_rows(bits)
    if bits.size == 0:
        return jnp.zeros(bits.shape, jnp.int32)

    def call(rows: jax.Array) -> tuple[jax.Array]:
        out = jax.ShapeDtypeStruct(rows.shape, jnp.int32)
        return (_ffi.ffi_call("random_permutations", out, vmap_method="sequential")(rows),)

    flat = bits.reshape(-1, bits.shape[-1])
    return fold_vmap(call, n_sample=1)(flat)[0].reshape(bits.shape)


def random_permutations_reference(bits: jax.Array) -> jax.Array:
    """Pure ``jax.numpy`` oracle of :func:`random_permutations` (the same shuffle, exact in uint32)."""
    bits = _uint32_rows(bits)
    n = bits.shape[-1]
    if bits.size == 0:
        return jnp.zeros(bits.shape, jnp.int32)

    def shuffle(row: jax.Array) -> jax.Array:
        def swap(t: int, perm: jax.Array) -> jax.Array:
            i = n - 1 - t
            j = _mul_high(row[i], (i + 1).astype(jnp.uint32)).astype(jnp.int32)
            held = perm[i]
            return perm.at[i].set(perm[j]).at[j].set(held)

        return jax.lax.fori_loop(0, max(n - 1, 0), swap, jnp.arange(n, dtype=jnp.int32))

    flat = bits.reshape(-1, n)
    return jax.vmap(shuffle)(flat).reshape(bits.shape)


def _uint32_rows(bits: jax.typing.ArrayLike) -> jax.Array:
    bits = jnp.asarray(bits)
    if bits.dtype != jnp.uint32:
        raise TypeError(f"bits: expected uint32 (jax.random.bits), got {bits.dtype}")
    if bits.ndim < 1:
        raise ValueError(f"bits: expected shape (..., N), got {tuple(bits.shape)}")
    return bits


def _mul_high(a: jax.Array, m: jax.Array) -> jax.Array:
    """``floor(a * m / 2^32)`` for uint32 ``a`` and ``m < 2^31``, in 16-bit limbs (no uint64)."""
    mask = jnp.uint32(0xFFFF)
    ah, al, mh, ml = a >> 16, a & mask, m >> 16, m & mask
    x, y, z = ah * ml, al * mh, al * ml  # each below 2^32
    carry = ((x & mask) + (y & mask) + (z >> 16)) >> 16
    return ah * mh + (x >> 16) + (y >> 16) + carry
