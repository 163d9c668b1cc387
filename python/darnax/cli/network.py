"""The seeds' sparse network (seeds 09/10), built from a :class:`~darnax.cli.config.Config`."""

from __future__ import annotations

import equinox as eqx
import jax
import optax

from darnax.cli.config import Config
from darnax.layer_maps.sparse import LayerMap
from darnax.modules.fully_connected import FrozenRescaledFullyConnected, FullyConnected, SparseFullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import SparseRecurrentDiscrete
from darnax.ops import SparsityPattern
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers.dynamical import DynamicalTrainer


def build_trainer(
    config: Config,
    dim_data: int,
    num_labels: int,
    *,
    backend: str = "compiled",
    patterns: tuple[SparsityPattern, SparsityPattern] | None = None,
) -> DynamicalTrainer:
    """``input -> SparseFullyConnected -> SparseRecurrentDiscrete (+ label feedback) -> FullyConnected``.

    Key splits, distributions and module-internal learning rates follow seed 10 exactly
    (``lr_win / sqrt(1 - sparsity_win)``, ``lr_j / sqrt(1 - sparsity)``), trained with
    ``optax.sgd(1.0)``.

    Args:
        config: the run's configuration.
        dim_data: input width (from the dataset).
        num_labels: number of classes (from the dataset).
        backend: ``"compiled"`` (darnax.ops) or ``"jax"`` (the dense oracle).
        patterns: prebuilt ``(W_in, J)`` sparsity patterns for layers too large for
            ``SparsityPattern.random``'s dense mask (e.g. from ``SparsityPattern.from_coo``).

    Returns:
        A :class:`DynamicalTrainer` holding the fresh model and optimiser state.
    """
    m, o, t = config.model, config.optimizer, config.trainer
    keys = jax.random.split(jax.random.key(m.seed), 5)
    layers = LayerMap.from_dict(
        {
            1: {
                0: SparseFullyConnected(
                    in_features=dim_data,
                    out_features=m.dim_hidden,
                    strength=m.strength_forth,
                    threshold=m.threshold_in,
                    sparsity=m.sparsity_win,
                    key=keys[0],
                    lr=o.learning_rate_win / (1.0 - m.sparsity_win) ** 0.5,
                    weight_decay=o.weight_decay_win,
                    pattern=patterns[0] if patterns else None,
                ),
                1: SparseRecurrentDiscrete(
                    features=m.dim_hidden,
                    j_d=m.j_d,
                    sparsity=m.sparsity,
                    threshold=m.threshold_j,
                    key=keys[1],
                    lr=o.learning_rate_j / (1.0 - m.sparsity) ** 0.5,
                    weight_decay=o.weight_decay_j,
                    pattern=patterns[1] if patterns else None,
                ),
                2: FrozenRescaledFullyConnected(
                    in_features=num_labels,
                    out_features=m.dim_hidden,
                    strength=m.strength_back,
                    threshold=m.threshold_back,
                    key=keys[2],
                ),
            },
            2: {
                1: FullyConnected(
                    in_features=m.dim_hidden,
                    out_features=num_labels,
                    strength=1.0,
                    threshold=m.threshold_out,
                    key=keys[3],
                    lr=o.learning_rate_wout,
                    weight_decay=o.weight_decay_wout,
                ),
                2: OutputLayer(),
            },
        }
    )
    orchestrator = SequentialOrchestrator(layers=layers, dynamics=t.dynamics, backend=backend)
    optimizer = optax.sgd(learning_rate=1.0)
    return DynamicalTrainer(
        orchestrator=orchestrator,
        state=SequentialState((dim_data, m.dim_hidden, num_labels)),
        optimizer=optimizer,
        optimizer_state=optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array)),
        warmup_n_iter=t.warmup_n_iter,
        train_clamped_n_iter=t.train_clamped_n_iter,
        train_free_n_iter=t.train_free_n_iter,
        eval_n_iter=t.eval_n_iter,
    )
