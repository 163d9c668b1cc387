"""SequentialOrchestrator: step/predict/backward against SEMANTICS.md, fused phases, async, errors."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darnax.layer_maps.sparse import LayerMap
from darnax.modules.fully_connected import FullyConnected
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import RecurrentDiscrete
from darnax.orchestrators.fused import is_all_zero, key_chain
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.states.sequential import SequentialState
from darnax.utils.perceptron_rule import perceptron_rule_backward

from ._nets import assert_trees_equal, dyadic_seed10, pm1_data

F32 = jnp.float32
KEYS = jax.random.split(jax.random.key(1), 5)


def _dense_net(dynamics="sync"):
    lm = LayerMap.from_dict(
        {
            1: {
                0: FullyConnected(6, 8, 1.0, 0.5, KEYS[0]),
                1: RecurrentDiscrete(8, 0.25, 0.5, KEYS[1]),
                2: FullyConnected(3, 8, 0.5, 0.0, KEYS[2]),
            },
            2: {1: FullyConnected(8, 3, 1.0, 1.0, KEYS[3]), 2: OutputLayer()},
        }
    )
    return SequentialState((6, 8, 3)), SequentialOrchestrator(lm, dynamics=dynamics)


def _sign(h):
    return np.where(h >= 0, 1.0, -1.0)


def test_step_predict_backward_follow_the_formulas():
    st, orch = _dense_net()
    xj, yj = pm1_data(KEYS[4], 4, 6, 3)
    s = st.init(xj, yj)
    x, y = np.asarray(xj, np.float64), np.asarray(yj, np.float64)
    lm = orch.lmap
    W10, J, W12, W21 = (np.asarray(m) for m in (lm[1, 0].W, lm[1, 1].J, lm[1, 2].W, lm[2, 1].W))
    s1 = np.zeros((4, 8))
    key = jax.random.key(0)
    new, _ = orch.step(s, key)  # filter "all", output skipped
    s1 = _sign(x @ W10 + s1 @ J + y @ W12)
    np.testing.assert_array_equal(new[1], s1)
    np.testing.assert_array_equal(new[2], y)
    inf, _ = orch.step(new, key, filter_messages="inference")
    s1b = _sign(x @ W10 + s1 @ J)
    np.testing.assert_array_equal(inf[1], s1b)
    full, _ = orch.step(new, key, skip_output_state=False)  # row 2 sees row 1's new state
    s1c = _sign(x @ W10 + s1 @ J + y @ W12)
    np.testing.assert_allclose(full[2], s1c @ W21, rtol=1e-5, atol=1e-5)
    pred, _ = orch.predict(inf, key)
    np.testing.assert_allclose(pred.readout, s1b @ W21, rtol=1e-5, atol=1e-5)
    upd = orch.backward(inf, key)
    h1 = x @ W10 + s1b @ J
    h2 = s1b @ W21
    h1, h2 = jnp.asarray(h1, F32), jnp.asarray(h2, F32)
    want = {
        (1, 0): perceptron_rule_backward(xj, inf[1], h1, lm[1, 0].threshold),
        (1, 2): perceptron_rule_backward(yj, inf[1], h1, lm[1, 2].threshold),
        (2, 1): perceptron_rule_backward(inf[1], yj, h2, lm[2, 1].threshold),
    }
    for (i, j), dw in want.items():
        np.testing.assert_allclose(upd.lmap[i, j].W, dw, rtol=1e-4, atol=1e-5)
    dj = np.asarray(perceptron_rule_backward(inf[1], inf[1], h1, lm[1, 1].threshold)) * (1 - np.eye(8))
    np.testing.assert_allclose(upd.lmap[1, 1].J, dj, rtol=1e-4, atol=1e-5)
    assert jax.tree.structure(upd) == jax.tree.structure(orch)


def test_step_inference_is_a_deprecated_alias():
    st, orch = _dense_net()
    s = st.init(*pm1_data(KEYS[4], 4, 6, 3))
    with pytest.warns(DeprecationWarning):
        a, ka = orch.step_inference(s, jax.random.key(3))
    b, kb = orch.step(s, jax.random.key(3), filter_messages="inference")
    assert_trees_equal((a, ka), (b, kb))


@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_run_equals_a_loop_of_steps_and_the_oracle(dynamics):
    """The fused phase (one kernel call, cached clamped messages) equals step-by-step and the jnp oracle."""
    st, orch = dyadic_seed10(dynamics=dynamics)
    x, y = pm1_data(KEYS[4], 16, 64, 5)
    s0 = st.init(x, y)
    key = jax.random.key(5)
    fused, kf = orch.run(s0, key, 4, filter_messages="all")
    loop, kl = s0, key
    for _ in range(4):
        loop, kl = orch.step(loop, kl, filter_messages="all")
    oracle, ko = orch.with_backend("jax").run(s0, key, 4, filter_messages="all")
    assert_trees_equal((fused, kf), (loop, kl))
    assert_trees_equal((fused, kf), (oracle, ko))
    again, _ = jax.jit(lambda s, k: orch.run(s, k, 4, filter_messages="all"))(s0, key)
    assert_trees_equal(fused, again)


@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_run_returns_the_fields_backward_would_compute(dynamics):
    """A fused phase returns its row's final fields; backward given them equals backward recomputing."""
    st, orch = dyadic_seed10(dynamics=dynamics)
    x, y = pm1_data(KEYS[4], 16, 64, 5)
    s0 = st.init(x, y)
    cache = orch.cache_messages(s0)
    key = jax.random.key(6)
    s1, k1 = orch.run(s0, key, 3, filter_messages="all", cache=cache)
    s2, k2, fields = orch.run(s1, k1, 3, filter_messages="inference", cache=cache, return_fields=True)
    assert_trees_equal((s2, k2), orch.run(s1, k1, 3, filter_messages="inference", cache=cache))
    assert list(fields) == [1]
    lm = orch.lmap
    np.testing.assert_array_equal(fields[1], lm[1, 0](s2[0]) + lm[1, 1](s2[1]))
    given = orch.backward(s2, k2, cache=cache, fields=fields)
    assert_trees_equal(given, orch.backward(s2, k2, cache=cache))
    assert_trees_equal(jax.tree.leaves(given), jax.tree.leaves(orch.with_backend("jax").backward(s2, k2)))
    with pytest.raises(ValueError, match=r"fields\[1\]: expected the shape of state\[1\]"):
        orch.backward(s2, k2, fields={1: fields[1][:3]})
    # the first step from zero, and phases that are not fused, give what they know
    s_first, _, first = orch.run(s0, key, 1, filter_messages="forward", cache=cache, return_fields=True)
    np.testing.assert_array_equal(first[1], lm[1, 0](s0[0]) + lm[1, 1](s_first[1]))
    assert orch.run(s0, key, 0, return_fields=True)[2] == {}
    assert orch.with_backend("jax").run(s0, key, 2, return_fields=True)[2] == {}


