"""Data parallelism inside the model: batch sums over a mesh axis that splits the batch.

A data-parallel trainer traces its cores inside ``jax.shard_map`` with :func:`data_axis` set to
the mesh axis that splits the batch: every shard then holds ``b`` of the global batch's
``B = b * P`` samples. The plasticity rules sum per-sample terms over the batch (``x^T e``) and
scale them by the batch size; they call :func:`batch_sum` on the raw sum and
:func:`global_batch_size` for the scale, so the weights' update is the one of the global batch
(each shard's sum of its samples, then the sum over shards, then the scale and the decay, once).
Outside :func:`data_axis` both are the identity: single-process code is unchanged.

:func:`with_fused_batch_sums` runs a whole backward pass with one collective instead of one per
sum: it traces the pass once to collect its local sums, reduces them together (one ``psum`` of
their concatenation per dtype), then traces it again with :func:`batch_sum` handing out the
reduced sums in order. XLA drops the first trace's unused results and the second trace's unused
local sums, so every sum is still computed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

T = TypeVar("T")
_AXIS: ContextVar[str | None] = ContextVar("darnax_data_axis", default=None)
# While with_fused_batch_sums traces: ("collect", local sums so far) or ("replay", reduced sums left).
_SUMS: ContextVar[tuple[str, list[jax.Array]] | None] = ContextVar("darnax_batch_sums", default=None)


@contextmanager
def data_axis(name: str | None) -> Iterator[None]:
    """Trace the enclosed code with the batch split over mesh axis ``name`` (None: not split)."""
    token = _AXIS.set(name)
    try:
        yield
    finally:
        _AXIS.reset(token)


def batch_sum(x: jax.Array) -> jax.Array:
    """``x`` (a sum over this shard's samples) summed over the shards of the data axis."""
    axis, sums = _AXIS.get(), _SUMS.get()
    if axis is None:
        return x
    if sums is None:
        return jax.lax.psum(x, axis)
    mode, values = sums
    if mode == "collect":
        values.append(x)
        return x
    if not values or values[0].shape != x.shape or values[0].dtype != x.dtype:
        got = f"{values[0].dtype}{values[0].shape}" if values else "nothing"
        raise RuntimeError(f"batch_sum: the second trace asked for {x.dtype}{x.shape}, the first gave {got}")
    return values.pop(0)


def global_batch_size(n: int) -> int:
    """The global batch size when this shard holds ``n`` samples (``n`` times the axis size)."""
    axis = _AXIS.get()
    return n if axis is None else n * jax.lax.axis_size(axis)


def with_fused_batch_sums(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` with all its :func:`batch_sum` calls reduced by one collective
    per dtype (just ``fn(...)`` outside :func:`data_axis`)."""
    axis = _AXIS.get()
    if axis is None or _SUMS.get() is not None:
        return fn(*args, **kwargs)
    local: list[jax.Array] = []
    _traced(fn, args, kwargs, ("collect", local))
    reduced: list[jax.Array | None] = [None] * len(local)
    for dtype in dict.fromkeys(x.dtype for x in local):
        picks = [i for i, x in enumerate(local) if x.dtype == dtype]
        total = jax.lax.psum(jnp.concatenate([local[i].ravel() for i in picks]), axis)
        start = 0
        for i in picks:
            reduced[i] = total[start : start + local[i].size].reshape(local[i].shape)
            start += local[i].size
    left = list(reduced)
    out = _traced(fn, args, kwargs, ("replay", left))
    if left:
        raise RuntimeError(f"batch_sum: the second trace used {len(local) - len(left)} of the {len(local)} sums")
    return out


def _traced(fn: Callable[..., T], args: tuple, kwargs: dict, sums: tuple[str, list]) -> T:
    token = _SUMS.set(sums)
    try:
        return fn(*args, **kwargs)
    finally:
        _SUMS.reset(token)


__all__ = ["batch_sum", "data_axis", "global_batch_size", "with_fused_batch_sums"]
