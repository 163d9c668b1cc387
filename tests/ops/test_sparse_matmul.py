"""sparse_matmul against its dense oracle, eager, under jit, vmap and scan."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given

from darnax.ops import sparse_matmul, sparse_matmul_reference

from .strategies import dyadic, product_case, random_pattern, spins


@given(product_case())
def test_spins_times_dyadic_weights_is_exact(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, v = spins(rng, (batch, d), dtype), dyadic(rng, (p.nnz,), dtype)
    out = sparse_matmul(x, v, p)
    assert out.shape == (batch, k) and out.dtype == dtype
    np.testing.assert_array_equal(out, sparse_matmul_reference(x, v, p))


@given(product_case())
def test_gaussian_matches_oracle_under_jit(case):
    """Float sums: both darnax and the oracle lie within rtol=1e-5 of the exact (float64) sum,
    relative to the sum of the magnitudes of its terms (cancellation makes plain rtol meaningless)."""
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x = rng.standard_normal((batch, d)).astype(dtype)
    v = rng.standard_normal(p.nnz).astype(dtype)
    got = np.asarray(jax.jit(sparse_matmul, static_argnums=2)(x, v, p), np.float64)
    dense = np.asarray(p.to_dense(v), np.float64)
    exact, scale = x.astype(np.float64) @ dense, np.abs(x.astype(np.float64)) @ np.abs(dense)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert np.all(np.abs(got - exact) <= rtol * scale)
    oracle = np.asarray(sparse_matmul_reference(x, v, p), np.float64)
    assert np.all(np.abs(got - oracle) <= 2 * rtol * scale)


@given(product_case(max_batch=8))
def test_vmap_over_inputs_folds_into_batch(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    xs, v = spins(rng, (3, batch, d), dtype), dyadic(rng, (p.nnz,), dtype)
    got = jax.vmap(sparse_matmul, in_axes=(0, None, None))(xs, v, p)
    np.testing.assert_array_equal(got, np.stack([sparse_matmul_reference(x, v, p) for x in xs]))


@given(product_case(max_batch=8))
def test_vmap_over_values_and_axis_one(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, vs = spins(rng, (batch, d), dtype), dyadic(rng, (2, p.nnz), dtype)
    got = jax.jit(jax.vmap(sparse_matmul, in_axes=(None, 0, None)), static_argnums=2)(x, vs, p)
    np.testing.assert_array_equal(got, np.stack([sparse_matmul_reference(x, v, p) for v in vs]))
    xt = np.swapaxes(spins(rng, (batch, 2, d), dtype), 0, 1)  # vmapped axis 1 of a (B, 2, d) array
    got = jax.vmap(sparse_matmul, in_axes=(1, None, None))(np.swapaxes(xt, 0, 1), vs[0], p)
    np.testing.assert_array_equal(got, np.stack([sparse_matmul_reference(x, vs[0], p) for x in xt]))


@given(product_case(max_batch=8))
def test_scan_over_steps(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    xs, v = spins(rng, (4, batch, d), dtype), dyadic(rng, (p.nnz,), dtype)

    def body(carry, x):
        y = sparse_matmul(x, v, p)
        return carry + y.sum(), y

    total, ys = jax.lax.scan(body, jnp.zeros((), dtype), xs)
    want = np.stack([sparse_matmul_reference(x, v, p) for x in xs])
    np.testing.assert_array_equal(ys, want)
    np.testing.assert_array_equal(total, want.sum())


def test_same_result_every_call(rng):
    p = random_pattern(rng, (300, 200), 0.1)
    x = rng.standard_normal((16, 300)).astype(np.float32)
    v = rng.standard_normal(p.nnz).astype(np.float32)
    first = np.asarray(sparse_matmul(x, v, p))
    for _ in range(3):
        np.testing.assert_array_equal(sparse_matmul(x, v, p), first)
