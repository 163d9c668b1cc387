"""Typing aliases used across darnax's model stack."""

from __future__ import annotations

from typing import Any, Literal

import jax

PyTree = Any
"""Any JAX pytree (nested tuples, lists, dicts, Equinox modules, arrays)."""

KeyArray = jax.Array
"""A JAX PRNG key (new-style ``jax.random.key`` or legacy ``PRNGKey``)."""

Backend = Literal["compiled", "jax"]
"""``"compiled"``: darnax.ops kernels (XLA FFI, CPU); ``"jax"``: pure ``jax.numpy`` oracle maths."""

Dynamics = Literal["sync", "async"]
"""``"sync"``: all units of a layer update together; ``"async"``: one at a time, random order."""

MessageFilter = Literal["all", "forward", "backward", "inference"]
"""Which senders a receiver listens to (see :meth:`darnax.layer_maps.sparse.LayerMap.row_items`)."""

__all__ = ["Backend", "Dynamics", "KeyArray", "MessageFilter", "PyTree"]
