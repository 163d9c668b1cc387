"""`DynamicalTrainer`: warm-up, clamped and free dynamics, then one local update per batch."""

from __future__ import annotations

import jax
import optax
from jax.sharding import Mesh

from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers._base import Ctx, Trainer, apply_optimizer, evaluate_batch
from darnax.utils.data_parallel import with_fused_batch_sums
from darnax.utils.typing import PyTree


class DynamicalTrainer(Trainer):
    """The training protocol of the seeds (SEMANTICS.md, "Trainer").

    ``train_step``: ``state.init(x, y)``; ``warmup_n_iter`` steps with ``filter="forward"``;
    ``train_clamped_n_iter`` steps with ``"all"`` (labels clamped and fed back);
    ``train_free_n_iter`` steps with ``"inference"``; ``updates = orchestrator.backward(state)``
    (reading the free phase's final fields where the kernel returned them); one Optax step.
    ``eval_step``: ``state.init(x, y)``; ``warmup + eval`` steps with ``"inference"``;
    ``predict``; accuracy of ``argmax``. Messages from the clamped input and labels are computed
    once per batch (exact: they cannot change, see :mod:`darnax.orchestrators.message_cache`).

    Example:
        >>> trainer = DynamicalTrainer(orch, state, optax.sgd(1.0), opt_state, 1, 5, 5, 5)
        >>> key = trainer.train_step(x, y, key)
        >>> key = trainer.fit_epoch(x_train, y_train, key, batch_size=16)     # one compiled call
        >>> key, metrics = trainer.evaluate(x_test, y_test, key, batch_size=16)
    """

    REQUIRED = ("optimizer", "optimizer_state", "warmup_iter", "clamped_iter", "free_iter", "eval_iter")

    def __init__(
        self,
        orchestrator: SequentialOrchestrator,
        state: SequentialState,
        optimizer: optax.GradientTransformation,
        optimizer_state: PyTree,
        warmup_n_iter: int = 1,
        train_clamped_n_iter: int = 7,
        train_free_n_iter: int = 7,
        eval_n_iter: int = 14,
        *,
        mesh: Mesh | None = None,
    ) -> None:
        """Set up the trainer.

        Args:
            orchestrator: the model.
            state: a ``SequentialState`` of the model's layer sizes (placeholder batch).
            optimizer: an Optax transformation (e.g. ``optax.sgd(1.0)``).
            optimizer_state: ``optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))``.
            warmup_n_iter: forward-only steps before the clamped phase (and before evaluation).
            train_clamped_n_iter: steps with label feedback.
            train_free_n_iter: steps without label feedback before the update.
            eval_n_iter: inference steps after the warm-up during evaluation.
            mesh: a one-axis mesh for data-parallel training (see :class:`~darnax.trainers._base.Trainer`).
        """
        super().__init__(
            orchestrator,
            state,
            {
                "optimizer": optimizer,
                "optimizer_state": optimizer_state,
                "warmup_iter": warmup_n_iter,
                "clamped_iter": train_clamped_n_iter,
                "free_iter": train_free_n_iter,
                "eval_iter": eval_n_iter,
            },
            mesh=mesh,
        )

    @staticmethod
    def _train_core(
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialOrchestrator, SequentialState, PyTree]:
        state = template.init(x, y)
        cache = orchestrator.cache_messages(state)
        for n, kind in ((ctx["warmup_iter"], "forward"), (ctx["clamped_iter"], "all")):
            state, rng = orchestrator.run(state, rng, n, filter_messages=kind, cache=cache)
        # The free phase's final fields are backward's "inference" fields: no product to redo.
        state, rng, fields = orchestrator.run(
            state, rng, ctx["free_iter"], filter_messages="inference", cache=cache, return_fields=True
        )
        updates = with_fused_batch_sums(orchestrator.backward, state, rng, cache=cache, fields=fields)
        orchestrator, opt_state = apply_optimizer(orchestrator, updates, ctx)
        return rng, orchestrator, state, opt_state

    @staticmethod
    def _eval_core(
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialState, dict[str, jax.Array]]:
        return evaluate_batch(x, y, rng, orchestrator, template, ctx["warmup_iter"] + ctx["eval_iter"])


__all__ = ["DynamicalTrainer"]
