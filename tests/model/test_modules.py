"""Each module's initialisation, forward and update against the formulas of SEMANTICS.md."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.modules.ferromagnetic import Ferromagnetic
from darnax.modules.fully_connected import (
    CEFullyConnected,
    FrozenFullyConnected,
    FrozenRescaledFullyConnected,
    FullyConnected,
    SparseFullyConnected,
)
from darnax.modules.input_output import OutputLayer
from darnax.modules.recurrent import RecurrentDiscrete, SparseRecurrentDiscrete
from darnax.ops import SparsityPattern, async_sign_sweeps, sync_sign_steps_reference

F32 = jnp.float32
KEY = jax.random.key(7)


def _batch(n=6, d=12, k=9, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sign(rng.standard_normal((n, d))).astype(np.float32)
    y = np.where(rng.random((n, k)) < 0.5, 1.0, -1.0).astype(np.float32)
    y_hat = (rng.standard_normal((n, k)) * 2).astype(np.float32)
    return x, y, y_hat


def _perceptron(x, y, y_hat, thr):
    n, d = x.shape
    mistake = (y * y_hat <= thr).astype(np.float64)
    return -(x.astype(np.float64).T @ (mistake * y)) / (math.sqrt(n) * math.sqrt(d))


def _zero_except(update, name):
    """The update's only inexact leaf is ``name`` (the hyper-parameters are static, not leaves)."""
    leaves = jax.tree.leaves(eqx.filter(update, eqx.is_inexact_array))
    assert len(leaves) == 1 and leaves[0] is getattr(update, name)


def test_fully_connected_init_forward_update():
    d, k = 12, 9
    strength = np.linspace(0.5, 2.0, k).astype(np.float32)
    m = FullyConnected(d, k, strength, 0.7, KEY, lr=0.3, weight_decay=0.2)
    expected = np.asarray(jax.random.normal(KEY, (d, k), F32)) * strength / math.sqrt(d)
    np.testing.assert_allclose(m.W, expected, rtol=1e-6)
    x, y, y_hat = _batch(d=d, k=k)
    np.testing.assert_allclose(m(jnp.asarray(x)), x @ np.asarray(m.W), rtol=1e-5, atol=1e-5)
    upd = m.backward(jnp.asarray(x), jnp.asarray(y), jnp.asarray(y_hat))
    wd = 0.2 / math.sqrt(d)
    want = 0.3 * _perceptron(x, y, y_hat, 0.7) + 0.3 * wd * np.asarray(m.W)
    np.testing.assert_allclose(upd.W, want, rtol=1e-5, atol=1e-6)
    _zero_except(upd, "W")
    assert upd.W.dtype == F32


@pytest.mark.parametrize("cls", [FullyConnected, CEFullyConnected])
def test_dense_update_backends_agree_and_only_compiled_calls_the_kernel(cls):
    """The readout's ``x^T e``: ``darnax.ops.dense_outer`` with the compiled backend on CPU,
    XLA's dot with ``"jax"``; the same update (ties and signs are exact in float32 here), and
    ``with_backend`` switches it."""
    d, k = 2000, 10
    m = cls(d, k, 1.0, 0.7, KEY, lr=0.3, weight_decay=0.2)
    assert m.backend == "compiled" and m.with_backend("jax").backend == "jax"
    x, y, y_hat = _batch(n=16, d=d, k=k)
    got = {
        b: m.with_backend(b).backward(jnp.asarray(x), jnp.asarray(y), jnp.asarray(y_hat)).W for b in ("compiled", "jax")
    }
    np.testing.assert_allclose(got["compiled"], got["jax"], rtol=1e-6, atol=1e-7)

    def jaxpr(module):
        return str(jax.make_jaxpr(lambda x: module.backward(x, jnp.asarray(y), jnp.asarray(y_hat)).W)(x))

    calls = {b: jaxpr(m.with_backend(b)) for b in ("compiled", "jax")}
    assert ("darnax_dense_outer" in calls["compiled"]) is (cls is FullyConnected)
    assert "darnax_dense_outer" not in calls["jax"]
    with pytest.raises(ValueError, match="backend"):
        FullyConnected(d, k, 1.0, 0.7, KEY, backend="cuda")


