"""async_sign_sweeps and sync_sign_steps against their oracles and a plain Python loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import (
    SparsityPattern,
    async_sign_sweeps,
    async_sign_sweeps_reference,
    sync_sign_steps,
    sync_sign_steps_reference,
)

from .strategies import dyadic, layer_case, random_pattern, spins


def python_async(h, couplings, diag, s0, order, n_sweeps):
    """The rule read literally: one unit at a time, its field summed from scratch."""
    s = np.array(s0, np.float64)
    flips = np.zeros((s.shape[0], n_sweeps), np.int32)
    for b in range(s.shape[0]):
        for t in range(n_sweeps):
            for i in order[b]:
                field = h[b, i] + diag[i] * s[b, i] + sum(s[b, j] * couplings[j, i] for j in range(len(diag)))
                new = 1.0 if field >= 0 else -1.0
                flips[b, t] += new != s[b, i]
                s[b, i] = new
    return s, flips


def layer(rng, batch, n, density, dtype):
    p = random_pattern(rng, (n, n), density, zero_diagonal=rng.random() < 0.5)
    return (
        p,
        dyadic(rng, (batch, n), dtype),
        dyadic(rng, (p.nnz,), dtype),
        dyadic(rng, (n,), dtype),
        spins(rng, (batch, n), dtype),
    )


def orders(rng, batch, n):
    return np.array([rng.permutation(n) for _ in range(batch)], np.int32).reshape(batch, n)


@given(layer_case(max_n=12), st.integers(0, 3))
def test_async_matches_python_loop(case, n_sweeps):
    rng, batch, n, density, dtype = case
    p, h, v, diag, s0 = layer(rng, batch, n, density, dtype)
    order = orders(rng, batch, n)
    s, flips, fields = async_sign_sweeps(h, v, p, diag, s0, order, n_sweeps)
    couplings = np.asarray(p.to_dense(v)) + np.diag(diag)
    want_s, want_flips = python_async(h, couplings - np.diag(diag), diag, s0, order, n_sweeps)
    np.testing.assert_array_equal(s, want_s.astype(dtype))
    np.testing.assert_array_equal(flips, want_flips)
    np.testing.assert_array_equal(fields, (h + want_s @ couplings).astype(dtype))


@given(layer_case(), st.integers(0, 4), st.sampled_from(["shared", "per_sample", "per_sweep"]))
def test_async_matches_oracle_under_jit(case, n_sweeps, kind):
    rng, batch, n, density, dtype = case
    p, h, v, diag, s0 = layer(rng, batch, n, density, dtype)
    order = {
        "shared": lambda: orders(rng, 1, n)[0],
        "per_sample": lambda: orders(rng, batch, n),
        "per_sweep": lambda: np.stack([orders(rng, n_sweeps, n) for _ in range(batch)]),
    }[kind]()
    got = jax.jit(async_sign_sweeps, static_argnums=6)(h, v, p, diag, s0, order, n_sweeps)
    want = async_sign_sweeps_reference(h, v, p, diag, s0, order, n_sweeps)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@given(layer_case(), st.integers(0, 4))
def test_sync_matches_oracle_under_jit(case, n_steps):
    rng, batch, n, density, dtype = case
    p, h, v, diag, s0 = layer(rng, batch, n, density, dtype)
    got = jax.jit(sync_sign_steps, static_argnums=5)(h, v, p, diag, s0, n_steps)
    want = sync_sign_steps_reference(h, v, p, diag, s0, n_steps)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@given(layer_case(max_n=20))
def test_vmap_and_scan(case):
    rng, batch, n, density, dtype = case
    p, h, v, diag, s0 = layer(rng, batch, n, density, dtype)
    hs, vs = np.stack([h, -h]), np.stack([v, v[::-1]])
    order = orders(rng, batch, n)
    # vmapped inputs fold into the kernel's batch; vmapped weights map slice by slice
    got = jax.vmap(lambda h: async_sign_sweeps(h, v, p, diag, s0, order, 2))(hs)
    for g, hh in zip(zip(*got), hs):
        for a, b in zip(g, async_sign_sweeps_reference(hh, v, p, diag, s0, order, 2)):
            np.testing.assert_array_equal(a, b)
    got = jax.vmap(lambda v: sync_sign_steps(h, v, p, diag, s0, 2))(vs)
    for g, vv in zip(zip(*got), vs):
        for a, b in zip(g, sync_sign_steps_reference(h, vv, p, diag, s0, 2)):
            np.testing.assert_array_equal(a, b)

    def body(s, _):
        s = sync_sign_steps(h, v, p, diag, s, 1)[0]
        return s, s

    final, _ = jax.lax.scan(body, jnp.asarray(s0), None, length=3)
    np.testing.assert_array_equal(final, sync_sign_steps_reference(h, v, p, diag, s0, 3)[0])


def test_per_sweep_orders_equal_one_call_per_sweep(rng):
    """(B, n_sweeps, N) orders in one call = n calls of one sweep, each with its own order."""
    p, h, v, diag, s0 = layer(rng, 5, 40, 0.2, np.float32)
    per_sweep = np.stack([orders(rng, 4, 40) for _ in range(5)])  # (B, S, N)
    s = s0
    for t in range(4):
        s = async_sign_sweeps(h, v, p, diag, s, per_sweep[:, t], 1)[0]
    np.testing.assert_array_equal(async_sign_sweeps(h, v, p, diag, s0, per_sweep, 4)[0], s)


def test_one_unit_async_sweep_equals_sync_step(rng):
    """With the self term on the current state, a sweep of a lone unit is the synchronous rule."""
    p = SparsityPattern.from_mask(np.zeros((1, 1), bool))
    h, diag = np.array([[0.3], [-0.3], [0.5]]), np.array([0.5])
    s0 = np.array([[-1.0], [1.0], [-1.0]])
    a = async_sign_sweeps(h, np.zeros(0), p, diag, s0, np.zeros(1, np.int32), 1)[0]
    np.testing.assert_array_equal(a, sync_sign_steps(h, np.zeros(0), p, diag, s0, 1)[0])
    np.testing.assert_array_equal(a, [[-1.0], [1.0], [1.0]])  # 0.5 + 0.5 * (-1) = 0: the tie goes to +1


@given(st.integers(2, 60), st.integers(0, 2**32 - 1))
def test_symmetric_zero_diagonal_reaches_fixed_point(n, seed):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.3, 1)
    p = SparsityPattern.from_mask(upper | upper.T)
    weights = np.triu(rng.standard_normal((n, n)), 1)
    v = np.asarray(p.gather(jnp.asarray(weights + weights.T)))
    h, s0 = rng.standard_normal((4, n)), spins(rng, (4, n), np.float64)
    s, flips, _ = async_sign_sweeps(h, v, p, np.zeros(n), s0, orders(rng, 4, n), 4 * n)
    assert np.all(np.asarray(flips)[:, -1] == 0)
    field = h + s @ np.asarray(p.to_dense(jnp.asarray(v)))
    np.testing.assert_array_equal(s, np.where(field >= 0, 1.0, -1.0))  # a fixed point of the rule


def test_fixed_point_ends_the_call_early_with_zero_flips(rng):
    """Once a step (sweep) changes nothing, every later one reports 0 and states stay put."""
    p, h, v, diag, s0 = layer(rng, 6, 50, 0.1, np.float64)
    s_fixed = np.asarray(sync_sign_steps(h, v, p, np.abs(diag), s0, 200)[0])
    flips = np.asarray(sync_sign_steps(h, v, p, np.abs(diag), s_fixed, 7)[1])
    settled = np.all(flips[:, :1] == 0, axis=1)
    assert np.all(flips[settled] == 0)
    order = orders(rng, 6, 50)
    s1, f1, _ = async_sign_sweeps(h, v, p, diag, s0, order, 40)
    f1 = np.asarray(f1)
    for row in f1:
        zero = np.flatnonzero(row == 0)
        if zero.size:
            assert np.all(row[zero[0] :] == 0)
    np.testing.assert_array_equal(s1, async_sign_sweeps_reference(h, v, p, diag, s0, order, 40)[0])


def test_deterministic_across_calls(rng):
    p, h, v, diag, s0 = layer(rng, 16, 300, 0.05, np.float32)
    order = orders(rng, 16, 300)
    first = [np.asarray(a) for a in async_sign_sweeps(h, v, p, diag, s0, order, 3)]
    for _ in range(3):
        for a, b in zip(async_sign_sweeps(h, v, p, diag, s0, order, 3), first):
            np.testing.assert_array_equal(a, b)


def test_shared_orders_under_vmap(rng):
    """A (1, N) order shared by the batch stays shared under vmap, mapped or not."""
    p, h, v, diag, s0 = layer(rng, 5, 30, 0.2, np.float32)
    order = orders(rng, 1, 30)
    hs = np.stack([h, -h])
    got = jax.vmap(lambda h: async_sign_sweeps(h, v, p, diag, s0, order, 2))(hs)
    for g, hh in zip(zip(*got), hs):
        for a, b in zip(g, async_sign_sweeps_reference(hh, v, p, diag, s0, order, 2)):
            np.testing.assert_array_equal(a, b)
    mapped = np.stack([orders(rng, 1, 30), orders(rng, 1, 30)])  # (2, 1, N)
    got = jax.vmap(lambda o: async_sign_sweeps(h, v, p, diag, s0, o, 2))(mapped)
    for g, o in zip(zip(*got), mapped):
        for a, b in zip(g, async_sign_sweeps_reference(h, v, p, diag, s0, o, 2)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [1, 5, 15, 16, 17, 21, 33])
def test_lane_kernels_equal_one_sample_kernels(batch):
    """Batches run 16 samples at a time in vector lanes (shared orders for async), a last block of
    fewer than 4 samples one sample at a time; with Gaussian, non-dyadic couplings every output
    still equals the one-sample calls bit for bit, whatever the batch size."""
    rng = np.random.default_rng(batch)
    n = 300
    p = random_pattern(rng, (n, n), 0.05, zero_diagonal=True)
    h = rng.standard_normal((batch, n)).astype(np.float32)
    v = rng.standard_normal(p.nnz).astype(np.float32)
    diag = rng.standard_normal(n).astype(np.float32) / 4
    s0 = spins(rng, (batch, n), np.float32)
    order = np.stack([orders(rng, 1, n)[0] for _ in range(3)])[None]  # (1, 3, N)
    lanes = [async_sign_sweeps(h, v, p, diag, s0, order, 3), sync_sign_steps(h, v, p, diag, s0, 4)]
    for b in range(batch):
        one = [
            async_sign_sweeps(h[b : b + 1], v, p, diag, s0[b : b + 1], order, 3),
            sync_sign_steps(h[b : b + 1], v, p, diag, s0[b : b + 1], 4),
        ]
        for got, want in zip(lanes, one):
            for a, w in zip(got, want):
                np.testing.assert_array_equal(np.asarray(a)[b : b + 1], w)


@pytest.mark.parametrize("batch", [1, 5, 15, 16, 17, 33])
@pytest.mark.parametrize("kind", ["shared", "per_sample"])
def test_batches_with_a_partial_lane_block_match_the_oracles(batch, kind):
    """A last lane block with lanes that hold no sample (B not a multiple of 16) changes nothing."""
    rng = np.random.default_rng(batch)
    p, h, v, diag, s0 = layer(rng, batch, 24, 0.3, np.float64)
    order = orders(rng, 1, 24)[0] if kind == "shared" else orders(rng, batch, 24)
    for got, want in zip(
        async_sign_sweeps(h, v, p, diag, s0, order, 3),
        async_sign_sweeps_reference(h, v, p, diag, s0, order, 3),
        strict=True,
    ):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(
        sync_sign_steps(h, v, p, diag, s0, 3), sync_sign_steps_reference(h, v, p, diag, s0, 3), strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("batch", [4, 16, 17, 33])
def test_sync_steps_near_a_fixed_point_decide_only_units_that_can_change(batch):
    """Few flips per step (as in training): after the first step the lane kernel decides only the
    units that flipped (a negative self coupling flips some back) and those their rows reach;
    the outputs equal the oracle's and the one-sample kernel's bit for bit, flip counts included."""
    rng = np.random.default_rng(batch)
    n = 400
    p = random_pattern(rng, (n, n), 0.02, zero_diagonal=True)
    h = 4 * dyadic(rng, (batch, n), np.float32)  # a strong external field, as the input's in training
    v = dyadic(rng, (p.nnz,), np.float32)
    diag = np.abs(dyadic(rng, (n,), np.float32))
    diag[rng.choice(n, 3, replace=False)] = -64  # 3 units whose own term flips them at every step
    s0 = np.asarray(sync_sign_steps_reference(h, v, p, diag, spins(rng, (batch, n), np.float32), 30)[0])
    got = jax.jit(sync_sign_steps, static_argnums=5)(h, v, p, diag, s0, 6)
    flips = np.asarray(got[1])
    assert flips.min() >= 3 and flips.max() < n // 20  # a few flips in every step
    for a, b in zip(got, sync_sign_steps_reference(h, v, p, diag, s0, 6), strict=True):
        np.testing.assert_array_equal(a, b)
    for b in range(0, batch, 7):
        for a, w in zip(got, sync_sign_steps(h[b : b + 1], v, p, diag, s0[b : b + 1], 6), strict=True):
            np.testing.assert_array_equal(np.asarray(a)[b : b + 1], w)


@pytest.mark.parametrize("n, fan_in", [(64, 63), (8192, 3)])
def test_sync_steps_where_every_unit_flips_read_the_right_couplings(n, fan_in):
    """Negative couplings and uniform states: every unit flips at every step, so the pushes pass
    the point where the kernel switches from reading couplings through csr_pos to a row-ordered
    copy (N rows while the couplings and fields stay in cache, as at 64 units; N / 8 beyond, as at
    8,192 units). The final fields, exact dyadic sums of the couplings, match SciPy's product."""
    scipy_sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(n)
    p = SparsityPattern.fixed_fan_in(jax.random.key(n), (n, n), fan_in, zero_diagonal=True)
    v = -np.abs(dyadic(rng, (p.nnz,), np.float32)) - 0.125
    batch, n_steps = 17, 4
    sign = np.where(np.arange(batch) % 3 == 0, -1.0, 1.0).astype(np.float32)
    s0 = np.repeat(sign[:, None], n, axis=1)
    h, diag = np.zeros((batch, n), np.float32), np.zeros(n, np.float32)
    s, flips, fields = sync_sign_steps(h, v, p, diag, s0, n_steps)
    np.testing.assert_array_equal(flips, np.full((batch, n_steps), n))
    np.testing.assert_array_equal(s, s0)  # an even number of steps: back to the start
    w = scipy_sparse.csc_matrix((v, p.row_idx, p.col_ptr), shape=(n, n))
    np.testing.assert_array_equal(fields, (w.T @ s0.T).T)


