"""``all_finite``: whether each of several float arrays holds only finite values, in one call."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from darnax.ops import _ffi
from darnax.ops._checks import float_array


def all_finite(arrays: Sequence[jax.typing.ArrayLike]) -> jax.Array:
    """``(n,)`` bool: whether ``arrays[i]`` holds no NaN and no infinity (True when empty).

    One pass over each array's bits in C++ (its exponent field never all ones), in one custom
    call for all of them: the test the trainers run on every weight array after each training
    call. XLA's float reductions for the same test (``all(isfinite(a))`` or
    ``isfinite(sum(a * 0))``) took 4-8x as long (``bench/RESULTS.md``, section 28).

    Args:
        arrays: float32 or float64 arrays, of any shapes (dtypes may differ).

    Returns:
        bool ``(len(arrays),)``.

    Raises:
        TypeError: when an array is not float32 or float64.

    Example:
        >>> all_finite([jnp.ones(3), jnp.array([1.0, jnp.nan]), jnp.zeros((2, 0))]).tolist()
        [True, False, True]
    """
    flat = [_float_vector(i, a) for i, a in enumerate(arrays)]
    if not flat:
        return jnp.ones((0,), bool)
    out = jax.ShapeDtypeStruct((len(flat),), jnp.bool_)
    return _ffi.ffi_call("all_finite", out, vmap_method="sequential")(*flat)


def all_finite_reference(arrays: Sequence[jax.typing.ArrayLike]) -> jax.Array:
    """Pure ``jax.numpy`` oracle of :func:`all_finite`."""
    flat = [_float_vector(i, a) for i, a in enumerate(arrays)]
    return jnp.stack([jnp.all(jnp.isfinite(a)) for a in flat]) if flat else jnp.ones((0,), bool)


def _float_vector(i: int, a: jax.typing.ArrayLike) -> jax.Array:
    return float_array(f"arrays[{i}]", jnp.ravel(jnp.asarray(a)), (None,))


__all__ = ["all_finite", "all_finite_reference"]
