"""`SequentialOrchestrator`: layer-by-layer dynamics and local updates over a `LayerMap`.

Maths (SEMANTICS.md): a *step* visits the receiver rows in increasing order (the last row is
skipped when ``skip_output_state``); row ``i`` takes
``state[i] = lm[i, i].activation(lm[i, i].reduce({j: lm[i, j](state[j])}))`` over the filtered
senders ``j``, and a row updated earlier in the sweep is seen by later rows. Inside a layer,
units update together (``dynamics="sync"``) or, for recurrent ±1 layers, one at a time in a
fresh random order per sweep drawn from the step's key (``dynamics="async"``; the samples of a
batch share the order of a sweep, which lets the kernel run them in vector lanes: each
sample's dynamics is still an asynchronous sweep in a uniformly random order).

Speed (``backend="compiled"``, exact, see :mod:`~darnax.orchestrators.message_cache`):

- messages from layers that no step can change (clamped input, clamped labels) are computed
  once per call of :meth:`run`, or once per training step when a
  :class:`~darnax.orchestrators.message_cache.MessageCache` is passed, never once per step;
- when a sweep updates a single recurrent layer whose other senders are all cached, its
  external field ``h_ext`` is constant for the whole phase, so ``n`` steps are one call of
  :meth:`~darnax.modules.interfaces.RecurrentSignLayer.sync_steps` (one
  :func:`darnax.ops.sync_sign_steps`, fields updated incrementally on flips), or one
  ``async_sign_sweeps`` call with a fresh order per sweep (:mod:`~darnax.orchestrators.fused`).
  Otherwise it steps one at a time;
- a synchronous phase that starts from the all-zero state (right after ``state.init``) takes its
  first step as ``sign(h_ext)``, the self-message of zeros being exactly zero: inside the kernel,
  or without a kernel call for a lone step.

``backend="jax"`` is the oracle: every message recomputed every step with dense masked
``jax.numpy`` maths, no cache, no fused phases, no custom calls. The compiled kernels sum
fields in another order (and move them in float64), so a unit whose field is within rounding of 0 may
resolve differently from float32 dense sums; with exactly representable values both agree bit
for bit (tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import equinox as eqx
import jax

from darnax.layer_maps.sparse import LayerMap
from darnax.modules.interfaces import RecurrentSignLayer, replace_static
from darnax.orchestrators.fused import Row, fusable_row, row_field, run_fused, visiting_orders
from darnax.orchestrators.message_cache import MessageCache
from darnax.states.sequential import SequentialState
from darnax.utils._checks import backend_name, dynamics_name, non_negative_int


class SequentialOrchestrator(eqx.Module):
    """Runs a layered network of ±1 units: dynamics (``step``/``run``), ``predict``, ``backward``.

    Attributes:
        lmap: the :class:`~darnax.layer_maps.sparse.LayerMap` of modules (the parameters).
        dynamics: ``"sync"`` (default) or ``"async"``.
        backend: ``"compiled"`` (darnax.ops kernels, caching, fused phases) or ``"jax"`` (oracle).

    Example:
        >>> orch = SequentialOrchestrator(layers=lm)                 # synchronous, compiled
        >>> state, key = orch.step(state.init(x, y), key)
        >>> updates = orch.backward(state, key)                     # feed to Optax
    """

    lmap: LayerMap
    dynamics: str = eqx.field(static=True)
    backend: str = eqx.field(static=True)
    widths: tuple[tuple[int, int], ...] = eqx.field(static=True)

    def __init__(self, layers: LayerMap, *, dynamics: str = "sync", backend: str | None = None):
        """Wrap ``layers``.

        Args:
            layers: the network's ``LayerMap``.
            dynamics: ``"sync"`` or ``"async"``.
            backend: ``"compiled"`` or ``"jax"``, applied to every module; None keeps the
                modules' own choice (they must agree; ``"compiled"`` for modules without one).

        Raises:
            TypeError: if ``layers`` is not a ``LayerMap``.
            ValueError: on an unknown dynamics/backend, or modules with mixed backends.
        """
        if not isinstance(layers, LayerMap):
            raise TypeError(f"layers: expected a LayerMap (LayerMap.from_dict(...)), got {type(layers).__name__}")
        self.dynamics = dynamics_name(dynamics)
        if backend is None:
            found = {m.backend for _, m in layers.edge_items() if hasattr(m, "backend")}
            if len(found) > 1:
                raise ValueError(f"modules use different backends {sorted(found)}; pass backend= explicitly")
            backend = found.pop() if found else "compiled"
        self.backend = backend_name(backend)
        self.lmap = LayerMap.from_dict(
            {i: {j: _with_backend(m, backend) for j, m in row.items()} for i, row in layers.to_dict().items()},
            require_diagonal=False,
        )
        self.widths = tuple(self.lmap.layer_widths().items())

    def with_backend(self, backend: str) -> SequentialOrchestrator:
        """The same network (same parameters) computing with ``backend``."""
        return SequentialOrchestrator(self.lmap, dynamics=self.dynamics, backend=backend)

    # ------------------------------------------------------------------ dynamics
    def step(
        self,
        state: SequentialState,
        rng: jax.Array,
        *,
        filter_messages: str = "all",
        skip_output_state: bool = True,
        cache: MessageCache | None = None,
    ) -> tuple[SequentialState, jax.Array]:
        """One sweep over the receiver rows.

        Args:
            state: current state.
            rng: PRNG key (split per receiver and per sender; async orders come from it).
            filter_messages: ``"all"``, ``"forward"``, ``"backward"`` or ``"inference"``.
            skip_output_state: leave the last row (the output) unchanged.
            cache: optional cached messages (see :meth:`cache_messages`).

        Returns:
            ``(new_state, new_rng)``.
        """
        return self.run(
            state, rng, 1, filter_messages=filter_messages, skip_output_state=skip_output_state, cache=cache
        )

    def step_inference(self, state: SequentialState, rng: jax.Array) -> tuple[SequentialState, jax.Array]:
        """Deprecated alias of ``step(state, rng, filter_messages="inference")``."""
        warnings.warn(
            "step_inference is deprecated; use step(state, rng, filter_messages='inference')",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.step(state, rng, filter_messages="inference")

    def run(
        self,
        state: SequentialState,
        rng: jax.Array,
        n_steps: int,
        *,
        filter_messages: str = "all",
        skip_output_state: bool = True,
        cache: MessageCache | None = None,
        return_fields: bool = False,
    ) -> tuple[SequentialState, jax.Array] | tuple[SequentialState, jax.Array, dict[int, jax.Array]]:
        """``n_steps`` calls of :meth:`step`, fused into one kernel call where exact.

        Same results and same returned key as the loop
        ``for _ in range(n_steps): state, rng = step(state, rng, ...)``.

        Args:
            state: current state.
            rng: PRNG key.
            n_steps: number of steps (a Python int; 0 returns the inputs).
            filter_messages: which senders each row listens to.
            skip_output_state: leave the last row unchanged.
            cache: optional cached messages; by default messages from unchanged layers are
                cached for this call.
            return_fields: also return the fields ``{row: (B, width)}`` that a fused phase
                knows for the final state (``h_ext + s @ J`` under ``filter_messages``, from the
                kernel, without another product); ``{}`` when the phase was not fused. Pass
                them to :meth:`backward` with the same filter to skip recomputing them.

        Returns:
            ``(new_state, new_rng)``, or ``(new_state, new_rng, fields)`` with ``return_fields``.

        Raises:
            ValueError: on a state that does not fit the network, a bad filter, or a cache
                that this sweep would invalidate.
        """
        n_steps = non_negative_int("n_steps", n_steps)
        self._check_state(state)
        rows = list(self.lmap.row_items(skip_last=skip_output_state, subset=filter_messages))
        fields: dict[int, jax.Array] = {}
        if n_steps == 0:
            return (state, rng, fields) if return_fields else (state, rng)
        if self.backend == "jax":
            cache = MessageCache({}, frozenset())
        elif cache is None:
            cache = self._cache_for(state, rows)
        else:
            cache.check_updates({i for i, _ in rows})
        fused = fusable_row(self.lmap, rows, cache, self.backend, self.dynamics)
        if fused is not None:
            state, rng, fields = run_fused(
                self.lmap, self.dynamics, self.backend, state, rng, n_steps, fused, cache, return_fields
            )
        else:
            for _ in range(n_steps):
                for i, senders in rows:
                    rng, row_key = jax.random.split(rng)
                    state = state.replace_val(i, self._update_row(i, senders, state, row_key, cache))
        return (state, rng, fields) if return_fields else (state, rng)

    def cache_messages(self, state: SequentialState, *, skip_output_state: bool = True) -> MessageCache:
        """Messages from every layer that ``step``/``run`` with this ``skip_output_state`` never update.

        Pass the result to ``run``/``step``/``backward``/``predict`` on states derived from
        ``state`` by such sweeps (see :class:`MessageCache` for why this is exact). With
        ``backend="jax"`` the cache is empty (the oracle recomputes everything).
        """
        self._check_state(state)
        rows = self.lmap.rows()[:-1] if skip_output_state else self.lmap.rows()
        frozen = frozenset(range(len(state))) - set(rows)
        if self.backend == "jax":
            return MessageCache({}, frozen)
        msgs = {
            (i, j): m(state[j])
            for (i, j), m in self.lmap.edge_items()
            if j in frozen and getattr(m, "deterministic", False)
        }
        return MessageCache(msgs, frozen)

    def predict(
        self, state: SequentialState, rng: jax.Array, *, cache: MessageCache | None = None
    ) -> tuple[SequentialState, jax.Array]:
        """Recompute the last row from all its senders (identity activation for an OutputLayer).

        Returns:
            ``(state with the scores in its last row, new_rng)``.
        """
        self._check_state(state)
        i = self.lmap.rows()[-1]
        cache = cache if cache is not None and self.backend == "compiled" else MessageCache({}, frozenset())
        rng, row_key = jax.random.split(rng)
        msgs = self._messages(i, self.lmap.neighbors(i), state, jax.random.split(row_key)[0], cache)
        layer = self.lmap.get((i, i))
        h = row_field(layer, msgs, state[i])
        return state.replace_val(i, layer.activation(h) if layer is not None else h), rng

    def backward(
        self,
        state: SequentialState,
        rng: jax.Array,
        *,
        filter_messages: str = "inference",
        target_state: SequentialState | None = None,
        gate: jax.Array | None = None,
        cache: MessageCache | None = None,
        fields: Mapping[int, jax.Array] | None = None,
    ) -> SequentialOrchestrator:
        """Local updates of every module, as an orchestrator of identical structure (for Optax).

        For every row ``i`` (the last included) the field ``h_i = reduce(filtered messages)``;
        then every edge ``(i, j)`` gives ``lm[i, j].backward(x=state[j], y=target[i], y_hat=h_i,
        gate)``.

        Args:
            state: the state after the dynamics.
            rng: PRNG key.
            filter_messages: senders entering the fields (default: no label feedback).
            target_state: targets (default: ``state`` itself).
            gate: optional gate passed to every module.
            cache: optional cached messages.
            fields: optional fields ``{row: (B, width)}`` of ``state`` under ``filter_messages``,
                used instead of recomputing those rows (e.g. from :meth:`run` with
                ``return_fields=True`` and the same filter, as the trainers do). They may differ
                from a recomputation in the last bits (the kernels keep fields in float64).

        Returns:
            An orchestrator whose leaves hold updates, not parameters.

        Raises:
            ValueError: when ``target_state`` does not match ``state``, or a given field has
                the wrong shape.
        """
        self._check_state(state)
        if target_state is None:
            target_state = state
        elif len(target_state) != len(state) or any(
            a.shape != b.shape for a, b in zip(state.states, target_state.states)
        ):
            raise ValueError("target_state: expected the shapes of state, got a different layout")
        if cache is None or self.backend == "jax":
            cache = MessageCache({}, frozenset())
        given = dict(fields or {})
        for i, f in given.items():
            if i >= len(state) or f.shape != state[i].shape:
                raise ValueError(f"fields[{i}]: expected the shape of state[{i}], got {tuple(f.shape)}")
        h = {}
        for i, senders in self.lmap.row_items(skip_last=False, subset=filter_messages):
            rng, row_key = jax.random.split(rng)
            if i in given:
                h[i] = given[i]
                continue
            msgs = self._messages(i, senders, state, jax.random.split(row_key)[0], cache)
            h[i] = row_field(self.lmap.get((i, i)), msgs, state[i])
        updates = {
            i: {j: m.backward(x=state[j], y=target_state[i], y_hat=h[i], gate=gate) for j, m in row.items()}
            for i, row in self.lmap.to_dict().items()
        }
        return replace_static(self, lmap=LayerMap.from_dict(updates, require_diagonal=False))

    # ------------------------------------------------------------------ internals
    def _check_state(self, state: SequentialState) -> None:
        n = len(state)
        top = max(max(self.lmap.rows()), max(max(self.lmap.cols_of(i)) for i in self.lmap.rows()))
        if top >= n:
            raise ValueError(f"state has {n} layers but the LayerMap refers to layer {top}")
        batch = state[0].shape[0]
        for k in range(n):
            if state[k].ndim < 2 or state[k].shape[0] != batch:
                raise ValueError(f"state layer {k}: expected shape (B={batch}, ...), got {state[k].shape}")
        for k, w in self.widths:
            if state[k].shape[1:] != (w,):
                raise ValueError(
                    f"state layer {k} has shape {tuple(state[k].shape[1:])} per sample but the LayerMap's "
                    f"modules expect width {w}"
                )

    def _cache_for(self, state: SequentialState, rows: list[Row]) -> MessageCache:
        """Messages of this sweep's edges whose senders the sweep never updates."""
        updated = {i for i, _ in rows}
        frozen = frozenset(range(len(state))) - updated
        msgs = {
            (i, j): m(state[j])
            for i, senders in rows
            for j, m in senders.items()
            if j in frozen and getattr(m, "deterministic", False)
        }
        return MessageCache(msgs, frozen)

    def _messages(
        self, i: int, senders: Mapping[int, object], state: SequentialState, msg_key: jax.Array, cache: MessageCache
    ) -> dict[int, jax.Array]:
        """``{j: lm[i, j](state[j])}`` over ``senders``, from the cache where possible."""
        missing = [j for j in senders if (i, j) not in cache]
        keys = dict(zip(missing, jax.random.split(msg_key, len(missing)))) if missing else {}
        return {j: cache[i, j] if (i, j) in cache else m(state[j], rng=keys[j]) for j, m in senders.items()}

    def _update_row(
        self, i: int, senders: Mapping[int, object], state: SequentialState, row_key: jax.Array, cache: MessageCache
    ) -> jax.Array:
        if (i, i) not in self.lmap:
            raise ValueError(f"row {i} has no diagonal module (i, i) to reduce and activate its messages")
        layer = self.lmap[i, i]
        msg_key, dyn_key = jax.random.split(row_key)
        if self.dynamics == "async" and isinstance(layer, RecurrentSignLayer) and i in senders:
            others = {j: m for j, m in senders.items() if j != i}
            h_ext = row_field(layer, self._messages(i, others, state, msg_key, cache), state[i])
            return layer.async_sweeps(
                h_ext, state[i], visiting_orders(dyn_key[None], state[i].shape[-1], self.backend), 1
            )[0]
        return layer.activation(row_field(layer, self._messages(i, senders, state, msg_key, cache), state[i]))


def _with_backend(module: object, backend: str) -> object:
    fn = getattr(module, "with_backend", None)
    return fn(backend) if fn is not None else module


__all__ = ["SequentialOrchestrator"]