@given(layer_case(), st.integers(0, 4), st.booleans())
def test_sync_from_all_zero_states_matches_oracle(case, n_steps, one_set):
    """A fresh state (all zeros, the kernel's own first step) and a state of zeros but its last
    entry (which must not be taken for a fresh one), under ``jit``, equal the oracle bit for bit."""
    rng, batch, n, density, dtype = case
    p, h, v, diag, _ = layer(rng, batch, n, density, dtype)
    s0 = np.zeros((batch, n), dtype)
    if one_set:
        s0[-1, -1] = 1
    got = jax.jit(sync_sign_steps, static_argnums=5)(h, v, p, diag, s0, n_steps)
    want = sync_sign_steps_reference(h, v, p, diag, s0, n_steps)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [1, 16, 19])
@pytest.mark.parametrize("n_steps", [1, 2, 5])
def test_sync_from_all_zero_states_is_sign_of_h_then_the_other_steps(batch, n_steps):
    """From all zeros the first step is ``sign(h_ext)`` (ties to +1, N flips per sample) and the
    other steps start from it with fields summed from those states: bit for bit the call from
    ``sign(h_ext)``, with Gaussian values where pushing every row in float64 would round
    otherwise, and a NaN field deciding -1 as in a step."""
    rng = np.random.default_rng(batch * 10 + n_steps)
    n = 2000
    p = SparsityPattern.fixed_fan_in(jax.random.key(n_steps), (n, n), 20, zero_diagonal=True)
    h = rng.standard_normal((batch, n)).astype(np.float32)
    h[0, :3] = [0.0, -0.0, np.nan]
    v = rng.standard_normal(p.nnz).astype(np.float32) / 4
    diag = np.full(n, 0.5, np.float32)
    s, flips, fields = sync_sign_steps(h, v, p, diag, np.zeros((batch, n), np.float32), n_steps)
    first = np.where(h >= 0, 1.0, -1.0).astype(np.float32)
    np.testing.assert_array_equal(first[0, :3], [1, 1, -1])
    want_s, want_flips, want_fields = sync_sign_steps(h, v, p, diag, first, n_steps - 1)
    np.testing.assert_array_equal(s, want_s)
    np.testing.assert_array_equal(flips[:, 0], n)
    np.testing.assert_array_equal(flips[:, 1:], want_flips)
    np.testing.assert_array_equal(fields, want_fields)