def test_dense_update_kernel_is_chosen_by_the_lowering_platform():
    """The compiled backend's readout update calls the CPU kernel in a program lowered for CPU
    and XLA's product in one lowered for CUDA (no darnax kernel there: lowering it would raise),
    whatever the process's default backend; no GPU needed to lower for one."""
    m = FullyConnected(64, 10, 1.0, 0.7, KEY)
    x, y, y_hat = (jnp.asarray(a) for a in _batch(n=16, d=64, k=10))
    traced = jax.jit(lambda x: m.backward(x, y, y_hat).W).trace(x)
    text = {p: traced.lower(lowering_platforms=(p,)).as_text() for p in ("cpu", "cuda")}
    assert text["cpu"].count("darnax_dense_outer") == 1 and "darnax" not in text["cuda"]


def test_threshold_ties_count_as_mistakes_and_gate():
    m = FullyConnected(2, 1, 1.0, 0.5, KEY)
    x = jnp.array([[1.0, -1.0], [1.0, 1.0]], F32)
    y = jnp.array([[1.0], [-1.0]], F32)
    y_hat = jnp.array([[0.5], [-0.6]], F32)  # first: y*y_hat == threshold (mistake); second: 0.6 > 0.5
    upd = m.backward(x, y, y_hat)
    np.testing.assert_allclose(upd.W, -np.array([[1.0], [-1.0]]) / 2.0, rtol=1e-6)
    gated = m.backward(x, y, y_hat, gate=jnp.array([[0.0], [1.0]], F32))
    np.testing.assert_array_equal(gated.W, np.zeros((2, 1)))


def test_frozen_modules_return_zeros():
    x, y, y_hat = _batch(d=4, k=3)
    for m in (FrozenFullyConnected(4, 3, 1.0, 0.0, KEY), FrozenRescaledFullyConnected(4, 3, 1.0, 0.0, KEY)):
        upd = m.backward(jnp.asarray(x), jnp.asarray(y), jnp.asarray(y_hat))
        assert all(not np.any(np.asarray(leaf)) for leaf in jax.tree.leaves(upd))


