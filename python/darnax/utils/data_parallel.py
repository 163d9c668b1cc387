"""Data parallelism inside the model: batch sums over a mesh axis that splits the batch.

A data-parallel trainer traces its cores inside ``jax.shard_map`` with :func:`data_axis` set to
the mesh axis that splits the batch: every shard then holds ``b`` of the global batch's
``B = b * P`` samples. The plasticity rules sum per-sample terms over the batch (``x^T e``) and
scale them by the batch size; they call :func:`batch_sum` on the raw sum and
:func:`global_batch_size` for the scale, so the weights' update is the one of the global batch
(each shard's sum of its samples, then the sum over shards, then the scale and the decay, once).
Outside :func:`data_axis` both are the identity: single-process code is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import jax

_AXIS: ContextVar[str | None] = ContextVar("darnax_data_axis", default=None)


@contextmanager
def data_axis(name: str | None) -> Iterator[None]:
    """Trace the enclosed code with the batch split over mesh axis ``name`` (None: not split)."""
    token = _AXIS.set(name)
    try:
        yield
    finally:
        _AXIS.reset(token)


def current_data_axis() -> str | None:
    """The mesh axis that splits the batch in the code being traced, or None."""
    return _AXIS.get()


def batch_sum(x: jax.Array) -> jax.Array:
    """``x`` (a sum over this shard's samples) summed over the shards of the data axis."""
    axis = _AXIS.get()
    return x if axis is None else jax.lax.psum(x, axis)


def global_batch_size(n: int) -> int:
    """The global batch size when this shard holds ``n`` samples (``n`` times the axis size)."""
    axis = _AXIS.get()
    return n if axis is None else n * jax.lax.axis_size(axis)


__all__ = ["batch_sum", "current_data_axis", "data_axis", "global_batch_size"]
