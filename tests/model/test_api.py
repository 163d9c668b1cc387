"""The API JAX users expect: pytree reductions, couplings as the only trainable leaves (any Optax
optimiser, schedules), static hyper-parameters, and ``import darnax as dx``."""

from __future__ import annotations

import subprocess
import sys
from types import MappingProxyType

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import darnax as dx
from darnax.modules._hyper import Constant
from darnax.trainers._base import apply_optimizer

F32 = jnp.float32
KEY = jax.random.key(3)


#: ``name: (factory, names of its coupling arrays)`` for every module class (built inside the
#: tests: a sparse pattern alive at interpreter exit makes nanobind report a leak).
MODULES = {
    "FullyConnected": (lambda k: dx.FullyConnected(6, 5, 1.0, 0.5, k, lr=0.3, weight_decay=0.1), ["W"]),
    "FrozenFullyConnected": (lambda k: dx.FrozenFullyConnected(6, 5, 1.0, 0.5, k), ["W"]),
    "FrozenRescaledFullyConnected": (lambda k: dx.FrozenRescaledFullyConnected(3, 5, 1.0, 0.0, k), ["W"]),
    "CEFullyConnected": (lambda k: dx.CEFullyConnected(6, 5, 1.0, 0.0, k), ["W"]),
    "SparseFullyConnected": (
        lambda k: dx.SparseFullyConnected(6, 5, 1.0, 0.5, 0.5, k, lr=0.2, weight_decay=0.1),
        ["W"],
    ),
    "RecurrentDiscrete": (lambda k: dx.RecurrentDiscrete(5, 0.5, 0.5, k, lr=0.4, weight_decay=0.2), ["J"]),
    "SparseRecurrentDiscrete": (
        lambda k: dx.SparseRecurrentDiscrete(5, 0.5, 0.5, 0.5, k, lr=0.4, weight_decay=0.2),
        ["J"],
    ),
    "Ferromagnetic": (lambda k: dx.Ferromagnetic(5, 0.7), ["strength"]),  # its fixed coupling
    "OutputLayer": (lambda k: dx.OutputLayer(), []),
}


# --------------------------------------------------------------------------- reduce
@pytest.mark.parametrize("name", ["OutputLayer", "RecurrentDiscrete", "SparseRecurrentDiscrete"])
def test_reduce_sums_any_pytree_of_messages(name):
    layer = MODULES[name][0](KEY)
    a, b, c = (jnp.full((2, 4), v, F32) for v in (1.0, 2.0, 4.0))
    for h in (
        {0: a, 1: b, 2: c},
        [a, b, c],
        (a, (b, [c])),
        {"x": a, "y": {"z": (b, c)}},
        MappingProxyType({0: a, 5: (b, c)}),
    ):
        np.testing.assert_array_equal(layer.reduce(h), np.full((2, 4), 7.0))
    np.testing.assert_array_equal(layer.reduce(a), a)
    with pytest.raises(ValueError, match="empty"):
        layer.reduce([])


# --------------------------------------------------------------------------- trainable leaves
@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_couplings_are_the_only_inexact_leaves(name):
    make, names = MODULES[name]
    module = make(KEY)
    leaves = jax.tree.leaves(eqx.filter(module, eqx.is_inexact_array))
    assert [id(a) for a in leaves] == [id(getattr(module, n)) for n in names]
    x = jnp.ones((2, getattr(module, "in_features", 5)), F32)
    update = module.backward(x, jnp.ones((2, 5), F32), jnp.zeros((2, 5), F32))
    assert jax.tree.structure(update) == jax.tree.structure(module)  # same statics: Optax-compatible


def test_a_sparse_recurrent_layer_exposes_only_its_couplings():
    layer = dx.SparseRecurrentDiscrete(50, 0.5, 0.9, 1.0, KEY, lr=0.1, weight_decay=0.01)
    params = eqx.filter(layer, eqx.is_inexact_array)
    assert sum(a.size for a in jax.tree.leaves(params)) == layer.pattern.nnz == layer.J.size


def _network(dynamics="sync"):
    keys = jax.random.split(KEY, 4)
    lm = {
        1: {
            0: dx.SparseFullyConnected(8, 12, 1.0, 0.5, 0.5, keys[0], lr=0.5, weight_decay=0.1),
            1: dx.RecurrentDiscrete(12, 0.5, 0.25, keys[1], lr=0.5, weight_decay=0.1),
            2: dx.FrozenFullyConnected(3, 12, 0.5, 0.0, keys[2]),
        },
        2: {1: dx.FullyConnected(12, 3, 1.0, 1.0, keys[3], lr=0.25, weight_decay=0.1), 2: dx.OutputLayer()},
    }
    return dx.SequentialOrchestrator(dx.LayerMap.from_dict(lm), dynamics=dynamics), dx.SequentialState((8, 12, 3))


def _data(n=8):
    rng = np.random.default_rng(0)
    x = np.sign(rng.standard_normal((n, 8))).astype(np.float32)
    y = np.where(np.eye(3, dtype=bool)[rng.integers(0, 3, n)], 1.0, -1.0).astype(np.float32)
    return x, y


def _hyper(orch):
    """Every static hyper-parameter of the network, as arrays, by edge and name."""
    return {
        (e, n): np.asarray(getattr(m, n))
        for e, m in orch.lmap.edge_items()
        for n in ("strength", "threshold", "lr", "weight_decay", "J_D")
        if hasattr(m, n)
    }