def test_frozen_rescaled_maps_labels():
    c, k = 10, 5
    m = FrozenRescaledFullyConnected(c, k, 1.3, 0.0, KEY)
    r = math.sqrt(c - 1)
    y = -np.ones((2, c), np.float32)
    y[0, 3] = y[1, 7] = 1.0
    mapped = np.where(y > 0, r / 2, -1 / r)
    np.testing.assert_allclose(m(jnp.asarray(y)), mapped @ np.asarray(m.W), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 classes"):
        FrozenRescaledFullyConnected(1, k, 1.0, 0.0, KEY)


def test_ce_fully_connected_update():
    d, k = 6, 4
    m = CEFullyConnected(d, k, 1.0, 0.0, KEY, lr=0.5, weight_decay=0.1)
    x, y, y_hat = _batch(n=5, d=d, k=k)
    p = np.exp(y_hat - y_hat.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    grad = x.T @ (p - (y + 1) / 2) / 5 / math.sqrt(d)
    want = 0.5 * grad + 0.5 * (0.1 / math.sqrt(d)) * np.asarray(m.W)
    upd = m.backward(jnp.asarray(x), jnp.asarray(y), jnp.asarray(y_hat))
    np.testing.assert_allclose(upd.W, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["compiled", "jax"])
def test_sparse_fully_connected_matches_dense_reference(backend):
    d, k, s = 12, 9, 0.6
    m = SparseFullyConnected(d, k, 2.0, 0.4, s, KEY, lr=0.2, weight_decay=0.3, backend=backend)
    key_w, key_mask = jax.random.split(KEY)
    mask = np.asarray(jax.random.bernoulli(key_mask, 1 - s, (d, k)))
    dense = np.asarray(jax.random.normal(key_w, (d, k), F32)) * 2.0 / math.sqrt(d * (1 - s)) * mask
    np.testing.assert_array_equal(m.pattern.to_dense_mask(), mask)
    np.testing.assert_allclose(m.to_dense(), dense, rtol=1e-6)
    assert m.W.shape == (mask.sum(),) and m._mask.shape == m.W.shape
    x, y, y_hat = _batch(d=d, k=k)
    np.testing.assert_allclose(m(jnp.asarray(x)), x @ dense, rtol=1e-5, atol=1e-5)
    lr = 0.2 * math.sqrt(0.1) / math.sqrt(1 - s)
    wd = 0.3 * math.sqrt(0.1) / math.sqrt((1 - s) * d)
    want = lr * _perceptron(x, y, y_hat, 0.4) * mask + lr * wd * dense
    upd = m.backward(jnp.asarray(x), jnp.asarray(y), jnp.asarray(y_hat))
    assert upd.W.shape == m.W.shape
    np.testing.assert_allclose(m.pattern.to_dense(upd.W), want, rtol=1e-5, atol=1e-6)
    _zero_except(upd, "W")
    assert SparseFullyConnected(d, k, 1.0, 0.0, s, KEY).lr == 1.0  # lr=None -> 1


def test_sparse_fully_connected_prebuilt_pattern():
    pattern = SparsityPattern.from_coo(np.array([0, 3, 5]), np.array([1, 1, 2]), (6, 4))
    m = SparseFullyConnected(6, 4, 1.0, 0.0, 0.5, KEY, pattern=pattern)
    assert m.pattern is pattern and m.W.shape == (3,)
    with pytest.raises(ValueError, match="pattern"):
        SparseFullyConnected(6, 5, 1.0, 0.0, 0.5, KEY, pattern=pattern)


def test_recurrent_discrete_init_forward_update():
    n = 10
    m = RecurrentDiscrete(n, 0.5, 0.3, KEY, strength=1.5, lr=0.4, weight_decay=0.2)
    want = np.asarray(jax.random.normal(KEY, (n, n), F32)) / math.sqrt(n) * 1.5
    np.fill_diagonal(want, 0.5)
    np.testing.assert_allclose(m.J, want, rtol=1e-6)
    x, _, y_hat = _batch(d=n, k=n)
    np.testing.assert_allclose(m(jnp.asarray(x)), x @ want, rtol=1e-5, atol=1e-5)
    h = jnp.asarray([[0.0, -1e-3, 2.0] + [1.0] * (n - 3)], F32)
    np.testing.assert_array_equal(m.activation(h)[0, :3], [1.0, -1.0, 1.0])  # ties to +1
    upd = m.backward(jnp.asarray(x), jnp.asarray(x), jnp.asarray(y_hat))
    off = 1 - np.eye(n)
    wd = 0.2 / math.sqrt(n)
    expected = 0.4 * _perceptron(x, x, y_hat, 0.3) * off + 0.4 * wd * want * off
    np.testing.assert_allclose(upd.J, expected, rtol=1e-5, atol=1e-6)
    assert not np.any(np.diag(np.asarray(upd.J))), "the diagonal J_D stays fixed"
    np.testing.assert_array_equal(m._mask, off)
    _zero_except(upd, "J")


@pytest.mark.parametrize("backend", ["compiled", "jax"])
def test_sparse_recurrent_matches_dense_reference(backend):
    n, s = 16, 0.7
    m = SparseRecurrentDiscrete(n, 0.95, s, 0.3, KEY, strength=2.0, lr=0.5, weight_decay=0.1, backend=backend)
    key_j, key_mask = jax.random.split(KEY)
    mask = np.asarray(jax.random.bernoulli(key_mask, 1 - s, (n, n))) & ~np.eye(n, dtype=bool)
    dense = np.asarray(jax.random.normal(key_j, (n, n), F32)) / math.sqrt(n * (1 - s)) * 2.0 * mask
    np.fill_diagonal(dense, 0.95)
    np.testing.assert_allclose(m.to_dense(), dense, rtol=1e-6)
    assert m.J.shape == (mask.sum(),) and m.J_D.shape == (n,)
    x, _, y_hat = _batch(d=n, k=n)
    np.testing.assert_allclose(m(jnp.asarray(x)), x @ dense, rtol=1e-5, atol=1e-5)
    upd = m.backward(jnp.asarray(x), jnp.asarray(x), jnp.asarray(y_hat))
    lr = 0.5 * math.sqrt(0.01) / math.sqrt(1 - s)
    wd = 0.1 * math.sqrt(0.01) / math.sqrt((1 - s) * n)
    off_dense = dense * (1 - np.eye(n))
    want = lr * _perceptron(x, x, y_hat, 0.3) * mask + lr * wd * off_dense
    np.testing.assert_allclose(m.pattern.to_dense(upd.J), want, rtol=1e-5, atol=1e-6)
    assert upd.J_D is not None and np.array_equal(upd.J_D, m.J_D), "J_D is static: no update"
    _zero_except(upd, "J")


def test_sparse_recurrent_phase_kernels_match_formula():
    n = 24
    m = SparseRecurrentDiscrete(n, 0.5, 0.6, 0.0, KEY)
    m = eqx.tree_at(lambda m: m.J, m, jnp.round(m.J * 64) / 64)  # exact sums
    rng = np.random.default_rng(1)
    h = jnp.asarray(np.round(rng.standard_normal((5, n)) * 64) / 64, F32)
    s0 = jnp.asarray(np.sign(rng.standard_normal((5, n))), F32)
    s = s0
    for _ in range(4):
        s = m.activation(h + m(s))
    got, fields = m.sync_steps(h, s0, 4)
    np.testing.assert_array_equal(got, s)
    np.testing.assert_array_equal(fields, h + m(s))  # the fields of the final states
    np.testing.assert_array_equal(got, sync_sign_steps_reference(h, m.J, m.pattern, m.J_D, s0, 4)[0])
    order = jnp.asarray(np.stack([rng.permutation(n) for _ in range(5)]), jnp.int32)
    a, fa = m.async_sweeps(h, s0, order, 2)
    b, fb = m.with_backend("jax").async_sweeps(h, s0, order, 2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(fa, h + m(a))


def test_sparse_recurrent_prebuilt_pattern_rejects_diagonal():
    with pytest.raises(ValueError, match="empty diagonal"):
        SparseRecurrentDiscrete(4, 0.5, 0.5, 0.0, KEY, pattern=SparsityPattern.from_mask(np.eye(4, dtype=bool)))


def test_large_sparse_layers_are_drawn_in_o_nnz(monkeypatch):
    """Above the dense-draw limit neither the mask nor the weights are drawn densely: the pattern
    comes from the O(nnz) sampler and the weights are one draw per stored entry."""
    import darnax.modules._weights as weights
    import darnax.ops.pattern_sampling as sampling

    small = SparseRecurrentDiscrete(40, 0.5, 0.9, 0.0, KEY)
    monkeypatch.setattr(sampling, "DENSE_DRAW_LIMIT", 100)
    monkeypatch.setattr(weights, "DENSE_DRAW_LIMIT", 100)
    big = SparseRecurrentDiscrete(40, 0.5, 0.9, 0.0, KEY)
    assert big.pattern != small.pattern and not np.any(big.pattern.row_idx == big.pattern.col_of_entry())
    key_j, _ = jax.random.split(KEY)
    scale = F32(1.0) / F32(math.sqrt(40 * (1 - 0.9)))
    np.testing.assert_array_equal(big.J, jax.random.normal(key_j, (big.pattern.nnz,), F32) * scale)
    adapter = SparseFullyConnected(50, 30, 2.0, 0.0, 0.8, KEY)
    scale = F32(2.0) / F32(math.sqrt(50 * (1 - 0.8)))
    np.testing.assert_array_equal(adapter.W, jax.random.normal(key_j, (adapter.pattern.nnz,), F32) * scale)


def test_ferromagnetic_and_output_layer():
    f = Ferromagnetic(4, jnp.array([1.0, 2.0, 3.0, 4.0], F32))
    x = jnp.ones((2, 4), F32)
    np.testing.assert_array_equal(f(x), np.tile([1.0, 2.0, 3.0, 4.0], (2, 1)))
    assert not np.any(np.asarray(f.backward(x, x, x).strength))
    out = OutputLayer()
    np.testing.assert_array_equal(out(x), np.zeros((2, 4)))
    h = out.reduce({0: x, 1: 2 * x})
    np.testing.assert_array_equal(out.activation(h), 3 * np.ones((2, 4)))
    assert out.backward(x, x, x) is out and jax.tree.leaves(out) == []


@pytest.mark.parametrize(
    "build",
    [
        lambda: FullyConnected(4, 3, jnp.ones(2), 0.0, KEY),
        lambda: FullyConnected(4, 3, 1.0, jnp.ones((3, 1)), KEY),
        lambda: RecurrentDiscrete(4, jnp.ones(5), 0.0, KEY),
        lambda: SparseRecurrentDiscrete(4, 0.5, 1.0, 0.0, KEY),
        lambda: SparseFullyConnected(4, 3, 1.0, 0.0, -0.1, KEY),
        lambda: Ferromagnetic(3, jnp.ones(4)),
        lambda: FullyConnected(0, 3, 1.0, 0.0, KEY),
        lambda: SparseFullyConnected(4, 3, 1.0, 0.0, 0.5, KEY, backend="gpu"),
    ],
)
def test_bad_hyper_parameters_raise(build):
    with pytest.raises(ValueError):
        build()


def test_dense_recurrent_async_step_has_no_n2_constants():
    """RecurrentDiscrete.async_sweeps hands J itself to a dense kernel: the jitted program holds no
    N^2 index constants (with the off-diagonal pattern it was 1.6 MB of text at N=200, 6.4 MB at 400)."""

    def hlo_chars(n):
        m = RecurrentDiscrete(n, 0.5, 0.0, KEY)
        batch = jax.ShapeDtypeStruct((4, n), F32)
        orders = jax.ShapeDtypeStruct((1, 2, n), jnp.int32)
        step = jax.jit(lambda m, h, s, o: m.async_sweeps(h, s, o, 2))
        return len(step.lower(m, batch, batch, orders).as_text())

    small, large = hlo_chars(200), hlo_chars(400)
    assert large < 1.05 * small and small < 20_000


@pytest.mark.parametrize("n", [1, 9, 40])
def test_dense_recurrent_async_sweeps_match_the_sparse_path(n):
    """RecurrentDiscrete.async_sweeps equals async_sign_sweeps on the off-diagonal
    pattern (the previous implementation) bit for bit with Gaussian J; with dyadic J the "jax"
    backend (the oracle) agrees as well."""
    m = RecurrentDiscrete(n, 0.3, 0.0, KEY)
    rng = np.random.default_rng(n)
    h = jnp.asarray(rng.standard_normal((5, n)), F32)
    s0 = jnp.asarray(np.where(rng.random((5, n)) < 0.5, -1.0, 1.0), F32)
    order = jnp.asarray(np.stack([rng.permutation(n) for _ in range(3)])[None], jnp.int32)
    p = SparsityPattern.from_mask(~np.eye(n, dtype=bool))
    want, _, fields = async_sign_sweeps(h, p.gather(m.J), p, jnp.diagonal(m.J), s0, order, 3)
    got, got_fields = m.async_sweeps(h, s0, order, 3)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_fields, fields)
    m = eqx.tree_at(lambda m: m.J, m, jnp.round(m.J * 64) / 64)  # exact sums: the oracle agrees too
    h = jnp.round(h * 64) / 64
    for a, b in zip(m.async_sweeps(h, s0, order, 3), m.with_backend("jax").async_sweeps(h, s0, order, 3)):
        np.testing.assert_array_equal(a, b)
