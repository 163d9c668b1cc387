"""NaN or inf reaching the weights during training is an error naming the layer and the step."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.cli import main
from darnax.cli.config import merge, resolve
from darnax.cli.network import build_trainer
from darnax.modules._hyper import Constant
from darnax.modules.interfaces import replace_static
from darnax.trainers._base import _MAX_PENDING
from darnax.trainers._finite import _finite_by_reductions, finite_weights, weight_names
from darnax.utils._checks import NonFiniteWeightsError

CONFIG = merge(resolve(), {"model": {"dim_hidden": 24, "sparsity": 0.8}})


def data(n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((n, 64), np.float32)
    y = np.where(np.eye(10, dtype=bool)[np.arange(n) % 10], 1.0, -1.0).astype(np.float32)
    return x, y


def overflowing(trainer):
    """The trainer with W_out's learning rate so large that its weights overflow within a few steps."""
    w_out = replace_static(trainer.orchestrator.lmap[2, 1], _lr=Constant(np.float32(1e37)))  # a static hyper-parameter
    trainer.orchestrator = eqx.tree_at(lambda o: o.lmap[2, 1], trainer.orchestrator, w_out)
    return trainer


def first_bad_step(x, y, key) -> int:
    """The first step after which the overflowing trainer holds a non-finite weight, one train_step at a time."""
    trainer = overflowing(build_trainer(CONFIG, 64, 10))
    train = eqx.filter_jit(type(trainer)._checked_train)  # the step alone: no flag checks
    for step in range(x.shape[0] // 16):
        rng, orch, _, _, _ = train(
            x[16 * step : 16 * step + 16],
            y[16 * step : 16 * step + 16],
            key,
            trainer.orchestrator,
            trainer._template,
            trainer.ctx,
        )
        trainer.orchestrator, key = orch, rng
        if not bool(np.all(finite_weights(orch))):
            return step
    raise AssertionError("never overflowed")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_flags_see_one_bad_entry_anywhere_in_a_seed_size_model(value):
    """The seeds' network (784-2000-10: 157k and 40k couplings), one bad entry per array in turn,
    first, last or inside, under ``jit`` as in the training programs; large finite weights stay
    finite (no overflow)."""
    orch = build_trainer(merge(resolve(), {"model": {"dim_hidden": 2000}}), 784, 10).orchestrator
    flags = jax.jit(finite_weights)
    leaves, _ = jax.tree_util.tree_flatten(eqx.filter(orch, eqx.is_inexact_array))
    big = jax.tree_util.tree_map(lambda a: a * 0 + 3e38 if eqx.is_inexact_array(a) else a, orch)
    assert bool(np.all(flags(orch))) and bool(np.all(flags(big)))
    rng = np.random.default_rng(7)
    for leaf in leaves:
        for at in (0, int(rng.integers(1, leaf.size - 1)), leaf.size - 1):
            bad = jax.tree_util.tree_map(
                lambda a, leaf=leaf, at=at: a.reshape(-1).at[at].set(value).reshape(a.shape) if a is leaf else a, orch
            )
            assert int(np.sum(~np.asarray(flags(bad)))) == 1, (leaf.shape, at)


def test_names_and_flags_line_up():
    orch = build_trainer(CONFIG, 64, 10).orchestrator
    names = weight_names(orch)
    assert finite_weights(orch).shape == (len(names),) and bool(np.all(finite_weights(orch)))
    assert "layer (1, 1) SparseRecurrentDiscrete.J" in names and "layer (2, 1) FullyConnected.W" in names
    bad = eqx.tree_at(lambda o: o.lmap[1, 1].J, orch, orch.lmap[1, 1].J.at[0].set(jnp.inf))
    assert [n for n, ok in zip(names, np.asarray(finite_weights(bad))) if not ok] == [
        "layer (1, 1) SparseRecurrentDiscrete.J"
    ]


def test_fit_epoch_names_the_layer_and_the_exact_step():
    x, y = data(160)
    key = jax.random.key(0)
    step = first_bad_step(x, y, key)
    trainer = overflowing(build_trainer(CONFIG, 64, 10))
    with pytest.raises(
        NonFiniteWeightsError,
        match=rf"after training step {step} \(batch {step} of a fit_epoch call\): "
        r"layer \(2, 1\) FullyConnected\.W\b",
    ):
        trainer.fit_epoch(x, y, key, batch_size=16)
    assert not bool(np.all(finite_weights(trainer.orchestrator)))  # the bad model is kept for inspection


def test_donated_fit_epoch_names_the_layer_and_the_calls_steps():
    x, y = data(160)
    trainer = build_trainer(CONFIG, 64, 10)
    key = trainer.fit_epoch(x[:32], y[:32], jax.random.key(0), batch_size=16)  # steps 0-1
    overflowing(trainer)
    with pytest.raises(
        NonFiniteWeightsError,
        match=r"after training steps 2-11 \(batches 0-9 of a fit_epoch call\): "
        r"layer \(2, 1\) FullyConnected\.W",
    ):
        trainer.fit_epoch(x, y, key, batch_size=16, donate=True)


def test_train_step_and_nan_initial_weights():
    x, y = data(16)
    trainer = build_trainer(CONFIG, 64, 10)
    orch = trainer.orchestrator
    trainer.orchestrator = eqx.tree_at(lambda o: o.lmap[1, 0].W, orch, orch.lmap[1, 0].W.at[5].set(jnp.nan))
    message = r"after training step 0 \(a train_step call\): layer \(1, 0\) SparseFullyConnected\.W"
    key = jax.random.key(0)
    with pytest.raises(NonFiniteWeightsError, match=message):  # read by a later call, without waiting
        for _ in range(20):
            key = trainer.train_step(x, y, key)
    assert trainer.steps_done <= 1 + _MAX_PENDING
    for read in (
        lambda: trainer.evaluate(x, y, key, batch_size=16),
        trainer.check_weights,
        lambda: trainer.fit_epoch(x, y, key, batch_size=16),
        lambda: trainer.eval_step(x, y, key),
    ):
        step = trainer.steps_done
        trainer.train_step(x, y, key)
        with pytest.raises(NonFiniteWeightsError, match=f"after training step {step} "):
            read()  # these wait for the flag
    trainer.check_weights()  # each flag is read once


def test_darnax_train_stops_with_a_clear_error(tmp_path, capsys):
    config = tmp_path / "inf.toml"
    config.write_text(
        "[model]\ndim_hidden = 24\nsparsity = 0.8\n[optimizer]\nlearning_rate_wout = 1e37\n[run]\nepochs = 1\n"
    )
    assert main(["train", "--quiet", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert (
        "darnax: error: non-finite weights (NaN or inf) after training steps" in err
        and "layer (2, 1) FullyConnected.W" in err
    )
    assert not (tmp_path / "run" / "checkpoint.darnax").exists()


def test_flags_use_the_kernel_where_lowered_for_cpu_and_reductions_elsewhere():
    """One ``all_finite`` call in a program lowered for CPU, none in one lowered for CUDA (no darnax
    kernel there), whatever the process's default backend; the reductions agree with the kernel."""
    orch = build_trainer(CONFIG, 64, 10).orchestrator
    traced = jax.jit(finite_weights).trace(orch)
    text = {p: traced.lower(lowering_platforms=(p,)).as_text() for p in ("cpu", "cuda")}
    assert text["cpu"].count("darnax_all_finite") == 1 and "darnax" not in text["cuda"]
    bad = eqx.tree_at(lambda o: o.lmap[2, 1].W, orch, orch.lmap[2, 1].W.at[3, 4].set(jnp.nan))
    arrays = jax.tree_util.tree_leaves(eqx.filter(bad, eqx.is_inexact_array))
    np.testing.assert_array_equal(_finite_by_reductions(arrays), finite_weights(bad))
    assert not bool(np.all(finite_weights(bad)))