@pytest.mark.parametrize(
    "optimizer",
    [
        optax.sgd(0.5),
        optax.adam(1e-2),
        optax.adamw(1e-2, weight_decay=0.5),
        optax.masked(optax.adamw(1e-2, weight_decay=0.5), lambda p: jax.tree.map(lambda _: True, p)),
    ],
)
def test_any_optax_optimiser_trains_the_couplings_only(optimizer):
    orch, state = _network()
    with jax.numpy_dtype_promotion("standard"):
        trainer = dx.DynamicalTrainer(
            orch, state, optimizer, optimizer.init(eqx.filter(orch, eqx.is_inexact_array)), 1, 3, 3, 3
        )
        trainer.train_step(*_data(), jax.random.key(1))
    after = trainer.orchestrator
    before, now = _hyper(orch), _hyper(after)
    assert before.keys() == now.keys() and all(np.array_equal(now[k], v) for k, v in before.items())
    assert not np.array_equal(after.lmap[1, 0].W, orch.lmap[1, 0].W)  # the couplings learn
    dense = after.lmap[1, 1]
    np.testing.assert_array_equal(np.diag(dense.to_dense()), np.full(12, 0.5, np.float32))  # J_D holds, adamw or not


def test_a_schedule_drives_the_local_updates():
    """``optax.sgd(schedule)`` moves each coupling by ``-schedule(t) * backward`` (the module's
    ``lr`` and decay already inside ``backward``): the optimiser's rate multiplies the module's."""
    orch, state = _network()
    schedule = optax.linear_schedule(1.0, 0.25, transition_steps=2)
    optimizer = optax.sgd(schedule)
    ctx = {"optimizer": optimizer, "optimizer_state": optimizer.init(eqx.filter(orch, eqx.is_inexact_array))}
    x, y = _data()
    s = state.init(jnp.asarray(x), jnp.asarray(y))
    s, _ = orch.run(s, jax.random.key(2), 3)
    for t in range(3):
        updates = orch.backward(s, jax.random.key(t))
        new, ctx["optimizer_state"] = apply_optimizer(orch, updates, ctx)
        for edge in ((1, 0), (1, 1), (2, 1)):
            name = "J" if edge == (1, 1) else "W"
            step = np.asarray(getattr(new.lmap[edge], name)) - np.asarray(getattr(orch.lmap[edge], name))
            np.testing.assert_allclose(
                step, -float(schedule(t)) * np.asarray(getattr(updates.lmap[edge], name)), rtol=1e-5, atol=1e-7
            )
        np.testing.assert_array_equal(new.lmap[1, 2].W, orch.lmap[1, 2].W)  # frozen: zero updates
        orch = new


# --------------------------------------------------------------------------- static hyper-parameters
def test_constant_is_hashable_immutable_and_compact():
    a, b = Constant(np.full(1000, 0.5, np.float32)), Constant(0.5 * np.ones(1000, np.float32))
    assert a == b and hash(a) == hash(b) and a.shape == (1000,)
    assert a._value.shape == ()  # a uniform vector is stored as one scalar
    np.testing.assert_array_equal(a.array, np.full(1000, 0.5, np.float32))
    c = Constant(np.arange(3.0, dtype=np.float32))
    assert (
        c != a
        and c.array.dtype == F32
        and "Constant([0.0, 1.0, 2.0]" in repr(c)
        and repr(a) == "Constant(0.5, shape=(1000,), dtype=float32)"
    )
    with pytest.raises(ValueError):
        c._value[0] = 1.0
    assert Constant(np.float32(np.nan)) == Constant(np.float32(np.nan))  # compared bit for bit


def test_hyper_parameters_are_compile_time_constants():
    traces = []

    @eqx.filter_jit
    def message(m, x):
        traces.append(1)
        return m.backward(x, jnp.ones((2, 5), F32), jnp.zeros((2, 5), F32)).W

    x = jnp.ones((2, 6), F32)
    m = dx.FullyConnected(6, 5, 1.0, 0.5, KEY)
    trained = eqx.apply_updates(m, jax.tree.map(jnp.ones_like, eqx.filter(m, eqx.is_inexact_array)))
    message(m, x), message(trained, x)
    assert len(traces) == 1  # new couplings: no retrace
    message(dx.FullyConnected(6, 5, 1.0, 0.25, KEY), x)
    assert len(traces) == 2  # a new threshold: a recompile


# --------------------------------------------------------------------------- names
def test_import_darnax_as_dx_gives_the_public_api():
    from darnax.layer_maps.sparse import LayerMap
    from darnax.modules.recurrent import SparseRecurrentDiscrete
    from darnax.ops.pattern import SparsityPattern
    from darnax.trainers.dynamical import DynamicalTrainer

    assert dx.LayerMap is LayerMap and dx.SparsityPattern is SparsityPattern
    assert dx.DynamicalTrainer is DynamicalTrainer and dx.SparseRecurrentDiscrete is SparseRecurrentDiscrete
    assert dx.modules.SparseRecurrentDiscrete is SparseRecurrentDiscrete and dx.Mnist is dx.datasets.Mnist
    for name in ("SequentialState", "SequentialOrchestrator", "OutputLayer", "FashionMnist", "Digits", "ops"):
        assert name in dx.__all__ and name in dir(dx)
    assert all(getattr(dx, name) is not None for name in dx.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dx.nope  # noqa: B018


def test_import_darnax_stays_cheap():
    code = "import sys, darnax; print(sorted(m for m in sys.modules if m.startswith(('darnax.', 'jax', 'equinox'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
