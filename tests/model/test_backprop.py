"""BackpropTrainer: the seeds' network's forward couplings trained by backpropagation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darnax.cli.config import resolve
from darnax.cli.network import build_trainer
from darnax.layer_maps.sparse import LayerMap
from darnax.modules.fully_connected import FullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers.backprop import BackpropTrainer, cross_entropy, feedforward

from ._nets import pm1_data

DIM, LABELS = 64, 5


def backprop_trainer(dim_hidden=48, backend: str = "compiled", mesh=None) -> BackpropTrainer:
    """The CLI's network (one or more hidden layers) with ``trainer.rule = "backprop"``."""
    config = resolve(
        model={"dim_hidden": dim_hidden, "sparsity": 0.8, "sparsity_win": 0.7},
        trainer={"rule": "backprop"},
        optimizer={"learning_rate_backprop": 0.01},
    )
    return build_trainer(config, DIM, LABELS, backend=backend, mesh=mesh)


def test_a_few_epochs_reduce_the_loss_and_change_only_forward_couplings():
    trainer = backprop_trainer()
    x, y = pm1_data(jax.random.key(0), 96, DIM, LABELS)
    before = trainer.orchestrator
    key = jax.random.key(1)
    for _ in range(4):
        key = trainer.fit_epoch(x, y, key, batch_size=16)
    after = trainer.orchestrator
    assert float(cross_entropy(after, x, y)) < 0.7 * float(cross_entropy(before, x, y))
    for (i, j), module in before.lmap.edge_items():
        changed = not np.array_equal(module.W, after.lmap[i, j].W) if hasattr(module, "W") else False
        assert changed == (i == j + 1), (i, j)  # the recurrent J and the label feedback stay as built
    _, metrics = trainer.evaluate(x, y, key, batch_size=16)
    assert float(metrics["accuracy"]) > 0.6  # 5 classes, random labels: fitted, not generalised


@pytest.mark.parametrize("dim_hidden", [48, [48, 32]])
def test_gradients_through_the_kernels_equal_the_dense_oracles(dim_hidden):
    """Same network on the compiled ops and on their jnp oracles (backend "jax"): same gradients
    (float32, rtol 1e-5); with two hidden layers the gradient crosses a sparse layer backwards."""
    x, y = pm1_data(jax.random.key(2), 16, DIM, LABELS)
    grads = [
        eqx.filter_grad(cross_entropy)(backprop_trainer(dim_hidden, b).orchestrator, x, y) for b in ("compiled", "jax")
    ]
    leaves = [jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_inexact_array)) for g in grads]
    assert len(leaves[0]) == len(leaves[1])
    assert any(float(jnp.abs(a).max()) > 0 for a in leaves[0])
    for a, b in zip(*leaves):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluation_state_holds_the_feedforward_activities():
    trainer = backprop_trainer([48, 32])
    x, y = pm1_data(jax.random.key(3), 8, DIM, LABELS)
    _, metrics = trainer.eval_step(x, y, jax.random.key(0))
    acts = feedforward(trainer.orchestrator, x)
    assert [a.shape for a in acts] == [(8, DIM), (8, 48), (8, 32), (8, LABELS)]
    for got, want in zip(trainer.state.states, acts):
        np.testing.assert_array_equal(got, want)
    assert float(metrics["accuracy"]) == float(jnp.mean(jnp.argmax(acts[-1], -1) == jnp.argmax(y, -1)))


def test_a_network_without_a_forward_coupling_is_refused():
    key = jax.random.key(0)
    lm = LayerMap.from_dict({1: {1: OutputLayer()}, 2: {1: FullyConnected(8, 3, 1.0, 0.0, key), 2: OutputLayer()}})
    orch = SequentialOrchestrator(lm)
    opt = optax.adam(1e-3)
    with pytest.raises(ValueError, match=r"missing \[\(1, 0\)\]"):
        BackpropTrainer(orch, SequentialState((4, 8, 3)), opt, opt.init(eqx.filter(orch, eqx.is_inexact_array)))


def test_the_sharded_path_trains_like_one_process():
    """``mesh=`` (here one device): the batch sums and global batch size of the data-parallel path."""
    x, y = pm1_data(jax.random.key(4), 32, DIM, LABELS)
    plain, sharded = backprop_trainer(), backprop_trainer(mesh=jax.make_mesh((1,), ("data",)))
    for trainer in (plain, sharded):
        trainer.fit_epoch(x, y, jax.random.key(5), batch_size=16)
    for a, b in zip(
        *(jax.tree_util.tree_leaves(eqx.filter(t.orchestrator, eqx.is_inexact_array)) for t in (plain, sharded))
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
