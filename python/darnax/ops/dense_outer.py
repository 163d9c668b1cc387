"""``dense_outer``: the plasticity update of a dense weight, ``x^T e``, in C++."""

from __future__ import annotations

import jax

from darnax.ops import _ffi
from darnax.ops._checks import float_array, same_dtype


def dense_outer(x: jax.Array, e: jax.Array) -> jax.Array:
    """``x^T e``: ``out[i, k] = sum_b x[b, i] e[b, k]``, summed in order of ``b``.

    The dense counterpart of :func:`~darnax.ops.sparse_outer`. Samples whose row of ``e`` is all
    zero add nothing and are skipped, unless ``x`` holds a NaN or an infinity (``0 * inf`` is
    NaN). XLA's CPU dot of a short contraction is slow: the seeds' readout update (2000 x 10
    from 16 samples) took 39 µs as ``x.T @ e`` (``bench/RESULTS.md``, section 28). Not
    differentiable (a plasticity rule, not a model's forward pass).

    Args:
        x: ``(B, d)`` presynaptic activity, float32 or float64.
        e: ``(B, K)`` postsynaptic signal (e.g. the gated perceptron error), same dtype.

    Returns:
        ``(d, K)`` array of ``x``'s dtype.

    Example:
        >>> dense_outer(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([[1.0], [0.0]])).tolist()
        [[1.0], [2.0]]
    """
    x = float_array("x", x, (None, None))
    e = float_array("e", e, (x.shape[0], None))
    same_dtype(x=x, e=e)
    out = jax.ShapeDtypeStruct((x.shape[1], e.shape[1]), x.dtype)
    return _ffi.ffi_call("dense_outer", out, vmap_method="sequential")(x, e)


def dense_outer_reference(x: jax.Array, e: jax.Array) -> jax.Array:
    """Pure ``jax.numpy`` oracle of :func:`dense_outer`: ``x.T @ e``."""
    return x.T @ e


__all__ = ["dense_outer", "dense_outer_reference"]
