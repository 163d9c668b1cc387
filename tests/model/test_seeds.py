"""The tutorials in ../shared/seeds run end to end on this package (reduced sizes and epochs).

Each test keeps the seed's code (model building, label maps, decay, loops) and changes only
the data source (a slice of the real Fashion-MNIST read by ``_data.py`` instead of
``darnax.datasets``, or the seed's own synthetic prototypes for tutorial 06) and the sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optax
import pytest

from darnax.layer_maps.sparse import LayerMap
from darnax.modules.fully_connected import (
    FrozenFullyConnected,
    FrozenRescaledFullyConnected,
    FullyConnected,
    SparseFullyConnected,
)
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import RecurrentDiscrete, SparseRecurrentDiscrete
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.trainers.dynamical import DynamicalTrainer
from darnax.utils.typing import PyTree

from ._data import batches, fashion_mnist


# --------------------------------------------------------------------------- seed 06
@pytest.mark.filterwarnings("ignore:step_inference is deprecated:DeprecationWarning")
def test_seed06_simple_training_tutorial():
    """Tutorial 06 as written: eager (no jit) loops, optax.adam, prototype data (reduced)."""
    dim_data, num_data, num_labels, dim_hidden = 100, 480, 10, 128
    state = SequentialState((dim_data, dim_hidden, num_labels))
    keys = jax.random.split(jax.random.key(seed=44), num=5)
    layer_map = {
        1: {
            0: FullyConnected(in_features=dim_data, out_features=dim_hidden, strength=1.0, threshold=3.5, key=keys[0]),
            1: RecurrentDiscrete(features=dim_hidden, j_d=0.5, threshold=0.5, key=keys[1]),
            2: FrozenFullyConnected(
                in_features=num_labels, out_features=dim_hidden, strength=0.3, threshold=0.0, key=keys[2]
            ),
        },
        2: {
            1: FullyConnected(
                in_features=dim_hidden, out_features=num_labels, strength=1.0, threshold=3.5, key=keys[3]
            ),
            2: OutputLayer(),
        },
    }
    orchestrator = SequentialOrchestrator(layers=LayerMap.from_dict(layer_map))
    optimizer = optax.adam(5e-3)
    with jax.numpy_dtype_promotion("standard"):  # optax.adam's bias correction mixes dtypes
        opt_state = optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))

        def update(orchestrator, state, optimizer, optimizer_state, rng):
            grads = orchestrator.backward(state, rng=rng)
            params = eqx.filter(orchestrator, eqx.is_inexact_array)
            grads = eqx.filter(grads, eqx.is_inexact_array)
            updates, opt_state = optimizer.update(grads, optimizer_state, params=params)
            return eqx.apply_updates(orchestrator, updates), opt_state

        def train_step(orch, s, x, y, rng, *, opt_state, optimizer, t_train=3):
            s = s.init(x, y)
            for _ in range(t_train):
                s, rng = orch.step(s, rng=rng)
            for _ in range(t_train):
                s, rng = orch.step_inference(s, rng=rng)
            rng, update_key = jax.random.split(rng)
            orch, opt_state = update(orch, s, optimizer, opt_state, update_key)
            return orch, rng, opt_state

        def eval_step(orch, s, x, y, rng, *, t_eval=5):
            s = s.init(x, None)
            for _ in range(t_eval):
                s, rng = orch.step_inference(s, rng=rng)
            s, rng = orch.predict(s, rng)
            return {"acc": float(jnp.mean(jnp.argmax(y, -1) == jnp.argmax(s[-1], -1)))}, rng

        # PrototypeData of the seed: 10 prototypes in {-1, +1}^100, 30% bit flips.
        key_p, key_d = jax.random.split(jax.random.key(59))
        prototypes = jax.random.rademacher(key_p, (num_labels, dim_data), dtype=jnp.float32)
        labels = jnp.repeat(2 * jnp.eye(num_labels, dtype=jnp.float32) - 1, num_data // num_labels, axis=0)
        xs = jnp.repeat(prototypes, num_data // num_labels, axis=0)
        key_flip, key_perm = jax.random.split(key_d)
        xs = xs * (jax.random.bernoulli(key_flip, 0.7, xs.shape) * 2.0 - 1.0).astype(jnp.float32)
        perm = jax.random.permutation(key_perm, num_data)
        xs, labels = xs[perm], labels[perm]

        master_key = jax.random.key(59)
        for _epoch in range(2):
            for xb, yb in zip(jnp.array_split(xs, 30), jnp.array_split(labels, 30)):
                master_key, train_key = jax.random.split(master_key)
                orchestrator, master_key, opt_state = train_step(
                    orchestrator, state, xb, yb, rng=train_key, opt_state=opt_state, optimizer=optimizer, t_train=4
                )
        accs = []
        for xb, yb in zip(jnp.array_split(xs, 30), jnp.array_split(labels, 30)):
            master_key, step_key = jax.random.split(master_key)
            metrics, master_key = eval_step(orchestrator, state, xb, yb, rng=step_key, t_eval=5)
            accs.append(metrics["acc"])
    print("accuracy", np.mean(accs))
    assert np.mean(accs) > 0.6, np.mean(accs)


# --------------------------------------------------------------------------- seeds 09 / 10
PARAMS: dict[str, Any] = {
    "master_seed": 0,
    "epochs": 2,
    "model": {
        "kwargs": {
            "seed": 44,
            "dim_data": 784,
            "dim_hidden": 256,  # seed: 2000
            "num_labels": 10,
            "sparsity": 0.9,  # seed: 0.99 (a 256-unit layer would keep ~2.5 couplings per unit)
            "sparsity_win": 0.9,
            "strength_forth": 5.0,
            "strength_back": 1.3,
            "j_d": 0.95,
            "threshold_in": 1.78,
            "threshold_out": 7.0,
            "threshold_j": 1.78,
            "threshold_back": 0.0,
        }
    },
    "optimizer": {
        "learning_rate_win": 0.159,
        "learning_rate_j": 0.058,
        "learning_rate_wout": 0.17,
        "weight_decay_win": 0.01,
        "weight_decay_j": 0.00006,
        "weight_decay_wout": 0.02,
    },
    "trainer": {"kwargs": {"warmup_n_iter": 1, "train_clamped_n_iter": 5, "train_free_n_iter": 5, "eval_n_iter": 5}},
}


def build_model(
    seed,
    dim_data,
    dim_hidden,
    sparsity,
    sparsity_win,
    num_labels,
    strength_forth,
    strength_back,
    threshold_in,
    threshold_out,
    threshold_back,
    threshold_j,
    j_d,
    lr_win=None,
    lr_j=None,
    lr_wout=None,
    wd_win=None,
    wd_j=None,
    wd_wout=None,
):
    """Seeds 09 (no module learning rates) and 10 (module-internal lr and weight decay)."""
    internal = lr_win is not None
    state = SequentialState((dim_data, dim_hidden, num_labels))
    keys = jax.random.split(jax.random.key(seed), num=5)
    kw = lambda lr, wd: {"lr": lr, "weight_decay": wd} if internal else {}  # noqa: E731
    layer_map = {
        1: {
            0: SparseFullyConnected(
                in_features=dim_data,
                out_features=dim_hidden,
                strength=strength_forth,
                threshold=threshold_in,
                sparsity=sparsity_win,
                key=keys[0],
                **kw(lr_win, wd_win),
            ),
            1: SparseRecurrentDiscrete(
                features=dim_hidden, j_d=j_d, sparsity=sparsity, threshold=threshold_j, key=keys[1], **kw(lr_j, wd_j)
            ),
            2: FrozenRescaledFullyConnected(
                in_features=num_labels,
                out_features=dim_hidden,
                strength=strength_back,
                threshold=threshold_back,
                key=keys[2],
            ),
        },
        2: {
            1: FullyConnected(
                in_features=dim_hidden,
                out_features=num_labels,
                strength=1.0,
                threshold=threshold_out,
                key=keys[3],
                **kw(lr_wout, wd_wout),
            ),
            2: OutputLayer(),
        },
    }
    return state, SequentialOrchestrator(layers=LayerMap.from_dict(layer_map))


def make_lr_map_v2(model, overrides: Mapping[tuple[int, int], str] | None = None, default_label="default") -> PyTree:
    """Seed 09's label tree for optax.multi_transform (verbatim logic)."""
    params, _ = eqx.partition(model, eqx.is_inexact_array)

    def like(tree, value: str):
        return jtu.tree_map(lambda _: value, tree, is_leaf=eqx.is_array)

    labels = jtu.tree_map(lambda _: default_label, params, is_leaf=eqx.is_array)
    if overrides:
        for (i, j), label in overrides.items():
            labels = eqx.tree_at(lambda m: m.lmap[i][j], labels, replace=like(params.lmap[i][j], label))  # noqa: B023 - the seed's code
    return labels


