"""dense_async_sign_sweeps against its oracle and, bit for bit, async_sign_sweeps on the off-diagonal pattern."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import (
    SparsityPattern,
    async_sign_sweeps,
    dense_async_sign_sweeps,
    dense_async_sign_sweeps_reference,
    direct,
)

from .strategies import DTYPES, dyadic, layer_case, spins

ORDER_KINDS = st.sampled_from(["shared", "shared_per_sweep", "per_sample", "per_sweep"])


def draw_orders(rng, kind, batch, n, n_sweeps):
    """Visiting orders in each of the layouts the op accepts."""
    perms = lambda count: np.array([rng.permutation(n) for _ in range(count)], np.int32).reshape(count, n)  # noqa: E731
    return {
        "shared": lambda: perms(1)[0],
        "shared_per_sweep": lambda: perms(n_sweeps)[None],
        "per_sample": lambda: perms(batch),
        "per_sweep": lambda: perms(batch * n_sweeps).reshape(batch, n_sweeps, n),
    }[kind]()


def initial_states(rng, kind, shape, dtype):
    """±1 states, or real (dyadic) ones that the first visit of each unit makes ±1."""
    return spins(rng, shape, dtype) if kind == "spins" else dyadic(rng, shape, dtype)


def off_diagonal(n):
    return SparsityPattern.from_mask(~np.eye(n, dtype=bool))


@given(layer_case(), st.integers(0, 4), ORDER_KINDS, st.sampled_from(["spins", "real"]))
def test_matches_oracle_under_jit(case, n_sweeps, kind, start):
    """Dyadic inputs: every sum is exact, so kernel and oracle agree bit for bit."""
    rng, batch, n, _, dtype = case
    h, J = dyadic(rng, (batch, n), dtype), dyadic(rng, (n, n), dtype)
    s0 = initial_states(rng, start, (batch, n), dtype)
    order = draw_orders(rng, kind, batch, n, n_sweeps)
    got = jax.jit(dense_async_sign_sweeps, static_argnums=4)(h, J, s0, order, n_sweeps)
    want = dense_async_sign_sweeps_reference(h, J, s0, order, n_sweeps)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@given(
    st.integers(1, 40),
    st.integers(1, 35),
    DTYPES,
    st.integers(0, 5),
    ORDER_KINDS,
    st.sampled_from(["spins", "real"]),
    st.integers(0, 2**32 - 1),
)
def test_equals_sparse_kernel_on_the_off_diagonal_pattern(n, batch, dtype, n_sweeps, kind, start, seed):
    """Gaussian couplings (inexact sums): the same float operations in the same order as
    async_sign_sweeps (lanes included: shared orders, B >= 4), so the same bits."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((n, n)).astype(dtype)
    h = rng.standard_normal((batch, n)).astype(dtype)
    s0 = spins(rng, (batch, n), dtype) if start == "spins" else rng.standard_normal((batch, n)).astype(dtype)
    order = draw_orders(rng, kind, batch, n, n_sweeps)
    p = off_diagonal(n)
    got = dense_async_sign_sweeps(h, J, s0, order, n_sweeps)
    want = async_sign_sweeps(h, p.gather(jnp.asarray(J)), p, np.diagonal(J), s0, order, n_sweeps)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


@given(layer_case(max_n=20))
def test_vmap_and_scan(case):
    rng, batch, n, _, dtype = case
    h, J, s0 = dyadic(rng, (batch, n), dtype), dyadic(rng, (n, n), dtype), spins(rng, (batch, n), dtype)
    order = draw_orders(rng, "per_sample", batch, n, 2)
    hs, Js = np.stack([h, -h]), np.stack([J, J.T])
    # vmapped inputs fold into the kernel's batch; vmapped couplings map slice by slice
    got = jax.vmap(lambda h: dense_async_sign_sweeps(h, J, s0, order, 2))(hs)
    for g, hh in zip(zip(*got), hs):
        for a, b in zip(g, dense_async_sign_sweeps_reference(hh, J, s0, order, 2)):
            np.testing.assert_array_equal(a, b)
    got = jax.jit(jax.vmap(lambda J: dense_async_sign_sweeps(h, J, s0, order[:1], 2)))(Js)
    for g, JJ in zip(zip(*got), Js):
        for a, b in zip(g, dense_async_sign_sweeps_reference(h, JJ, s0, order[:1], 2)):
            np.testing.assert_array_equal(a, b)

    def body(s, o):
        s = dense_async_sign_sweeps(h, J, s, o, 1)[0]
        return s, s

    orders = draw_orders(rng, "shared_per_sweep", batch, n, 3)[0]  # (3, N): one per sweep
    final, _ = jax.lax.scan(body, jnp.asarray(s0), orders)
    np.testing.assert_array_equal(final, dense_async_sign_sweeps_reference(h, J, s0, orders[None], 3)[0])


def test_symmetric_couplings_reach_a_fixed_point_and_stop(rng):
    n = 60
    upper = np.triu(rng.standard_normal((n, n)), 1)
    J = upper + upper.T  # zero diagonal, symmetric: the sweeps descend an energy
    h, s0 = rng.standard_normal((5, n)), spins(rng, (5, n), np.float64)
    s, flips, fields = dense_async_sign_sweeps(h, J, s0, draw_orders(rng, "per_sample", 5, n, 1), 4 * n)
    flips = np.asarray(flips)
    assert np.all(flips[:, -1] == 0) and np.all(flips[:, 0] > 0)
    for row in flips:  # zero from the first sweep without a change on
        zero = np.flatnonzero(row == 0)
        assert np.all(row[zero[0] :] == 0)
    np.testing.assert_array_equal(s, np.where(h + s @ J >= 0, 1.0, -1.0))
    np.testing.assert_allclose(fields, h + s @ J, rtol=1e-12, atol=1e-12)


def test_one_unit_and_zero_sweeps():
    h, J, s0 = np.array([[0.3], [-0.3], [0.5]]), np.array([[0.5]]), np.array([[-1.0], [1.0], [-1.0]])
    s, flips, fields = dense_async_sign_sweeps(h, J, s0, np.zeros(1, np.int32), 1)
    np.testing.assert_array_equal(s, [[-1.0], [1.0], [1.0]])  # 0.5 + 0.5 * (-1) = 0: the tie goes to +1
    np.testing.assert_array_equal(flips, [[0], [0], [1]])
    np.testing.assert_array_equal(fields, h + s * 0.5)
    s, flips, fields = dense_async_sign_sweeps(h, J, s0, np.zeros(1, np.int32), 0)
    assert flips.shape == (3, 0)
    np.testing.assert_array_equal(s, s0)
    np.testing.assert_array_equal(fields, h + s0 * 0.5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_call_matches_op(rng, dtype):
    h, J, s0 = (
        rng.standard_normal((6, 30)).astype(dtype),
        rng.standard_normal((30, 30)).astype(dtype),
        spins(rng, (6, 30), dtype),
    )
    order = draw_orders(rng, "per_sweep", 6, 30, 3)
    for a, b in zip(direct.dense_async_sign_sweeps(h, J, s0, order, 3), dense_async_sign_sweeps(h, J, s0, order, 3)):
        np.testing.assert_array_equal(a, b)
