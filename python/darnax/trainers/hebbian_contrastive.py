"""`ContrastiveHebbianTrainer`: free phase, clamped phase, update = clamped minus free."""

from __future__ import annotations

import equinox as eqx
import jax
import optax
from jax.sharding import Mesh

from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers._base import Ctx, Trainer, apply_optimizer, evaluate_batch
from darnax.utils.typing import PyTree


class ContrastiveHebbianTrainer(Trainer):
    """Contrastive learning with the local rule: ``update = backward(clamped) - backward(free)``.

    ``train_step``: ``state.init(x, y)``; ``train_free_n_iter`` steps with ``"inference"`` (no
    label feedback) give ``s_free`` and ``U_free = backward(s_free)``; from there,
    ``train_clamped_n_iter`` steps with ``"all"`` give ``s_clamped`` and ``U_clamped``; Optax
    receives ``U_clamped - U_free``. Since ``backward`` returns pseudo-gradients (minus the
    perceptron step), ``optax.sgd`` then strengthens the clamped phase's local corrections and
    weakens the free phase's, the contrastive Hebbian direction. ``eval_step``: ``eval_n_iter``
    inference steps, ``predict``, accuracy.
    """

    REQUIRED = ("optimizer", "optimizer_state", "clamped_iter", "free_iter", "eval_iter")

    def __init__(
        self,
        orchestrator: SequentialOrchestrator,
        state: SequentialState,
        optimizer: optax.GradientTransformation,
        optimizer_state: PyTree,
        train_clamped_n_iter: int = 7,
        train_free_n_iter: int = 7,
        eval_n_iter: int = 14,
        *,
        mesh: Mesh | None = None,
    ) -> None:
        """Set up the trainer.

        Args:
            orchestrator: the model.
            state: a ``SequentialState`` of the model's layer sizes.
            optimizer: an Optax transformation.
            optimizer_state: ``optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))``.
            train_clamped_n_iter: steps of the clamped phase.
            train_free_n_iter: steps of the free phase.
            eval_n_iter: inference steps during evaluation.
            mesh: a one-axis mesh for data-parallel training (see :class:`~darnax.trainers._base.Trainer`).
        """
        super().__init__(
            orchestrator,
            state,
            {
                "optimizer": optimizer,
                "optimizer_state": optimizer_state,
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
        free, rng, fields = orchestrator.run(
            state, rng, ctx["free_iter"], filter_messages="inference", cache=cache, return_fields=True
        )
        rng, key = jax.random.split(rng)
        u_free = eqx.filter(orchestrator.backward(free, key, cache=cache, fields=fields), eqx.is_inexact_array)
        clamped, rng = orchestrator.run(free, rng, ctx["clamped_iter"], filter_messages="all", cache=cache)
        rng, key = jax.random.split(rng)
        u_clamped = eqx.filter(orchestrator.backward(clamped, key, cache=cache), eqx.is_inexact_array)
        updates = jax.tree.map(lambda c, f: c - f, u_clamped, u_free)
        orchestrator, opt_state = apply_optimizer(orchestrator, updates, ctx)
        return rng, orchestrator, clamped, opt_state

    @staticmethod
    def _eval_core(
        x: jax.Array,
        y: jax.Array,
        rng: jax.Array,
        orchestrator: SequentialOrchestrator,
        template: SequentialState,
        ctx: Ctx,
    ) -> tuple[jax.Array, SequentialState, dict[str, jax.Array]]:
        return evaluate_batch(x, y, rng, orchestrator, template, ctx["eval_iter"])


__all__ = ["ContrastiveHebbianTrainer"]
