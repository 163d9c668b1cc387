"""Deep networks (2 and 3 hidden layers) built by ``darnax train``'s builder, through the model stack.

- The compiled backend equals the ``jax`` oracle bit for bit on dyadic networks (see
  ``test_backends.py`` for why dyadic values make every field exact in both backends), for
  synchronous and asynchronous dynamics: deep networks take the orchestrator's general path
  (several rows per sweep, messages between hidden layers recomputed every step, no fused
  phase), which the one-layer tests never reach.
- ``fit_epoch`` equals the per-batch ``train_step`` loop.
- The builder wires the couplings the docs describe: forward, recurrent and plastic top-down
  couplings between hidden layers, frozen label feedback into the top one.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.cli.config import Config, merge
from darnax.cli.network import build_trainer
from darnax.modules.fully_connected import FrozenRescaledFullyConnected, FullyConnected, SparseFullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import SparseRecurrentDiscrete
from darnax.ops import SparsityPattern
from darnax.trainers.dynamical import DynamicalTrainer

from ._nets import assert_trees_equal, dyadic, pm1_data

#: Hidden widths whose perceptron scale ``1 / sqrt(16 * width)`` is a power of two (batch 16).
DEPTHS = {2: [64, 16], 3: [64, 16, 64]}
LABELS = 5  # label rescaling r = sqrt(C - 1) = 2: dyadic


def _config(widths: list[int], dynamics: str = "sync", **model) -> Config:
    return merge(
        Config(),
        {
            "model": {
                "dim_hidden": widths,
                "sparsity": 0.75,
                "sparsity_win": 0.5,
                "sparsity_back": 0.5,
                "strength_back": 1.0,
                "threshold_back": [0.5] * (len(widths) - 1) + [0.0],
                **model,
            },
            "optimizer": {
                "learning_rate_win": 0.5,
                "learning_rate_j": 0.5,
                "learning_rate_back": 0.5,
                "weight_decay_win": 0.0,
                "weight_decay_j": 0.0,
                "weight_decay_back": 0.0,
                "weight_decay_wout": 0.0,
            },
            "trainer": {"dynamics": dynamics, "train_clamped_n_iter": 4, "train_free_n_iter": 4, "eval_n_iter": 4},
        },
    )


def _dyadic_trainer(depth: int, dynamics: str, backend: str) -> DynamicalTrainer:
    """The builder's network with every parameter (learning rates included) rounded to 1/64."""
    trainer = build_trainer(_config(DEPTHS[depth], dynamics), 64, LABELS, backend=backend)
    trainer.orchestrator = dyadic(trainer.orchestrator)
    return trainer


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_compiled_equals_jax_bitwise_on_deep_networks(depth, dynamics):
    compiled, oracle = _dyadic_trainer(depth, dynamics, "compiled"), _dyadic_trainer(depth, dynamics, "jax")
    assert oracle.orchestrator.lmap[2, 2].backend == "jax" and compiled.orchestrator.lmap[2, 2].backend == "compiled"
    start = compiled.orchestrator
    x, y = pm1_data(jax.random.key(5), 16 * 3, 64, LABELS)
    kc = ko = jax.random.key(1)
    for lo in range(0, x.shape[0], 16):
        xb, yb = x[lo : lo + 16], y[lo : lo + 16]
        kc, ko = compiled.train_step(xb, yb, kc), oracle.train_step(xb, yb, ko)
        assert_trees_equal(compiled.state, oracle.state)
        assert_trees_equal(jax.tree.leaves(compiled.orchestrator), jax.tree.leaves(oracle.orchestrator))  # bitwise
        kc, mc = compiled.eval_step(xb, yb, kc)
        ko, mo = oracle.eval_step(xb, yb, ko)
        assert_trees_equal((compiled.state, mc, kc), (oracle.state, mo, ko))
    hidden = compiled.state.states[1:-1]
    assert all(bool(jnp.any(s > 0)) and bool(jnp.any(s < 0)) for s in hidden), "non-trivial ±1 states"
    weights = lambda m: np.asarray(m.J if isinstance(m, SparseRecurrentDiscrete) else m.W)  # noqa: E731
    for (i, j), module in compiled.orchestrator.lmap.edge_items():
        if not isinstance(module, OutputLayer):  # every coupling learned, but the label feedback
            moved = not np.array_equal(weights(module), weights(start.lmap[i, j]))
            assert moved != isinstance(module, FrozenRescaledFullyConnected), f"edge {(i, j)}"


@pytest.mark.parametrize(("depth", "dynamics"), [(2, "sync"), (3, "async")])
def test_fit_epoch_equals_the_train_step_loop_on_deep_networks(depth, dynamics):
    config = merge(_config(DEPTHS[depth], dynamics), {"optimizer": {"weight_decay_j": 6e-5, "weight_decay_back": 0.01}})
    x, y = pm1_data(jax.random.key(8), 16 * 3 + 5, 64, LABELS)
    x = (x + 1) / 2  # pixels in [0, 1], as the datasets give them
    loop, fast = build_trainer(config, 64, LABELS), build_trainer(config, 64, LABELS)
    key = jax.random.key(2)
    for lo in range(0, x.shape[0], 16):
        key = loop.train_step(x[lo : lo + 16], y[lo : lo + 16], key)
    assert_trees_equal(fast.fit_epoch(x, y, jax.random.key(2), batch_size=16), key)
    assert_trees_equal(fast.orchestrator, loop.orchestrator)
    assert_trees_equal(fast.state, loop.state)
    assert_trees_equal(fast.ctx["optimizer_state"], loop.ctx["optimizer_state"])
    assert not np.array_equal(
        fast.orchestrator.lmap[1, 2].W, build_trainer(config, 64, LABELS).orchestrator.lmap[1, 2].W
    )