def test_async_dynamics_visit_units_one_at_a_time():
    st, orch = _dense_net("async")
    s = st.init(*pm1_data(KEYS[4], 4, 6, 3))
    a, _ = orch.step(s, jax.random.key(1))
    b, _ = orch.with_backend("jax").step(s, jax.random.key(1))
    assert_trees_equal(a, b)
    assert set(np.unique(np.asarray(a[1]))) <= {-1.0, 1.0}
    c, _ = orch.step(s, jax.random.key(2))  # another key, another order: same fixed-point family
    assert c[1].shape == a[1].shape


def test_state_and_cache_errors():
    st, orch = _dense_net()
    with pytest.raises(ValueError, match="layer 1 has shape"):
        orch.step(SequentialState((6, 9, 3)).init(np.ones((2, 6)), None), jax.random.key(0))
    s = st.init(np.ones((2, 6), np.float32))
    cache = orch.cache_messages(s)
    with pytest.raises(ValueError, match="MessageCache"):
        orch.run(s, jax.random.key(0), 1, skip_output_state=False, cache=cache)
    with pytest.raises(ValueError, match="filter"):
        orch.step(s, jax.random.key(0), filter_messages="left")
    with pytest.raises(TypeError):
        SequentialOrchestrator(layers={1: {1: OutputLayer()}})
    with pytest.raises(ValueError, match="dynamics"):
        SequentialOrchestrator(orch.lmap, dynamics="glauber")


