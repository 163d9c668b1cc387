"""`BackpropTrainer`: the local network's feed-forward couplings trained by backpropagation.

The baseline that papers on local, gradient-free learning compare with: the same sparse layers
(same patterns, same initial weights, same width) trained end to end by gradient descent on a
cross-entropy loss, through the reverse-mode rules of :func:`darnax.ops.sparse_matmul`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers._base import Ctx, Trainer, apply_optimizer, batch_accuracy
from darnax.utils.data_parallel import batch_sum, global_batch_size
from darnax.utils.typing import PyTree


def feedforward(orchestrator: SequentialOrchestrator, x: jax.Array) -> list[jax.Array]:
    """Every layer's activity on the network's feed-forward path: ``[x, h_1, ..., h_L, logits]``.

    ``h_l = tanh(lm[l, l - 1](h_{l - 1}))`` with ``h_0 = x``, and ``logits = lm[L + 1, L](h_L)``
    (the read-out). Only the forward couplings ``(l, l - 1)`` are used: the recurrent couplings,
    the top-down couplings and the label feedback are not.

    Args:
        orchestrator: a network with layers ``0 .. L + 1`` (input, hidden, labels).
        x: ``(B, input width)`` inputs.

    Returns:
        ``L + 2`` arrays, one per layer, each ``(B, width)``.
    """
    out = max(orchestrator.lmap.rows())  # the labels' layer, L + 1
    acts = [x]
    for layer in range(1, out + 1):
        field = orchestrator.lmap[layer, layer - 1](acts[-1])
        acts.append(field if layer == out else jnp.tanh(field))
    return acts


def cross_entropy(orchestrator: SequentialOrchestrator, x: jax.Array, y: jax.Array) -> jax.Array:
    """Softmax cross-entropy of the read-out against the class ``argmax(y)``, averaged over the
    global batch (this shard's sum divided by the global batch size under data parallelism)."""
    logits = feedforward(orchestrator, x)[-1]
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.argmax(y, axis=-1))
    return jnp.sum(losses) / global_batch_size(x.shape[0])


class BackpropTrainer(Trainer):
    """Trains the forward couplings of a darnax network by backpropagation (a baseline).

    Model (:func:`feedforward`): ``x -> W_in -> tanh -> ... -> tanh -> W_out -> logits``: every
    forward coupling ``(l, l - 1)`` of the network, sparse ones through
    :func:`darnax.ops.sparse_matmul`, so the weights keep their patterns and initial values, and
    the dense read-out. ``tanh`` stands in for the ±1 units, whose ``sign`` has a zero gradient
    almost everywhere. The recurrent couplings are not used (they are left as built, frozen): the
    usual baseline of this field is the feed-forward network of the same width and input
    couplings, which isolates what the local rule and the recurrent dynamics add; unrolling the
    dynamics would make it backpropagation through time with a surrogate gradient, another model.

    ``train_step``: one ``optimizer`` step on the gradient of :func:`cross_entropy` (labels
    ``argmax(y)``, any of the datasets' label modes) with respect to every weight; only the
    forward couplings have a non-zero gradient, and optimisers such as Adam or SGD leave weights
    with zero gradients unchanged (decoupled weight decay would not). ``eval_step``: the same
    forward pass; accuracy of ``argmax``; the state holds ``[x, h_1, ..., h_L, logits]``, so
    ``state[-2]`` is the last hidden representation (``darnax probe`` reads it).

    Example:
        >>> trainer = BackpropTrainer(orch, state, optax.adam(1e-3), opt_state)
        >>> key = trainer.fit_epoch(x_train, y_train, key, batch_size=16)
        >>> key, metrics = trainer.evaluate(x_test, y_test, key, batch_size=16)
    """

    def __init__(
        self,
        orchestrator: SequentialOrchestrator,
        state: SequentialState,
        optimizer: optax.GradientTransformation,
        optimizer_state: PyTree,
        *,
        mesh: Mesh | None = None,
    ) -> None:
        """Set up the trainer.

        Args:
            orchestrator: the model; its rows ``1 .. L + 1`` each need a forward coupling ``(l, l - 1)``.
            state: a ``SequentialState`` of the model's layer sizes (placeholder batch).
            optimizer: an Optax transformation (e.g. ``optax.adam(1e-3)``).
            optimizer_state: ``optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))``.
            mesh: a one-axis mesh for data-parallel training (see :class:`~darnax.trainers._base.Trainer`).

        Raises:
            ValueError: when a forward coupling ``(l, l - 1)`` is missing.
        """
        lmap = orchestrator.lmap
        missing = [(i, i - 1) for i in range(1, max(lmap.rows()) + 1) if (i, i - 1) not in lmap]
        if missing:
            raise ValueError(f"orchestrator: backpropagation needs every forward coupling, missing {missing}")
        super().__init__(orchestrator, state, {"optimizer": optimizer, "optimizer_state": optimizer_state}, mesh=mesh)

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
        grads = eqx.filter_grad(cross_entropy)(orchestrator, state[0], y)
        grads = jax.tree_util.tree_map(batch_sum, grads)
        # Optax's Adam raises its float decays to its int32 step count: let that promote even
        # under jax_numpy_dtype_promotion="strict" (the model's own maths is not affected).
        with jax.numpy_dtype_promotion("standard"):
            orchestrator, opt_state = apply_optimizer(orchestrator, grads, ctx)
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
        acts = feedforward(orchestrator, template.init(x, y)[0])
        state = template.replace(acts)
        return rng, state, {"accuracy": batch_accuracy(y, acts[-1])}


__all__ = ["BackpropTrainer", "cross_entropy", "feedforward"]