def decay(orchestrator, config):
    """Seed 09's hand-written decay (verbatim logic: reads .W, .J and ._mask, writes with tree_at)."""
    new_orch = orchestrator
    dim_data = config["model"]["kwargs"]["dim_data"]
    dim_hidden = config["model"]["kwargs"]["dim_hidden"]
    W_in = jnp.asarray(new_orch.lmap[1][0].W)
    rescaling_win = (
        config["optimizer"]["weight_decay_win"]
        / (1 - config["model"]["kwargs"]["sparsity_win"]) ** 0.5
        * ((1 - 0.90) ** 0.5)
        * config["optimizer"]["learning_rate_win"]
        / (dim_data**0.5)
    )
    new_orch = eqx.tree_at(lambda o: o.lmap[1][0].W, new_orch, W_in * (1.0 - rescaling_win))
    J = jnp.asarray(new_orch.lmap[1][1].J)
    mask = jnp.asarray(new_orch.lmap[1][1]._mask)
    rescaling_j = (
        config["optimizer"]["weight_decay_j"]
        * config["optimizer"]["learning_rate_j"]
        / (1 - config["model"]["kwargs"]["sparsity"]) ** 0.5
        * ((1 - 0.90) ** 0.5)
        / (dim_hidden**0.5)
    )
    new_orch = eqx.tree_at(lambda o: o.lmap[1][1].J, new_orch, J * (1.0 - rescaling_j * mask))
    W_out = jnp.asarray(new_orch.lmap[2][1].W)
    rescaling_wout = (
        config["optimizer"]["weight_decay_wout"] * config["optimizer"]["learning_rate_wout"] / (dim_hidden**0.5)
    )
    return eqx.tree_at(lambda o: o.lmap[2][1].W, new_orch, W_out * (1.0 - rescaling_wout))