def test_builder_wires_forward_recurrent_and_top_down_couplings():
    config = _config([64, 16, 32], sparsity=[0.75, 0.5, 0.9], strength_forth=[5.0, 2.0, 3.0])
    lm = build_trainer(config, 40, LABELS).orchestrator.lmap
    kinds = {edge: type(m) for edge, m in lm.edge_items()}
    assert kinds == {
        (1, 0): SparseFullyConnected,
        (1, 1): SparseRecurrentDiscrete,
        (1, 2): SparseFullyConnected,
        (2, 1): SparseFullyConnected,
        (2, 2): SparseRecurrentDiscrete,
        (2, 3): SparseFullyConnected,
        (3, 2): SparseFullyConnected,
        (3, 3): SparseRecurrentDiscrete,
        (3, 4): FrozenRescaledFullyConnected,
        (4, 3): FullyConnected,
        (4, 4): OutputLayer,
    }
    assert [(lm[i, j].in_features, lm[i, j].out_features) for i, j in ((1, 0), (2, 1), (3, 2), (1, 2), (2, 3))] == [
        (40, 64),
        (64, 16),
        (16, 32),
        (16, 64),
        (32, 16),
    ]
    assert [lm[i, i].sparsity for i in (1, 2, 3)] == [0.75, 0.5, 0.9]
    assert [lm[i, j].sparsity for i, j in ((1, 0), (2, 1), (1, 2))] == [0.5, 0.5, 0.5]
    np.testing.assert_allclose([float(lm[1, 2].threshold[0]), float(lm[3, 4].threshold[0])], [0.5, 0.0])
    # module-internal rate: lr / sqrt(1 - s) here, times sqrt(0.1) / sqrt(1 - s) in the module
    np.testing.assert_allclose(float(lm[1, 2].lr), 0.5 * 0.1**0.5 / 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(lm[2, 2].lr), 0.5 * 0.01**0.5 / 0.5, rtol=1e-6)
    # strength sets the init scale: W ~ N(0, 1) * strength / sqrt(in * (1 - s))
    scale = lambda m, s: float(jnp.std(m.W)) * (m.in_features * (1 - m.sparsity)) ** 0.5 / s  # noqa: E731
    assert 0.8 < scale(lm[2, 1], 2.0) < 1.2 and 0.8 < scale(lm[3, 2], 3.0) < 1.2


def test_adding_a_layer_on_top_keeps_the_keys_of_the_layers_below():
    two = build_trainer(_config([64, 16]), 40, LABELS).orchestrator.lmap
    three = build_trainer(_config([64, 16, 32]), 40, LABELS).orchestrator.lmap
    for edge in ((1, 0), (1, 1), (1, 2), (2, 1), (2, 2)):
        assert_trees_equal(eqx.filter(two[edge], eqx.is_array), eqx.filter(three[edge], eqx.is_array))
    assert not np.array_equal(three[2, 3].W[:8], three[1, 2].W[:8])


def test_prebuilt_patterns_per_layer_or_per_edge():
    config = _config([64, 16])
    pattern = lambda shape, seed: SparsityPattern.random(jax.random.key(seed), shape, 0.5)  # noqa: E731
    recurrent = lambda n, seed: SparsityPattern.random(jax.random.key(seed), (n, n), 0.5, zero_diagonal=True)  # noqa: E731
    pairs = [(pattern((40, 64), 1), recurrent(64, 2)), (pattern((64, 16), 3), recurrent(16, 4))]
    lm = build_trainer(config, 40, LABELS, patterns=pairs).orchestrator.lmap
    assert lm[1, 0].pattern == pairs[0][0] and lm[2, 2].pattern == pairs[1][1]
    top_down = pattern((16, 64), 5)
    lm = build_trainer(config, 40, LABELS, patterns={(1, 2): top_down}).orchestrator.lmap
    assert (
        lm[1, 2].pattern == top_down
        and lm[1, 0].pattern == build_trainer(config, 40, LABELS).orchestrator.lmap[1, 0].pattern
    )
    one = build_trainer(_config([64]), 40, LABELS, patterns=pairs[0]).orchestrator.lmap  # the one-layer (W_in, J)
    assert (one[1, 0].pattern, one[1, 1].pattern) == pairs[0]
    with pytest.raises(ValueError, match=r"patterns: expected 2 \(forward, recurrent\) pair\(s\)"):
        build_trainer(config, 40, LABELS, patterns=pairs[0])
    with pytest.raises(ValueError, match=r"patterns: \(2, 3\) is not a sparse edge"):
        build_trainer(config, 40, LABELS, patterns={(2, 3): top_down})
    with pytest.raises(ValueError, match="pattern: expected a SparsityPattern of shape"):
        build_trainer(config, 40, LABELS, patterns={(1, 2): pattern((64, 16), 6)})
