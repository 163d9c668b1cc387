"""Fused phases: a whole phase of one recurrent row in one kernel call, and the row maths shared
with the step-by-step path (a row's field, the asynchronous visiting orders).

When a sweep updates a single recurrent row whose other senders are all cached, the row's
external field ``h_ext`` is constant for the whole phase, so ``n`` steps are one
:meth:`~darnax.modules.interfaces.RecurrentSignLayer.sync_steps` call (synchronous, when the
layer :attr:`~darnax.modules.interfaces.RecurrentSignLayer.fuses_sync`) or one
:meth:`~darnax.modules.interfaces.RecurrentSignLayer.async_sweeps` call with a fresh order per
sweep; the PRNG key chain is that of ``n`` separate steps, so the results are the step loop's.
Only the layers' public interface is used; kernels are reached through
:mod:`darnax.modules._kernels`.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from darnax.layer_maps.sparse import LayerMap
from darnax.modules import _kernels
from darnax.modules.interfaces import RecurrentSignLayer, sum_messages
from darnax.orchestrators.message_cache import MessageCache
from darnax.states.sequential import SequentialState

Row = tuple[int, Mapping[int, object]]
"""A receiver row and its (filtered) ``{sender: module}``."""


def row_field(layer: object, msgs: dict[int, jax.Array], like: jax.Array) -> jax.Array:
    """``layer.reduce(msgs)`` (a plain sum without a layer); zeros shaped like ``like`` when
    there are no messages."""
    if not msgs:
        return jnp.zeros_like(like)
    return layer.reduce(msgs) if layer is not None else sum_messages(msgs)


def fusable_row(lmap: LayerMap, rows: list[Row], cache: MessageCache, backend: str, dynamics: str) -> Row | None:
    """The single updated row of a sweep, if its whole phase can run in one kernel call."""
    if backend != "compiled" or len(rows) != 1:
        return None
    i, senders = rows[0]
    layer = lmap.get((i, i))
    if not isinstance(layer, RecurrentSignLayer) or i not in senders:
        return None
    if any((i, j) not in cache for j in senders if j != i):
        return None
    if dynamics == "sync" and not layer.fuses_sync:
        return None
    return rows[0]


def run_fused(
    lmap: LayerMap,
    dynamics: str,
    backend: str,
    state: SequentialState,
    rng: jax.Array,
    n_steps: int,
    row: Row,
    cache: MessageCache,
    want_fields: bool,
) -> tuple[SequentialState, jax.Array, dict[int, jax.Array]]:
    """A whole phase of one recurrent row with a constant external field (see module doc).

    Returns:
        ``(state, rng, fields)``: the row's final fields ``{i: (B, N)}`` when wanted, else ``{}``.
    """
    i, senders = row
    layer = lmap[i, i]
    rng, row_keys = key_chain(rng, n_steps)  # the keys n separate steps would split
    h_ext = row_field(layer, {j: cache[i, j] for j in senders if j != i}, state[i])
    s = state[i]
    if dynamics == "sync":
        s, h = _sync_phase(layer, h_ext, s, n_steps, want_fields)
    else:  # one call; sweep t visits in the order drawn from the t-th step's key
        dyn_keys = jax.vmap(lambda key: jax.random.split(key)[1])(row_keys)
        s, h = layer.async_sweeps(h_ext, s, visiting_orders(dyn_keys, s.shape[-1], backend), n_steps)
    return state.replace_val(i, s), rng, ({i: h} if want_fields else {})


def _sync_phase(
    layer: RecurrentSignLayer, h_ext: jax.Array, s: jax.Array, n_steps: int, want_fields: bool
) -> tuple[jax.Array, jax.Array]:
    """``n_steps`` fused synchronous steps: the final states and their fields (zeros unless
    ``want_fields`` after a lone step from zero).

    A state of all zeros (as right after ``state.init``) takes its first step as
    ``activation(h_ext)``: its self-message is exactly zero. The kernel does that itself (one
    comparison when the state is not all zero, see :func:`darnax.ops.sync_sign_steps`); a lone
    step tests here, where XLA folds the test away for the constant state of ``init`` and the
    step costs no kernel call (no fields to sum).
    """
    if n_steps > 1:
        return layer.sync_steps(h_ext, s, n_steps)

    def from_zero(s: jax.Array) -> tuple[jax.Array, jax.Array]:
        s = layer.activation(h_ext)
        return s, h_ext + layer(s) if want_fields else jnp.zeros_like(h_ext)

    return jax.lax.cond(is_all_zero(s), from_zero, lambda s: layer.sync_steps(h_ext, s, n_steps), s)


def is_all_zero(s: jax.Array) -> jax.Array:
    """Whether every entry of ``s`` is zero (NaN is not), as ``jnp.all(s == 0)``.

    A sum of magnitudes (zero only when every term is, NaN when one is): XLA's CPU backend
    reduces a float array 2-3x faster than a boolean one (at (16, 2000), ~24 µs per check
    instead of 57 on one machine, ``bench/RESULTS.md`` section 25). Not a ``max``: XLA:CPU's
    vectorised max of a large array drops NaN.
    """
    return jnp.sum(jnp.abs(s)) == 0


def key_chain(rng: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """``n`` rounds of ``rng, row_key = jax.random.split(rng)``: returns the last ``rng`` and the
    ``(n,)`` row keys, bit for bit those of the unrolled rounds, from one ``lax.scan`` (each
    unrolled split is a separate threefry computation for XLA to compile)."""

    def split(key: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:
        key, row_key = jax.random.split(key)
        return key, row_key

    return jax.lax.scan(split, rng, length=n)


def visiting_orders(keys: jax.Array, n: int, backend: str) -> jax.Array:
    """Visiting orders, int32 ``(1, T, N)`` for ``(T,)`` keys: sweep ``t`` visits a uniformly random
    permutation of ``0..N-1`` drawn from ``keys[t]`` (N random words, one Fisher-Yates shuffle),
    shared by every sample of the batch (the kernel then runs the samples in vector lanes)."""
    bits = jax.vmap(lambda key: jax.random.bits(key, (n,), jnp.uint32))(keys)
    return _kernels.permutations(bits, backend)[None]


__all__ = ["Row", "fusable_row", "is_all_zero", "key_chain", "row_field", "run_fused", "visiting_orders"]
