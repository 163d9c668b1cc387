"""Argument checks shared by modules, orchestrators and trainers: readable errors, early."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

BACKENDS = ("compiled", "jax")
DYNAMICS = ("sync", "async")


def as_vector(name: str, value: jax.typing.ArrayLike, dim: int, dtype: jax.typing.DTypeLike) -> jax.Array:
    """``value`` (a scalar or a ``(dim,)`` vector) as a ``(dim,)`` array of ``dtype``.

    Raises:
        ValueError: naming ``name`` when ``value`` is neither a scalar nor of length ``dim``.
    """
    if isinstance(value, jax.Array):
        arr = jnp.asarray(value, dtype=dtype)
        if arr.ndim == 0:
            return jnp.full((dim,), arr, dtype=dtype)
    else:  # built on the host and put on the device as is: nothing to compile at a start
        arr = np.asarray(value, dtype=jax.dtypes.canonicalize_dtype(dtype))
        arr = jax.device_put(np.full((dim,), arr) if arr.ndim == 0 else arr)
    if arr.shape == (dim,):
        return arr
    raise ValueError(f"{name}: expected a scalar or a vector of shape ({dim},), got shape {arr.shape}")


def positive_int(name: str, value: int) -> int:
    """``value`` as a positive Python int, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: int) -> int:
    """``value`` as a non-negative Python int, else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    return int(value)


def sparsity_value(sparsity: float) -> float:
    """A sparsity in ``[0, 1)`` as a float (1 would leave no connection and divide by zero)."""
    s = float(sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity: expected a value in [0, 1), got {sparsity}")
    return s


def backend_name(backend: str) -> str:
    """Validate a backend name (``"compiled"`` or ``"jax"``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def dynamics_name(dynamics: str) -> str:
    """Validate a dynamics name (``"sync"`` or ``"async"``)."""
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics: expected one of {DYNAMICS}, got {dynamics!r}")
    return dynamics


class NonFiniteWeightsError(FloatingPointError):
    """A training update left NaN or inf in a weight; the message names the layer, the array and the step."""


def check_finite(name: str, x: jax.Array) -> jax.Array:
    """Raise a clear error if ``x`` holds NaN or inf.

    Concrete arrays are checked on the host now (``ValueError``); traced ones through
    :func:`equinox.error_if` (an error when the compiled call runs). Returns ``x`` (use it, or
    the traced check is dead code).
    """
    if isinstance(x, jax.core.Tracer):
        import equinox as eqx

        return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), f"{name} contains non-finite values (NaN or inf)")
    arr = np.asarray(x)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():  # inexact (kind, not issubdtype: per batch)
        bad = int(arr.size - np.isfinite(arr).sum())
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf); clean the data first")
    return x
