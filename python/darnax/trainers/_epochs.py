"""Whole epochs in one compiled call: ``fit_epoch`` and ``evaluate`` of every trainer.

:class:`EpochTraining` runs a trainer's per-batch core (between optimisation barriers, see
:func:`barrier`) inside one ``lax.scan`` over the batches of an epoch: the same function on the
same inputs as the ``train_step``/``eval_step`` loop, so the results are that loop's, bit for
bit, without Python dispatch per batch. It is a base of :class:`~darnax.trainers._base.Trainer`,
which provides the compiled calls (``_flat_fit``, ``_flat_evaluate``, ...) and the per-batch API it
relies on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState, check_batch_shapes
from darnax.trainers._finite import finite_weights, raise_if_non_finite
from darnax.trainers._flat import Flat
from darnax.utils._checks import check_finite, positive_int
from darnax.utils.typing import PyTree

Ctx = dict[str, Any]
PostUpdate = Callable[[SequentialOrchestrator], SequentialOrchestrator]


class EpochTraining:
    """``fit_epoch`` and ``evaluate``: an epoch of batches in one compiled ``lax.scan``."""

    @classmethod
    def _fit_core(
        cls,
        xs: jax.Array,
        ys: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
        optimizer_state: PyTree,
        post_update: PostUpdate | None,
    ) -> tuple[jax.Array, SequentialOrchestrator, list[jax.Array], PyTree, jax.Array]:
        """The epoch's scan; ``ctx`` without its optimiser state, passed apart (so that a call can
        donate the model and the optimiser state alone)."""
        params, static = eqx.partition(orchestrator, eqx.is_array)
        opt_dyn, opt_static = eqx.partition(optimizer_state, eqx.is_array)
        first = template.init(xs[0], ys[0])

        def body(carry: tuple, batch: tuple[jax.Array, jax.Array]) -> tuple[tuple, None]:
            params, opt_dyn, rng, _ = carry
            c = {**ctx, "optimizer_state": eqx.combine(opt_dyn, opt_static)}
            rng, orch, state, opt_state = cls._isolated_train(
                batch[0], batch[1], rng, eqx.combine(params, static), template, c
            )
            if post_update is not None:
                orch = barrier(post_update(orch))
            return (
                eqx.partition(orch, eqx.is_array)[0],
                eqx.partition(opt_state, eqx.is_array)[0],
                rng,
                state.states,
            ), None

        init = (params, opt_dyn, rng, [jnp.zeros_like(a) for a in first.states])
        (params, opt_dyn, rng, states), _ = jax.lax.scan(body, init, (xs, ys))
        orchestrator = eqx.combine(params, static)
        return rng, orchestrator, states, eqx.combine(opt_dyn, opt_static), finite_weights(orchestrator)

    @classmethod
    def _evaluate_core(
        cls,
        xs: jax.Array,
        ys: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
        representations: bool,
    ) -> tuple[jax.Array, list[jax.Array], jax.Array, jax.Array | None]:
        first = template.init(xs[0], ys[0])

        def body(carry: tuple, batch: tuple[jax.Array, jax.Array]) -> tuple[tuple, tuple]:
            rng, _ = carry
            rng, state, metrics = cls._isolated_eval(batch[0], batch[1], rng, orchestrator, template, ctx)
            return (rng, state.states), (metrics["accuracy"], state[-2] if representations else None)

        init = (rng, [jnp.zeros_like(a) for a in first.states])
        (rng, states), (accs, reps) = jax.lax.scan(body, init, (xs, ys))
        return rng, states, accs, reps

    # ------------------------------------------------------------------ per epoch
    def fit_epoch(
        self,
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        *,
        batch_size: int | None = None,
        post_update: PostUpdate | None = None,
        donate: bool = False,
    ) -> jax.Array:
        """Train on every batch of an epoch inside one compiled call (``lax.scan`` over batches).

        Equals ``for xb, yb in batches: rng = trainer.train_step(xb, yb, rng)`` (and
        ``trainer.orchestrator = post_update(trainer.orchestrator)`` after each step if given).

        Args:
            x: ``(n_batches, B, *size)`` stacked batches, or ``(N, *size)`` with ``batch_size``
                (then ``N // batch_size`` full batches and, if any, one smaller last batch, as a
                batch iterator would yield them).
            y: targets laid out like ``x``.
            rng: PRNG key.
            batch_size: split ``(N, ...)`` arrays into batches of this size.
            post_update: optional pure function applied to the orchestrator after every
                update (e.g. a weight decay); pass the same object across calls to avoid
                recompiling.
            donate: hand the buffers of ``orchestrator`` and of the optimiser state to the
                compiled call, which updates them in place (one copy of the weights less at peak
                memory, same results). The previous model's arrays are deleted: keep no other
                reference to them (jax raises on their use). Not with a ``mesh``.

        Returns:
            The next PRNG key.

        Raises:
            NonFiniteWeightsError: when a batch's update leaves a NaN or inf in a weight, naming
                the layer, the array and the batch (the model after the call is rebound); with
                ``donate=True``, naming the call's range of steps.
        """
        if donate and self.mesh is not None:
            raise ValueError("fit_epoch: donate=True is for single-process training; this trainer has a mesh")
        (xs, ys), rest = self._epoch_batches(x, y, batch_size)
        self.check_weights()
        n = xs.shape[0]
        if n:
            before = None if donate else (self.orchestrator, self.ctx, self.steps_done, rng)
            kept = {k: v for k, v in self.ctx.items() if k != "optimizer_state"}
            if self.mesh is None:
                call = self._flat_fit_in_place if donate else self._flat_fit
                rng, self._flat_orchestrator, states, opt_state, finite = call(
                    xs,
                    ys,
                    rng,
                    self._flat_orchestrator,
                    self._flat_template,
                    Flat.of(kept),
                    Flat.of(self.ctx["optimizer_state"]),
                    Flat.of(post_update),
                )
                opt_state = opt_state.tree()
            else:
                rng, self.orchestrator, states, opt_state, finite = self._jit_fit(
                    xs, ys, rng, self.orchestrator, self._template, kept, self.ctx["optimizer_state"], post_update
                )
            self.state = self._template.replace(states)
            self.ctx = {**self.ctx, "optimizer_state": opt_state}
            first, self.steps_done = self.steps_done, self.steps_done + n
            where = f"batches 0-{n - 1} of a fit_epoch call"
            if not donate and not bool(np.all(finite)):  # replay the call to name the first bad batch
                after = (self.orchestrator, self.ctx, self.state)
                self.orchestrator, self.ctx, self.steps_done, key = before
                for b in range(n):
                    key = self._step(xs[b], ys[b], key, f"batch {b} of a fit_epoch call")
                    self.check_weights()
                    if post_update is not None:
                        self.orchestrator = post_update(self.orchestrator)
                self.orchestrator, self.ctx, self.state = after  # pragma: no cover - the replay raises
            raise_if_non_finite(lambda: self.orchestrator, finite, first, n, where)
        if rest is not None:
            rng = self.train_step(*rest, rng)
            if post_update is not None:
                self.orchestrator = post_update(self.orchestrator)
            self.check_weights()
        return rng

    def evaluate(
        self,
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        *,
        batch_size: int | None = None,
        return_representations: bool = False,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """Evaluate every batch inside one compiled call; equals the ``eval_step`` loop.

        Args:
            x: stacked batches or ``(N, *size)`` samples, as in :meth:`fit_epoch`.
            y: targets laid out like ``x``.
            rng: PRNG key.
            batch_size: as in :meth:`fit_epoch`.
            return_representations: also return ``state[-2]`` of every sample, ``(N, width)``.

        Returns:
            ``(next rng, metrics)`` with ``"batch_accuracy"`` (one value per batch, as the loop
            gives them), ``"accuracy"`` (their mean, as the seeds aggregate) and, if asked,
            ``"representations"``.
        """
        (xs, ys), rest = self._epoch_batches(x, y, batch_size)
        self.check_weights()
        accs, reps = [], []
        if xs.shape[0]:
            if self.mesh is None:
                rng, states, acc, rep = self._flat_evaluate(
                    xs,
                    ys,
                    rng,
                    self._flat_orchestrator,
                    self._flat_template,
                    self._flat_ctx,
                    Flat.of(return_representations),
                )
            else:
                rng, states, acc, rep = self._jit_evaluate(
                    xs, ys, rng, self.orchestrator, self._template, self.ctx, return_representations
                )
            self.state = self._template.replace(states)
            accs.append(acc)
            if return_representations:
                reps.append(rep.reshape(-1, *rep.shape[2:]))
        if rest is not None:
            rng, metrics = self.eval_step(*rest, rng)
            accs.append(metrics["accuracy"][None])
            if return_representations:
                reps.append(self.state[-2])
        batch_acc = jnp.concatenate(accs)
        out = {"accuracy": jnp.mean(batch_acc), "batch_accuracy": batch_acc}
        if return_representations:
            out["representations"] = jnp.concatenate(reps)
        return rng, out

    def _epoch_batches(
        self, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike, batch_size: int | None
    ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
        # NumPy views (no copy of a jax array on the CPU): slicing and reshaping them is free,
        # where each jax reshape of a concrete array runs a program (~0.6 ms for a chunk of the
        # seeds' epoch, twice per call); the compiled call takes NumPy arrays as they are.
        x, y = np.asarray(x), np.asarray(y)
        sizes = self._template.sizes
        rest = None
        if batch_size is None:
            if x.ndim != len(sizes[0]) + 2 or y.ndim != len(sizes[-1]) + 2:
                raise ValueError(
                    f"x, y: expected stacked batches (n_batches, B, ...) or pass batch_size=; got shapes "
                    f"{tuple(x.shape)} and {tuple(y.shape)}"
                )
            xs, ys = x, y
        else:
            batch_size = positive_int("batch_size", batch_size)
            if x.shape[:1] != y.shape[:1]:
                raise ValueError(f"x and y must have one length, got {x.shape[0]} and {y.shape[0]}")
            n_full = x.shape[0] // batch_size
            cut = n_full * batch_size
            xs = x[:cut].reshape(n_full, batch_size, *x.shape[1:])
            ys = y[:cut].reshape(n_full, batch_size, *y.shape[1:])
            if cut < x.shape[0]:
                rest = (x[cut:], y[cut:])
        if xs.shape[:2] != ys.shape[:2]:
            raise ValueError(f"x and y batches disagree: {tuple(xs.shape[:2])} and {tuple(ys.shape[:2])}")
        if xs.shape[0]:
            check_batch_shapes(*self._io_sizes, xs.shape[1:], ys.shape[1:])
        check_finite("x", x)
        check_finite("y", y)
        return (xs, ys), rest


def barrier(tree: PyTree) -> PyTree:
    """``lax.optimization_barrier`` on the array leaves of ``tree`` (other leaves pass through)."""
    dyn, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.lax.optimization_barrier(dyn), static)


__all__ = ["Ctx", "EpochTraining", "PostUpdate", "barrier"]
