"""The seeds' sparse network (seeds 09/10), with one or more hidden layers, from a :class:`Config`.

Layers: ``0`` the input, ``1..L`` the hidden layers (bottom to top), ``L + 1`` the labels. Hidden
layer ``k`` has three couplings into it, each configured by entry ``k - 1`` of the per-layer
fields (:mod:`darnax.cli.config`):

- forward ``(k, k - 1)``: :class:`SparseFullyConnected`, from the input (``W_in``) or from the
  hidden layer below: a sparse, plastic coupling like ``W_in`` (``±1`` senders instead of pixels);
- recurrent ``(k, k)``: :class:`SparseRecurrentDiscrete`;
- top-down ``(k, k + 1)``: the frozen label feedback :class:`FrozenRescaledFullyConnected` for
  the top layer, a sparse *plastic* :class:`SparseFullyConnected` from the hidden layer above for
  the others. The local rule (SEMANTICS.md) updates every coupling into a unit from the field it
  has without labels (``filter_messages="inference"``); the labels' feedback is absent from that
  field and stays frozen, while a hidden layer's top-down message is part of it, so it learns
  like the other couplings (``optimizer.learning_rate_back = 0`` freezes it).

The output ``(L + 1, L)`` is a dense :class:`FullyConnected` read-out of the top hidden layer.

Keys: ``split(key(model.seed), 5)`` gives, as in seed 10, ``W_in``, ``J_1``, the label feedback,
``W_out`` and a fifth key; hidden layer ``k >= 2`` draws its forward coupling, its recurrent
couplings and the top-down coupling it sends to layer ``k - 1`` from
``split(fold_in(fifth key, k), 3)``, in that order. A one-layer network is therefore exactly the
seeds' network, and adding a layer on top changes no key of the layers below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import optax
from jax.sharding import Mesh

from darnax.cli.config import Config, layer_values
from darnax.layer_maps.sparse import LayerMap
from darnax.modules.fully_connected import FrozenRescaledFullyConnected, FullyConnected, SparseFullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import SparseRecurrentDiscrete
from darnax.ops import SparsityPattern
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers.backprop import BackpropTrainer
from darnax.trainers.dynamical import DynamicalTrainer

#: The per-layer fields of the forward and top-down sparse couplings (strength, threshold,
#: sparsity, learning rate, weight decay).
FORWARD_FIELDS = ("strength_forth", "threshold_in", "sparsity_win", "learning_rate_win", "weight_decay_win")
TOP_DOWN_FIELDS = ("strength_back", "threshold_back", "sparsity_back", "learning_rate_back", "weight_decay_back")
Edge = tuple[int, int]
Patterns = (
    tuple[SparsityPattern, SparsityPattern]
    | Sequence[tuple[SparsityPattern, SparsityPattern]]
    | Mapping[Edge, SparsityPattern]
)


def build_trainer(
    config: Config,
    dim_data: int,
    num_labels: int,
    *,
    backend: str = "compiled",
    patterns: Patterns | None = None,
    mesh: Mesh | None = None,
) -> DynamicalTrainer | BackpropTrainer:
    """The configured network (see the module doc) in a :class:`DynamicalTrainer` with ``optax.sgd(1.0)``,
    or, with ``trainer.rule = "backprop"``, in a :class:`BackpropTrainer` with
    ``optax.adam(optimizer.learning_rate_backprop)`` (same network, same patterns and initial weights).

    Learning rates are module-internal, as in seed 10: every sparse coupling gets its configured
    rate divided by ``sqrt(1 - sparsity)`` (``lr_win / sqrt(1 - sparsity_win)``,
    ``lr_j / sqrt(1 - sparsity)``, ``lr_back / sqrt(1 - sparsity_back)``), which the module
    rescales again (SEMANTICS.md).

    Parameters
    ----------
    config
        The run's configuration.
    dim_data
        Input width (from the dataset).
    num_labels
        Number of classes (from the dataset).
    backend
        ``"compiled"`` (darnax.ops) or ``"jax"`` (the dense oracle).
    patterns
        Prebuilt sparsity patterns, for layers too large for ``SparsityPattern.random``'s dense
        mask (e.g. from ``SparsityPattern.from_coo``): a ``(W_in, J)`` pair (one hidden layer),
        a sequence of ``(forward, recurrent)`` pairs, one per hidden layer, or a mapping
        ``{(receiver, sender): pattern}`` over any of the sparse edges (top-down ones
        included). Edges without a pattern draw theirs.
    mesh
        A one-axis mesh for data-parallel training (see :class:`~darnax.trainers._base.Trainer`).

    Returns:
    -------
    DynamicalTrainer or BackpropTrainer
        The fresh model and optimiser state.

    Raises:
    ------
    ValueError
        When ``patterns`` does not fit the network (naming the pair or edge).
    """
    t = config.trainer
    widths = layer_values(config)["dim_hidden"]
    edges = _edge_patterns(patterns, len(widths))
    layers = LayerMap.from_dict(_layer_map(config, dim_data, num_labels, edges))
    orchestrator = SequentialOrchestrator(layers=layers, dynamics=t.dynamics, backend=backend)
    state = SequentialState((dim_data, *widths, num_labels))
    if t.rule == "backprop":
        optimizer = optax.adam(config.optimizer.learning_rate_backprop)
        opt_state = optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))
        return BackpropTrainer(orchestrator, state, optimizer, opt_state, mesh=mesh)
    optimizer = optax.sgd(learning_rate=1.0)
    return DynamicalTrainer(
        orchestrator=orchestrator,
        state=state,
        optimizer=optimizer,
        optimizer_state=optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array)),
        warmup_n_iter=t.warmup_n_iter,
        train_clamped_n_iter=t.train_clamped_n_iter,
        train_free_n_iter=t.train_free_n_iter,
        eval_n_iter=t.eval_n_iter,
        mesh=mesh,
    )


def _layer_map(config: Config, dim_data: int, num_labels: int, patterns: dict[Edge, SparsityPattern]) -> dict:
    """``{receiver: {sender: module}}`` of the whole network (keys as in the module doc)."""
    v = layer_values(config)
    widths, depth = v["dim_hidden"], config.model.depth
    seed_keys = tuple(jax.random.split(jax.random.key(config.model.seed), 5))  # one unstack, not an index each
    # keys[i]: (forward into layer i + 1, its J, its top-down coupling into layer i)
    keys = [(seed_keys[0], seed_keys[1], None)]
    keys += [tuple(jax.random.split(jax.random.fold_in(seed_keys[4], k), 3)) for k in range(2, depth + 1)]
    rows: dict[int, dict[int, object]] = {}
    for i, width in enumerate(widths):
        k, below = i + 1, widths[i - 1] if i else dim_data
        rows[k] = {
            k - 1: _sparse(v, FORWARD_FIELDS, i, below, width, keys[i][0], patterns.get((k, k - 1)), config),
            k: SparseRecurrentDiscrete(
                features=width,
                j_d=v["j_d"][i],
                sparsity=v["sparsity"][i],
                threshold=v["threshold_j"][i],
                key=keys[i][1],
                lr=v["learning_rate_j"][i] / (1.0 - v["sparsity"][i]) ** 0.5,
                weight_decay=v["weight_decay_j"][i],
                pattern=patterns.get((k, k))
                or _drawn(config, keys[i][1], (width, width), v["sparsity"][i], recurrent=True),
            ),
        }
        if k < depth:
            rows[k][k + 1] = _sparse(
                v, TOP_DOWN_FIELDS, i, widths[k], width, keys[k][2], patterns.get((k, k + 1)), config
            )
    rows[depth][depth + 1] = FrozenRescaledFullyConnected(
        in_features=num_labels,
        out_features=widths[-1],
        strength=v["strength_back"][-1],
        threshold=v["threshold_back"][-1],
        key=seed_keys[2],
    )
    o = config.optimizer
    rows[depth + 1] = {
        depth: FullyConnected(
            in_features=widths[-1],
            out_features=num_labels,
            strength=1.0,
            threshold=config.model.threshold_out,
            key=seed_keys[3],
            lr=o.learning_rate_wout,
            weight_decay=o.weight_decay_wout,
        ),
        depth + 1: OutputLayer(),
    }
    return rows


def _sparse(
    v: dict[str, tuple],
    names: tuple[str, ...],
    i: int,
    in_features: int,
    out_features: int,
    key: jax.Array,
    pattern: SparsityPattern | None,
    config: Config,
) -> SparseFullyConnected:
    """The sparse coupling into hidden layer ``i + 1`` whose per-layer fields are ``names``."""
    strength, threshold, sparsity, lr, weight_decay = (v[name][i] for name in names)
    pattern = pattern or _drawn(config, key, (in_features, out_features), sparsity)
    return SparseFullyConnected(
        in_features=in_features,
        out_features=out_features,
        strength=strength,
        threshold=threshold,
        sparsity=sparsity,
        key=key,
        lr=lr / (1.0 - sparsity) ** 0.5,
        weight_decay=weight_decay,
        pattern=pattern,
    )


def _drawn(
    config: Config, key: jax.Array, shape: tuple[int, int], sparsity: float, *, recurrent: bool = False
) -> SparsityPattern | None:
    """The pattern of a sparse edge under ``model.connectivity``, from the module's mask key
    (``split(key)[1]``): None for ``"bernoulli"`` (the module draws it, as the reference does),
    else exactly ``round((1 - sparsity) * senders)`` inputs per receiving unit (a recurrent
    layer's senders exclude the unit itself)."""
    if config.model.connectivity == "bernoulli":
        return None
    fan_in = round((1.0 - sparsity) * (shape[0] - recurrent))
    return SparsityPattern.fixed_fan_in(jax.random.split(key)[1], shape, fan_in, zero_diagonal=recurrent)


def _edge_patterns(patterns: Patterns | None, depth: int) -> dict[Edge, SparsityPattern]:
    """``patterns`` as ``{(receiver, sender): pattern}`` over the network's sparse edges."""
    if patterns is None:
        return {}
    if isinstance(patterns, Mapping):
        edges = dict(patterns)
    else:
        pairs = list(patterns)
        if len(pairs) == 2 and all(isinstance(p, SparsityPattern) for p in pairs):
            pairs = [tuple(pairs)]  # the one-layer form (W_in, J)
        if len(pairs) != depth:
            raise ValueError(
                f"patterns: expected {depth} (forward, recurrent) pair(s), one per hidden layer, got {len(pairs)}"
            )
        edges = {}
        for k, pair in enumerate(pairs, start=1):
            if len(pair) != 2:
                raise ValueError(f"patterns[{k - 1}]: expected a (forward, recurrent) pair, got {len(pair)} item(s)")
            edges[(k, k - 1)], edges[(k, k)] = pair
    sparse = {(k, j) for k in range(1, depth + 1) for j in (k - 1, k, k + 1) if j <= depth}
    unknown = sorted(set(edges) - sparse, key=str)
    if unknown:
        raise ValueError(f"patterns: {unknown[0]} is not a sparse edge of this network (those are {sorted(sparse)})")
    return edges
