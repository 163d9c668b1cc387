"""dense_outer against its oracle: random shapes, zero error rows, non-finite inputs, transforms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

from darnax.ops import dense_outer, dense_outer_reference

from .strategies import dyadic, product_case


def _case(rng, batch, d, k, dtype):
    """Dyadic x and e (exact sums in any order), about half of e's rows all zero."""
    x, e = dyadic(rng, (batch, d), dtype), dyadic(rng, (batch, k), dtype)
    e[rng.random(batch) < 0.5] = 0
    return x, e


@given(product_case())
def test_matches_oracle_under_jit(case):
    rng, batch, d, k, _, dtype = case
    x, e = _case(rng, batch, d, k, dtype)
    got = jax.jit(dense_outer)(x, e)
    assert got.dtype == dtype and got.shape == (d, k)
    np.testing.assert_array_equal(got, dense_outer_reference(x, e))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_activity_reaches_the_output_through_zero_errors(value):
    """0 * inf is NaN: a sample whose error row is zero may be skipped only when x is finite."""
    rng = np.random.default_rng(0)
    x, e = _case(rng, 19, 37, 21, np.float32)
    e[4] = 0
    x[4, 30] = value
    with np.errstate(invalid="ignore"):
        want = np.asarray(x.T @ e)
    np.testing.assert_array_equal(dense_outer(x, e), want)
    assert np.isnan(want[30]).all()


def test_vmap_and_scan():
    rng = np.random.default_rng(1)
    xs = dyadic(rng, (3, 16, 50), np.float32)
    es = dyadic(rng, (3, 16, 10), np.float32)
    want = np.stack([x.T @ e for x, e in zip(xs, es)])
    np.testing.assert_array_equal(jax.vmap(dense_outer)(xs, es), want)
    shared_x = np.stack([xs[0].T @ e for e in es])
    np.testing.assert_array_equal(jax.vmap(dense_outer, in_axes=(None, 0))(xs[0], es), shared_x)

    def body(acc, xe):
        return acc + dense_outer(*xe), None

    total, _ = jax.lax.scan(body, jnp.zeros((50, 10), jnp.float32), (xs, es))
    np.testing.assert_array_equal(total, want.sum(0))


def test_every_row_block_and_column_tail():
    """Output rows in blocks and one at a time, columns in whole vectors and a partial one."""
    rng = np.random.default_rng(2)
    for batch, d, k in [(1, 1, 1), (16, 2000, 10), (5, 9, 17), (33, 15, 33), (64, 8, 64), (3, 0, 4), (0, 4, 3)]:
        x, e = _case(rng, batch, d, k, np.float64)
        np.testing.assert_array_equal(dense_outer(x, e), x.T @ e, err_msg=str((batch, d, k)))


def test_bad_inputs_are_named():
    x = np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="x: expected float32 or float64"):
        dense_outer(x.astype(np.int32), np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"e: expected shape \(4, \?\)"):
        dense_outer(x, np.ones((5, 2), np.float32))
    with pytest.raises(TypeError, match="one float dtype"):
        dense_outer(x, np.ones((4, 2), np.float64))