def test_equinox_and_optax_interoperate(tmp_path):
    st, orch = dyadic_seed10()
    params, static = eqx.partition(orch, eqx.is_inexact_array)
    assert_trees_equal(eqx.combine(params, static), orch)
    path = tmp_path / "model.eqx"
    eqx.tree_serialise_leaves(path, orch)
    restored = eqx.tree_deserialise_leaves(path, dyadic_seed10()[1])
    assert_trees_equal(restored, orch)
    # seed 09: label tree with eqx.tree_at on lmap[i][j], optax.multi_transform
    labels = jax.tree.map(lambda _: "default", params, is_leaf=eqx.is_array)
    for (i, j), lab in {(1, 0): "w_in", (1, 1): "j", (2, 1): "w_out"}.items():
        labels = eqx.tree_at(
            lambda m, i=i, j=j: m.lmap[i][j],
            labels,
            replace=jax.tree.map(lambda _, lab=lab: lab, params.lmap[i][j], is_leaf=eqx.is_array),
        )
    opt = optax.multi_transform(
        {
            "default": optax.sgd(0.0),
            "w_in": optax.sgd(0.5),
            "j": optax.sgd(0.25),
            "w_out": optax.sgd(0.1, momentum=0.9),
        },
        labels,
    )
    opt_state = opt.init(params)
    x, y = pm1_data(KEYS[4], 16, 64, 5)
    s, key = orch.run(st.init(x, y), jax.random.key(0), 3)
    grads = eqx.filter(orch.backward(s, key), eqx.is_inexact_array)
    upd, _ = opt.update(grads, opt_state, params)
    new = eqx.apply_updates(orch, upd)
    np.testing.assert_allclose(new.lmap[1, 0].W, orch.lmap[1, 0].W - 0.5 * grads.lmap[1, 0].W, rtol=1e-6)
    np.testing.assert_array_equal(new.lmap[1, 1].J_D, orch.lmap[1, 1].J_D)
    np.testing.assert_array_equal(new.lmap[1, 2].W, orch.lmap[1, 2].W)


def test_sparse_parameters_stay_o_nnz():
    """No dense (d, K) array in the parameters, the optimiser state or the updates of sparse modules."""
    from ._nets import seed10_network

    _, orch = seed10_network(dim_data=100, dim_hidden=300, sparsity=0.95)
    opt = optax.sgd(1e-3, momentum=0.9)  # param-shaped state (optax.adam needs standard dtype promotion)
    opt_state = opt.init(eqx.filter(orch, eqx.is_inexact_array))
    s = SequentialState((100, 300, 10)).init(jnp.ones((2, 100), F32), -jnp.ones((2, 10), F32))
    upd = orch.backward(orch.run(s, jax.random.key(0), 2)[0], jax.random.key(1))
    for tree in (orch, upd, opt_state):
        shapes = {leaf.shape for leaf in jax.tree.leaves(tree)}
        assert (100, 300) not in shapes and (300, 300) not in shapes
    assert orch.lmap[1, 0].W.shape == (orch.lmap[1, 0].pattern.nnz,)
    assert orch.lmap[1, 1].J.shape == (orch.lmap[1, 1].pattern.nnz,)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_key_chain_equals_unrolled_splits(n):
    rng, rows = jax.random.key(3), []
    for _ in range(n):
        rng, row_key = jax.random.split(rng)
        rows.append(row_key)
    got_rng, got_rows = jax.jit(key_chain, static_argnums=1)(jax.random.key(3), n)
    assert jnp.array_equal(jax.random.key_data(got_rng), jax.random.key_data(rng))
    assert got_rows.shape == (n,)
    for got, want in zip(got_rows, rows, strict=True):
        assert jnp.array_equal(jax.random.key_data(got), jax.random.key_data(want))


@pytest.mark.parametrize(
    "s, want",
    [
        (np.zeros((16, 20)), True),
        (-np.zeros((3, 4)), True),  # -0.0 == 0
        (np.zeros((0, 5)), True),  # vacuously, as jnp.all
        (np.where(np.eye(4) > 0, 1e-30, 0.0), False),  # tiny but nonzero
        (np.array([[0.0, np.nan]]), False),
        (np.array([[0.0, -np.inf]]), False),
        (-np.ones((2, 3)), False),
    ],
)
def test_is_all_zero_is_jnp_all_equal_zero(s, want):
    """The phase's test for a state right after ``init``: ``jnp.all(s == 0)`` by another reduction."""
    s = jnp.asarray(s, F32)
    assert bool(jax.jit(is_all_zero)(s)) is want is bool(jnp.all(s == 0))


@pytest.mark.parametrize("shape", [(16, 2000), (64, 4096), (3, 777)])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e-30])
def test_is_all_zero_sees_one_odd_entry_in_a_large_state(shape, value):
    """One NaN, infinity or tiny value among zeros at a layer's size, anywhere. XLA:CPU's vectorised
    ``max`` of a large array drops NaN (a max-based test called such a state all zero)."""
    rng = np.random.default_rng(list(shape))  # reproducible positions (not hash(), salted per process)
    check = jax.jit(is_all_zero)
    for at in (0, rng.integers(1, np.prod(shape) - 1), np.prod(shape) - 1):
        s = np.zeros(shape, np.float32)
        s.flat[at] = value
        assert not bool(check(s)), (shape, value, at)
    assert bool(check(np.zeros(shape, np.float32)))
