"""Reverse-mode gradients of sparse_matmul and sparse_outer against their dense oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads

from darnax.ops import sparse_matmul, sparse_matmul_reference, sparse_outer, sparse_outer_reference

from .strategies import DENSITIES, dyadic, product_case, random_pattern, spins


@st.composite
def small_case(draw: st.DrawFn):
    """(rng, batch, d, K, density) small enough for numerical differentiation."""
    d, k, batch = draw(st.integers(1, 12)), draw(st.integers(1, 12)), draw(st.integers(1, 5))
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))), batch, d, k, draw(st.sampled_from(DENSITIES))


@given(small_case())
def test_check_grads_first_and_second_order(case):
    """Numerical differences in float64 (order 2: reverse over reverse, the rules' own rules)."""
    rng, batch, d, k, density = case
    p = random_pattern(rng, (d, k), density)
    x, v, e = rng.standard_normal((batch, d)), rng.standard_normal(p.nnz), rng.standard_normal((batch, k))
    check_grads(lambda x, v: sparse_matmul(x, v, p), (x, v), order=2, modes=["rev"])
    check_grads(lambda x, e: sparse_outer(x, e, p), (x, e), order=2, modes=["rev"])


@given(product_case(max_batch=16))
def test_spins_and_dyadic_cotangents_give_the_oracles_gradients_exactly(case):
    """The cotangent ``c`` of ``sum(y * c)`` is ``c``: every gradient is a sum of exact products."""
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, v, c = spins(rng, (batch, d), dtype), dyadic(rng, (p.nnz,), dtype), dyadic(rng, (batch, k), dtype)
    loss = lambda f: lambda x, v: jnp.sum(f(x, v, p) * c)  # noqa: E731
    got = jax.jit(jax.grad(loss(sparse_matmul), (0, 1)))(x, v)
    want = jax.grad(loss(sparse_matmul_reference), (0, 1))(x, v)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, w)
    o_bar = dyadic(rng, (p.nnz,), dtype)
    outer_loss = lambda f: lambda x, e: jnp.sum(f(x, e, p) * o_bar)  # noqa: E731
    e = dyadic(rng, (batch, k), dtype)
    got = jax.grad(outer_loss(sparse_outer), (0, 1))(x, e)
    want = jax.grad(outer_loss(sparse_outer_reference), (0, 1))(x, e)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@given(product_case(max_batch=16))
def test_gaussian_gradients_within_float_tolerance(case):
    """The gradients of ``sum((x @ W) * c)`` (``c @ W^T`` and ``(x^T c)|_M``) lie within rtol=1e-5
    (float32; 1e-12 float64) of the float64 truth, relative to the sum of the magnitudes of their
    terms (cancellation makes plain rtol meaningless); the dense oracle's gradients within 2 rtol."""
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, v = rng.standard_normal((batch, d)).astype(dtype), rng.standard_normal(p.nnz).astype(dtype)
    c = rng.standard_normal((batch, k)).astype(dtype)
    loss = lambda f: lambda x, v: jnp.sum(f(x, v, p) * c)  # noqa: E731
    got = [np.asarray(g, np.float64) for g in jax.jit(jax.grad(loss(sparse_matmul), (0, 1)))(x, v)]
    oracle = [np.asarray(g, np.float64) for g in jax.grad(loss(sparse_matmul_reference), (0, 1))(x, v)]
    x64, c64, dense = x.astype(np.float64), c.astype(np.float64), np.asarray(p.to_dense(v), np.float64)
    exact = [c64 @ dense.T, np.asarray(p.gather(x64.T @ c64))]
    scale = [np.abs(c64) @ np.abs(dense.T), np.asarray(p.gather(np.abs(x64).T @ np.abs(c64)))]
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for g, o, want, s in zip(got, oracle, exact, scale):
        assert np.all(np.abs(g - want) <= rtol * s)
        assert np.all(np.abs(g - o) <= 2 * rtol * s)


@given(product_case(max_batch=4))
def test_per_example_gradients_under_vmap_and_a_scan(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    xs, v = spins(rng, (3, batch, d), dtype), dyadic(rng, (p.nnz,), dtype)
    c = dyadic(rng, (batch, k), dtype)

    def per_example(f):
        return jax.vmap(jax.grad(lambda v, x: jnp.sum(f(x, v, p) * c)), in_axes=(None, 0))(v, xs)

    def scanned(f):
        def loss(v):
            total, _ = jax.lax.scan(lambda t, x: (t + jnp.sum(f(x, v, p) * c), None), jnp.zeros((), dtype), xs)
            return total

        return jax.jit(jax.grad(loss))(v)

    per, total = per_example(sparse_matmul), scanned(sparse_matmul)
    np.testing.assert_array_equal(per, per_example(sparse_matmul_reference))
    np.testing.assert_array_equal(total, scanned(sparse_matmul_reference))
    np.testing.assert_array_equal(total, per.sum(0))


def test_pattern_takes_no_gradient_and_forward_mode_is_refused(rng):
    """The pattern is a leafless pytree: its "gradient" is the empty pytree. jvp is not supported."""
    p = random_pattern(rng, (6, 4), 0.5)
    x, v = rng.standard_normal((2, 6)), rng.standard_normal(p.nnz)
    gp = jax.grad(lambda x, v, p: jnp.sum(sparse_matmul(x, v, p)), argnums=2)(x, v, p)
    assert jax.tree_util.tree_leaves(gp) == []
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda v: sparse_matmul(x, v, p), (v,), (v,))
    with pytest.raises(TypeError, match="x: expected float32 or float64, got int32"):  # the op's own check
        jax.grad(lambda x: jnp.sum(sparse_outer(x, np.ones((2, 4)), p)), allow_int=True)(np.ones((2, 6), np.int32))
