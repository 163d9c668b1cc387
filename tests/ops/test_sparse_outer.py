"""sparse_outer against its dense oracle, eager, under jit, vmap and scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

from darnax.ops import direct, sparse_outer, sparse_outer_reference

from .strategies import dyadic, product_case, random_pattern, spins


@given(product_case(max_batch=256))
def test_spins_times_dyadic_errors_is_exact(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, e = spins(rng, (batch, d), dtype), dyadic(rng, (batch, k), dtype)
    out = jax.jit(sparse_outer)(x, e, p)  # the pattern is a leafless pytree: static by itself
    assert out.shape == (p.nnz,) and out.dtype == dtype
    np.testing.assert_array_equal(out, sparse_outer_reference(x, e, p))


@given(product_case(max_batch=256))
def test_gaussian_matches_float64_outer(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x, e = rng.standard_normal((batch, d)).astype(dtype), rng.standard_normal((batch, k)).astype(dtype)
    got = np.asarray(sparse_outer(x, e, p), np.float64)
    exact = (x.astype(np.float64).T @ e.astype(np.float64))[p.row_idx, p.col_of_entry()]
    bound = (np.abs(x).T.astype(np.float64) @ np.abs(e))[p.row_idx, p.col_of_entry()]
    eps = 1e-6 if dtype == np.float32 else 1e-14
    assert np.all(np.abs(got - exact) <= eps * batch * (bound + 1))


@given(product_case(max_batch=8))
def test_vmap_and_scan(case):
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    xs, es = spins(rng, (3, batch, d), dtype), dyadic(rng, (3, batch, k), dtype)
    want = np.stack([sparse_outer_reference(x, e, p) for x, e in zip(xs, es)])
    np.testing.assert_array_equal(jax.vmap(sparse_outer, in_axes=(0, 0, None))(xs, es, p), want)
    shared_x = jax.vmap(sparse_outer, in_axes=(None, 0, None))(xs[0], es, p)
    np.testing.assert_array_equal(shared_x, np.stack([sparse_outer_reference(xs[0], e, p) for e in es]))
    _, ys = jax.lax.scan(lambda c, xe: (c, sparse_outer(xe[0], xe[1], p)), jnp.zeros(()), (xs, es))
    np.testing.assert_array_equal(ys, want)


@given(product_case(max_batch=256))
def test_mostly_zero_errors(case):
    """Plasticity errors are mostly zeros: columns with at most two nonzero samples in a chunk of
    64 take a short path that must equal the full sum (shortcuts off) bit for bit, since every
    other product is a signed zero; the oracle agrees exactly where at most one is nonzero."""
    rng, batch, d, k, density, dtype = case
    p = random_pattern(rng, (d, k), density)
    x = rng.standard_normal((batch, d)).astype(dtype) * (rng.random((batch, d)) < 0.9)  # some x = 0
    e = rng.standard_normal((batch, k)).astype(dtype) * (rng.random((batch, k)) < rng.choice([0.01, 0.03, 0.1, 0.5]))
    e[rng.random(e.shape) < 0.05] = -0.0
    got, want = np.asarray(sparse_outer(x, e, p)), np.asarray(sparse_outer_reference(x, e, p))
    live = (e != 0).sum(0)[p.col_of_entry()]
    np.testing.assert_array_equal(got[live <= 1], want[live <= 1])
    np.testing.assert_allclose(got[live > 1], want[live > 1], rtol=1e-5, atol=1e-5)
    assert direct.set_sparse_outer_skipping(False)
    try:
        full = np.asarray(sparse_outer(x, e, p))
    finally:
        direct.set_sparse_outer_skipping(True)
    np.testing.assert_array_equal(got.view(np.uint8), full.view(np.uint8))  # -0 and +0 differ here


@pytest.mark.parametrize("batch", [1, 15, 16, 17, 33, 64, 65, 200, 256])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shortcuts_count_the_work_they_skip(batch, dtype):
    """sparse_outer_work: every (entry, sample) product is counted once, as computed or skipped;
    a sample is skipped where its error is zero in a column with at most two nonzero samples in
    its chunk of 64, and nothing is skipped with the shortcuts off or a non-finite x."""
    rng = np.random.default_rng(batch)
    p = random_pattern(rng, (70, 50), 0.2)
    x = rng.standard_normal((batch, 70)).astype(dtype)
    e = rng.standard_normal((batch, 50)).astype(dtype) * (rng.random((batch, 50)) < 0.02)
    per_column = np.diff(p.col_ptr)
    want_skipped = 0
    for c0 in range(0, batch, 64):
        live = (e[c0 : c0 + 64] != 0).sum(0)
        want_skipped += int((per_column * np.where(live <= 2, min(64, batch - c0) - live, 0)).sum())
    x_inf = x.copy()
    x_inf[-1, -1] = np.inf
    for on, x_in, skipped in ((True, x, want_skipped), (False, x, 0), (True, x_inf, 0)):
        direct.reset_sparse_outer_work()
        previous = direct.set_sparse_outer_skipping(on)
        try:
            with np.errstate(invalid="ignore"):
                direct.sparse_outer(x_in, e, p.col_ptr, p.row_idx)
        finally:
            direct.set_sparse_outer_skipping(previous)
        work = direct.sparse_outer_work()
        assert work["calls"] == 1 and work["seconds"] > 0
        assert (work["computed"] + work["skipped"], work["skipped"]) == (p.nnz * batch, skipped)
    assert direct.sparse_outer_work()["skipping"]


def test_non_finite_inputs_reach_every_entry_they_touch(rng):
    """0 * inf is NaN: an infinite input poisons its entries even where the error is zero."""
    p = random_pattern(rng, (30, 20), 0.3)
    x = rng.standard_normal((4, 30)).astype(np.float32)
    x[1, 3] = np.inf
    e = np.zeros((4, 20), np.float32)
    e[2, 5] = 1.0
    with np.errstate(invalid="ignore"):  # the oracle's matmul warns about inf * 0, as it should
        got, want = np.asarray(sparse_outer(x, e, p)), np.asarray(sparse_outer_reference(x, e, p))
    assert np.isnan(got[p.row_idx == 3]).all()
    np.testing.assert_array_equal(got, want)


def lane_order_outer(x: np.ndarray, e: np.ndarray, p) -> np.ndarray:
    """sparse_outer in the kernel's own order, in NumPy (elementwise IEEE sums, so bit for bit):
    samples in blocks of 16 lanes (missing ones zero), blocks in chunks of 4; in a chunk, each
    lane's products summed over its blocks in order, then the 16 lanes by the halving tree
    lane j + 8, + 4, + 2, + 1; the chunks added one by one to a running sum from +0."""
    blocks = -(-x.shape[0] // 16)
    pad = ((0, 16 * blocks - x.shape[0]), (0, 0))
    prods = (np.pad(x, pad)[:, p.row_idx] * np.pad(e, pad)[:, p.col_of_entry()]).reshape(blocks, 16, -1)
    acc = np.zeros(p.nnz, x.dtype)
    for c0 in range(0, blocks, 4):
        lanes = prods[c0]
        for block in prods[c0 + 1 : c0 + 4]:
            lanes = lanes + block
        for width in (8, 4, 2, 1):
            lanes = lanes[:width] + lanes[width:]
        acc = acc + lanes[0]
    return acc


@pytest.mark.parametrize("batch", [1, 5, 15, 16, 17, 33, 40, 64, 65, 100, 200, 256])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_sums_in_lane_order_bit_for_bit(batch, dtype):
    """Every batch size (a last block with lanes that hold no sample included), mostly-zero
    errors (short paths) and a non-finite input (no short paths) sum in the documented order."""
    rng = np.random.default_rng(batch)
    p = random_pattern(rng, (50, 40), 0.3)
    x = rng.standard_normal((batch, 50)).astype(dtype)
    e = rng.standard_normal((batch, 40)).astype(dtype) * (rng.random((batch, 40)) < 0.3)
    np.testing.assert_array_equal(sparse_outer(x, e, p), lane_order_outer(x, e, p))
    x[0, 7] = np.inf
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(sparse_outer(x, e, p), lane_order_outer(x, e, p))