def _run_epochs(trainer, cfg, key, after_step=None):
    x_tr, y_tr, x_te, y_te = fashion_mnist(3000, 500)
    shuffle = np.random.default_rng(cfg["master_seed"])
    history = []
    for epoch in range(cfg["epochs"] + 1):
        if epoch:
            for xb, yb in batches(x_tr, y_tr, 16, shuffle):
                key = trainer.train_step(xb, yb, key)
                if after_step is not None:
                    trainer.orchestrator = after_step(trainer.orchestrator)
        accs = []
        for xb, yb in batches(x_te, y_te, 16):
            key, metrics = trainer.eval_step(xb, yb, key)
            accs.append(metrics["accuracy"])
        history.append(float(jnp.mean(jnp.array(accs))))
    reps = trainer.state[-2]  # the linear-probe features of the seeds
    assert reps.shape[1] == cfg["model"]["kwargs"]["dim_hidden"] and set(np.unique(np.asarray(reps))) <= {-1.0, 1.0}
    return history, key


def test_seed09_lr_maps_and_sparse_decay():
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PARAMS.items()}
    key = jax.random.key(cfg["master_seed"])
    state, orchestrator = build_model(**cfg["model"]["kwargs"])
    lr_map = make_lr_map_v2(orchestrator, overrides={(1, 0): "w_in", (1, 1): "j", (2, 1): "w_out"})
    sparsity, sparsity_win = cfg["model"]["kwargs"]["sparsity"], cfg["model"]["kwargs"]["sparsity_win"]
    lr_j = cfg["optimizer"]["learning_rate_j"] / jnp.sqrt(1.0 - sparsity)
    lr_win = cfg["optimizer"]["learning_rate_win"] / jnp.sqrt(1.0 - sparsity_win)
    optimizer = optax.multi_transform(
        {
            "default": optax.sgd(learning_rate=0.0),
            "w_in": optax.sgd(learning_rate=lr_win),
            "w_out": optax.sgd(learning_rate=cfg["optimizer"]["learning_rate_wout"]),
            "j": optax.sgd(learning_rate=lr_j),
        },
        lr_map,
    )
    opt_state = optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))
    trainer = DynamicalTrainer(orchestrator, state, optimizer, opt_state, **cfg["trainer"]["kwargs"])
    j_d = np.asarray(orchestrator.lmap[1][1].J_D)
    decayed = decay(orchestrator, cfg)
    assert decayed.lmap[1][1].J.shape == orchestrator.lmap[1][1].J.shape
    assert np.all(np.asarray(decayed.lmap[1][1].J) != np.asarray(orchestrator.lmap[1][1].J)), "every stored J decays"
    history, _ = _run_epochs(trainer, cfg, key, after_step=lambda o: decay(o, cfg))
    np.testing.assert_array_equal(trainer.orchestrator.lmap[1][1].J_D, j_d)  # the diagonal stays fixed
    print("accuracy per epoch", history)
    assert history[0] < 0.3 and history[-1] > 0.5, history


def test_seed10_module_internal_lr_and_decay():
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PARAMS.items()}
    key = jax.random.key(cfg["master_seed"])
    kwargs = dict(cfg["model"]["kwargs"])
    kwargs["lr_win"] = cfg["optimizer"]["learning_rate_win"] / jnp.sqrt(1.0 - kwargs["sparsity_win"])
    kwargs["lr_j"] = cfg["optimizer"]["learning_rate_j"] / jnp.sqrt(1.0 - kwargs["sparsity"])
    kwargs["lr_wout"] = cfg["optimizer"]["learning_rate_wout"]
    kwargs["wd_win"] = cfg["optimizer"]["weight_decay_win"]
    kwargs["wd_j"] = cfg["optimizer"]["weight_decay_j"]
    kwargs["wd_wout"] = cfg["optimizer"]["weight_decay_wout"]
    state, orchestrator = build_model(**kwargs)
    optimizer = optax.sgd(learning_rate=1.0)
    opt_state = optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array))
    trainer = DynamicalTrainer(orchestrator, state, optimizer, opt_state, **cfg["trainer"]["kwargs"])
    history, _ = _run_epochs(trainer, cfg, key)
    print("accuracy per epoch", history)
    assert history[0] < 0.3 and history[-1] > 0.5, history
