"""Trainers: per-batch steps, whole-epoch scans identical to the loop, contrastive rule, errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darnax.trainers.dynamical import DynamicalTrainer
from darnax.trainers.hebbian_contrastive import ContrastiveHebbianTrainer

from ._nets import assert_trees_equal, pm1_data, seed10_network

F32 = jnp.float32


def _trainer(cls=DynamicalTrainer, dynamics="sync", **kw):
    st, orch = seed10_network(dim_data=40, dim_hidden=96, sparsity=0.8, sparsity_win=0.7, dynamics=dynamics)
    opt = optax.sgd(1.0)
    return cls(orch, st, opt, opt.init(eqx.filter(orch, eqx.is_inexact_array)), **kw)


def _data(n=16 * 3 + 5):
    x, y = pm1_data(jax.random.key(2), n, 40, 10)
    return (x + 1) / 2, y  # pixels in [0, 1] as the seeds use


def _decay(orch):
    return eqx.tree_at(lambda o: o.lmap[1][1].J, orch, orch.lmap[1][1].J * (1.0 - 0.01 * orch.lmap[1][1]._mask))


@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_fit_epoch_equals_the_train_step_loop(dynamics):
    x, y = _data()
    loop = _trainer(dynamics=dynamics, warmup_n_iter=1, train_clamped_n_iter=3, train_free_n_iter=3)
    fast = _trainer(dynamics=dynamics, warmup_n_iter=1, train_clamped_n_iter=3, train_free_n_iter=3)
    key = jax.random.key(9)
    for lo in range(0, x.shape[0], 16):
        key = loop.train_step(x[lo : lo + 16], y[lo : lo + 16], key)
        loop.orchestrator = _decay(loop.orchestrator)
    fast_key = fast.fit_epoch(x, y, jax.random.key(9), batch_size=16, post_update=_decay)
    assert_trees_equal(fast_key, key)
    assert_trees_equal(fast.orchestrator, loop.orchestrator)
    assert_trees_equal(fast.state, loop.state)
    assert_trees_equal(fast.ctx["optimizer_state"], loop.ctx["optimizer_state"])
    stacked = _trainer(dynamics=dynamics, warmup_n_iter=1, train_clamped_n_iter=3, train_free_n_iter=3)
    stacked.fit_epoch(x[:48].reshape(3, 16, 40), y[:48].reshape(3, 16, 10), jax.random.key(9))
    assert stacked.state[1].shape == (16, 96)


@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_fit_epoch_in_place_gives_the_same_model_and_frees_the_old_one(dynamics):
    x, y = _data()
    kept = _trainer(dynamics=dynamics, warmup_n_iter=1, train_clamped_n_iter=3, train_free_n_iter=3)
    donated = _trainer(dynamics=dynamics, warmup_n_iter=1, train_clamped_n_iter=3, train_free_n_iter=3)
    old_j = donated.orchestrator.lmap[1][1].J
    key = kept.fit_epoch(x, y, jax.random.key(9), batch_size=16, post_update=_decay)
    assert_trees_equal(donated.fit_epoch(x, y, jax.random.key(9), batch_size=16, post_update=_decay, donate=True), key)
    assert_trees_equal(donated.orchestrator, kept.orchestrator)
    assert_trees_equal(donated.state, kept.state)
    assert_trees_equal(donated.ctx["optimizer_state"], kept.ctx["optimizer_state"])
    assert old_j.is_deleted()  # its buffer became the new model's
    donated.fit_epoch(x, y, jax.random.key(9), batch_size=16, donate=True)  # and again, from the new one


def test_evaluate_equals_the_eval_step_loop():
    x, y = _data()
    tr = _trainer()
    tr.fit_epoch(x, y, jax.random.key(0), batch_size=16)
    key, accs, reps = jax.random.key(4), [], []
    for lo in range(0, x.shape[0], 16):
        key, m = tr.eval_step(x[lo : lo + 16], y[lo : lo + 16], key)
        accs.append(m["accuracy"])
        reps.append(tr.state[-2])
    loop_state = tr.state
    fast_key, metrics = tr.evaluate(x, y, jax.random.key(4), batch_size=16, return_representations=True)
    assert_trees_equal(fast_key, key)
    np.testing.assert_array_equal(metrics["batch_accuracy"], np.asarray(accs))
    np.testing.assert_array_equal(metrics["accuracy"], jnp.mean(jnp.array(accs)))
    np.testing.assert_array_equal(metrics["representations"], np.concatenate(reps))
    assert_trees_equal(tr.state, loop_state)
    assert metrics["representations"].shape == (x.shape[0], 96)


def test_contrastive_hebbian_update_is_clamped_minus_free():
    x, y = _data(16)
    tr = _trainer(ContrastiveHebbianTrainer, train_clamped_n_iter=3, train_free_n_iter=2, eval_n_iter=4)
    orch, key = tr.orchestrator, jax.random.key(1)
    s = tr.state.init(x, y)
    free, k = orch.run(s, key, 2, filter_messages="inference")
    k, ka = jax.random.split(k)
    u_free = orch.with_backend("jax").backward(free, ka)
    clamped, k = orch.run(free, k, 3, filter_messages="all")
    k, kb = jax.random.split(k)
    u_clamped = orch.with_backend("jax").backward(clamped, kb)
    tr.train_step(x, y, key)
    w, uc, uf = orch.lmap[1, 0].W, u_clamped.lmap[1, 0].W, u_free.lmap[1, 0].W
    np.testing.assert_allclose(tr.orchestrator.lmap[1, 0].W, w - (uc - uf), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(tr.state[1], clamped[1])
    _, m = tr.eval_step(x, y, key)
    assert 0.0 <= float(m["accuracy"]) <= 1.0


def test_trainer_errors_are_clear():
    tr = _trainer()
    x, y = _data(16)
    with pytest.raises(ValueError, match="non-finite"):
        tr.train_step(x.at[0, 0].set(jnp.nan), y, jax.random.key(0))
    with pytest.raises(ValueError, match="non-finite"):
        tr.fit_epoch(x.at[3, 1].set(jnp.inf), y, jax.random.key(0), batch_size=16)
    with pytest.raises(ValueError, match=r"y: expected shape \(B, 10\)"):
        tr.train_step(x, y[:, :9], jax.random.key(0))
    with pytest.raises(ValueError, match="batch axis"):
        tr.eval_step(x[0], y[0], jax.random.key(0))
    with pytest.raises(ValueError, match="batch size"):
        tr.train_step(x, y[:8], jax.random.key(0))
    with pytest.raises(ValueError, match="batch_size"):
        tr.fit_epoch(x, y, jax.random.key(0), batch_size=0)
    with pytest.raises(ValueError, match="stacked batches"):
        tr.fit_epoch(x, y, jax.random.key(0))
    with pytest.raises(ValueError, match="ctx missing"):
        DynamicalTrainer.validate_ctx({"optimizer": optax.sgd(1.0)})


def test_train_step_compiles_once():
    """The trainer passes a fixed state template, so later batches reuse the compiled step."""
    tr = _trainer()
    x, y = _data(32)
    key = tr.train_step(x[:16], y[:16], jax.random.key(0))
    compiles = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if "backend_compile" in event:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        key = tr.train_step(x[16:], y[16:], key)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == [] and tr.state[-2].shape == (16, 96)
