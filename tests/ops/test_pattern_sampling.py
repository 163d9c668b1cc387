"""Pattern samplers: the dense draw up to DENSE_DRAW_LIMIT, O(nnz) sampling above it, errors."""

import itertools
import re
import tracemalloc

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from darnax.ops import SparsityPattern, pattern_sampling
from darnax.ops.pattern_sampling import bernoulli_columns, fixed_fan_in_columns

P_MIN = 1e-4  # smallest p-value the statistical tests accept; their keys are fixed, so they are deterministic


def sparse_bernoulli(key, shape, density, *, zero_diagonal=False):
    """``bernoulli_columns`` forced onto its O(nnz) sampler, whatever the shape."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pattern_sampling, "DENSE_DRAW_LIMIT", -1)
        return bernoulli_columns(key, shape, density, zero_diagonal=zero_diagonal)


def to_mask(shape, pattern, zero_diagonal=False):
    """Dense mask of a sampled ``(col_ptr, row_idx)``, once its dtypes, structure and diagonal are checked."""
    col_ptr, row_idx = pattern
    assert col_ptr.dtype == np.int32 and row_idx.dtype == np.int32
    mask = SparsityPattern(shape, col_ptr, row_idx).to_dense_mask()  # validates sorted distinct rows in range
    assert not (zero_diagonal and np.diagonal(mask).any())
    return mask


def dense_reference(key, shape, density, zero_diagonal):
    """What ``SparsityPattern.random`` stores: the nonzeros of ``jax.random.bernoulli``, column by column."""
    mask = np.asarray(jax.random.bernoulli(key, density, shape))
    if zero_diagonal:
        mask = mask & ~np.eye(*shape, dtype=bool)
    col_ptr = np.concatenate([[0], np.cumsum(mask.sum(axis=0))])
    row_idx = [np.flatnonzero(mask[:, k]) for k in range(shape[1])]
    return col_ptr, np.concatenate([np.zeros(0, int), *row_idx])


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def dispersion_pvalue(observed, expected, variance, df):
    """Two-sided: ``sum((observed - expected)^2 / variance)`` against chi2(df), too spread or too even."""
    stat = float(np.sum((np.asarray(observed, float) - expected) ** 2 / variance))
    return 2 * min(stats.chi2.sf(stat, df), stats.chi2.cdf(stat, df))


def subset_counts(mask):
    """How many columns of a ``(d, K)`` mask hold each subset of rows, subsets as bit patterns."""
    return np.bincount(mask.T @ (1 << np.arange(mask.shape[0])), minlength=1 << mask.shape[0])


# ---- up to the limit: exactly the dense draw ------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "density", "zero_diagonal", "key", "x64"),
    [
        ((40, 30), 0.3, False, jax.random.key(3), True),
        ((40, 30), 0.3, False, jax.random.key(3), False),  # the reference draws float32 uniforms then
        ((30, 30), 0.5, True, jax.random.key(0), True),
        ((30, 30), 0.5, False, jax.random.key(0), True),
        ((30, 30), 0.05, True, jax.random.key(11), False),
        ((30, 30), 1.0, True, jax.random.key(2), True),
        ((30, 30), 0.0, False, jax.random.key(2), True),
        ((17, 64), 0.9, False, jax.random.PRNGKey(7), True),  # raw uint32 key
        ((1, 1), 1.0, True, jax.random.key(1), True),
        ((0, 5), 0.5, False, jax.random.key(1), True),
        ((5, 0), 0.5, False, jax.random.key(1), True),
    ],
)
def test_small_shapes_are_exactly_the_dense_draw(shape, density, zero_diagonal, key, x64):
    with jax.enable_x64(x64):
        got = bernoulli_columns(key, shape, density, zero_diagonal=zero_diagonal)
        want = dense_reference(key, shape, density, zero_diagonal)
    assert got[0].dtype == got[1].dtype == np.int32
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_the_limit_is_inclusive(monkeypatch):
    key, shape = jax.random.key(5), (40, 30)
    want = dense_reference(key, shape, 0.5, False)
    monkeypatch.setattr(pattern_sampling, "DENSE_DRAW_LIMIT", 40 * 30)
    assert same(bernoulli_columns(key, shape, 0.5), want)
    monkeypatch.setattr(pattern_sampling, "DENSE_DRAW_LIMIT", 40 * 30 - 1)
    assert not same(bernoulli_columns(key, shape, 0.5), want)  # the sparse sampler: same law, another draw


# ---- above the limit, and fixed fan-in: structure, determinism ------------------------------------------


@given(
    st.integers(0, 30),
    st.integers(0, 30),
    st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_sparse_bernoulli_is_a_valid_pattern(d, k, density, zero_diagonal, seed):
    shape = (d, d) if zero_diagonal else (d, k)
    mask = to_mask(shape, sparse_bernoulli(jax.random.key(seed), shape, density, zero_diagonal=zero_diagonal))
    available = shape[1] * max(shape[0] - zero_diagonal, 0)
    assert mask.sum() == {0.0: 0, 1.0: available}.get(density, mask.sum())


@given(st.integers(0, 30), st.integers(0, 30), st.floats(0, 1), st.booleans(), st.integers(0, 2**32 - 1))
def test_fixed_fan_in_gives_every_column_fan_in_distinct_rows(d, k, fraction, zero_diagonal, seed):
    shape = (d, d) if zero_diagonal else (d, k)
    fan_in = round(fraction * max(d - zero_diagonal, 0))
    pattern = fixed_fan_in_columns(jax.random.key(seed), shape, fan_in, zero_diagonal=zero_diagonal)
    mask = to_mask(shape, pattern, zero_diagonal)
    assert np.all(mask.sum(axis=0) == fan_in)
    np.testing.assert_array_equal(pattern[0], np.arange(shape[1] + 1) * fan_in)


SAMPLERS = [
    lambda key: sparse_bernoulli(key, (60, 60), 0.2, zero_diagonal=True),
    lambda key: fixed_fan_in_columns(key, (60, 50), 7),
    lambda key: fixed_fan_in_columns(key, (60, 50), 45),  # through the complement
]


@pytest.mark.parametrize("sample", SAMPLERS)
def test_one_pattern_per_key(sample):
    first = sample(jax.random.key(1))
    assert same(first, sample(jax.random.key(1)))
    assert same(first, sample(jax.random.PRNGKey(1)))  # a raw key with the same bits
    with jax.enable_x64(False):
        assert same(first, sample(jax.random.key(1)))
    assert not same(first, sample(jax.random.key(2)))


def test_patterns_are_pinned_to_their_key():
    """Drawn once and written down: a failure means every key now gives users another pattern."""
    key = jax.random.key(0)
    assert sparse_bernoulli(key, (5, 3), 0.5)[1].tolist() == [2, 3, 4, 0, 4, 0, 1, 2, 3]
    assert fixed_fan_in_columns(key, (8, 3), 3)[1].tolist() == [3, 6, 7, 1, 3, 6, 1, 3, 5]
    assert fixed_fan_in_columns(key, (4, 4), 1, zero_diagonal=True)[1].tolist() == [3, 3, 1, 1]


@pytest.mark.parametrize(
    "sample",
    [
        lambda key: sparse_bernoulli(key, (20_000, 20_000), 5e-4, zero_diagonal=True),
        lambda key: fixed_fan_in_columns(key, (20_000, 20_000), 10, zero_diagonal=True),
        lambda key: fixed_fan_in_columns(key, (2_000, 200), 1_000),  # through the complement
    ],
)
def test_memory_grows_with_nnz_not_with_the_shape(sample):
    tracemalloc.start()
    try:
        col_ptr, row_idx = sample(jax.random.key(0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 24 * row_idx.size + 16 * col_ptr.size + 2**16


# ---- distributions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("density", [0.3, 0.8])
def test_sparse_bernoulli_columns_are_independent_bernoulli_entries(density):
    """Over 4 rows, every one of the 16 row subsets turns up as often as Bernoulli entries make it."""
    mask = to_mask((4, 40_000), sparse_bernoulli(jax.random.key(0), (4, 40_000), density))
    size = np.array([bin(s).count("1") for s in range(16)])
    expected = 40_000 * density**size * (1 - density) ** (4 - size)
    assert dispersion_pvalue(subset_counts(mask), expected, expected, 15) > P_MIN


def test_sparse_bernoulli_rows_columns_and_diagonal_offsets():
    d, p = 1000, 0.1
    mask = to_mask((d, d), sparse_bernoulli(jax.random.key(0), (d, d), p, zero_diagonal=True), True)
    mean, var = (d - 1) * p, (d - 1) * p * (1 - p)  # every row and column: Binomial(d - 1, p), independent
    assert dispersion_pvalue(mask.sum(axis=0), mean, var, d) > P_MIN
    assert dispersion_pvalue(mask.sum(axis=1), mean, var, d) > P_MIN
    rows, cols = np.nonzero(mask)
    offsets = np.bincount((rows - cols) % d, minlength=d)[1:]  # offset 1..d-1: Binomial(d, p) each
    assert dispersion_pvalue(offsets, d * p, d * p * (1 - p), d - 1) > P_MIN


@pytest.mark.parametrize("fan_in", [3, 4])  # 4 of 7 goes through the complement
def test_fixed_fan_in_subsets_are_uniform(fan_in):
    """Over 7 rows, each of the 35 subsets of fan_in rows holds as many columns."""
    k = 10_500
    mask = to_mask((7, k), fixed_fan_in_columns(jax.random.key(0), (7, k), fan_in))
    subsets = [sum(1 << r for r in rows) for rows in itertools.combinations(range(7), fan_in)]
    counts = subset_counts(mask)
    assert counts[subsets].sum() == k
    assert dispersion_pvalue(counts[subsets], k / 35, k / 35, 34) > P_MIN


@pytest.mark.parametrize("fan_in", [50, 900])  # 900 of 999 goes through the complement
def test_fixed_fan_in_rows_and_diagonal_offsets(fan_in):
    d = 1000
    mask = to_mask((d, d), fixed_fan_in_columns(jax.random.key(0), (d, d), fan_in, zero_diagonal=True), True)
    q = fan_in / (d - 1)  # each column holds each of its d - 1 rows with probability q
    # row totals: variance (d - 1) q (1 - q), covariance -q (1 - q) (columns hold fan_in rows exactly)
    assert dispersion_pvalue(mask.sum(axis=1), fan_in, d * q * (1 - q), d - 1) > P_MIN
    rows, cols = np.nonzero(mask)
    offsets = np.bincount((rows - cols) % d, minlength=d)[1:]  # offset 1..d-1: d columns, q each
    assert dispersion_pvalue(offsets, d * q, d * q * (1 - q), d - 2) > P_MIN


# ---- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(-1, 3), (3, -1), (3.0, 2), ("3", 2), (True, 2), (3,), (1, 2, 3), 5, None])
def test_a_bad_shape_is_named(shape):
    with pytest.raises(ValueError, match=re.escape(f"shape: expected two non-negative ints (d, K), got {shape!r}")):
        bernoulli_columns(jax.random.key(0), shape, 0.5)
    with pytest.raises(ValueError, match=r"shape: expected two non-negative ints"):
        fixed_fan_in_columns(jax.random.key(0), shape, 1)


@pytest.mark.parametrize("density", [-0.1, 1.5, float("nan"), "x", None])
def test_a_density_outside_0_1_is_named(density):
    with pytest.raises(ValueError, match=re.escape(f"density: expected a number in [0, 1], got {density!r}")):
        bernoulli_columns(jax.random.key(0), (3, 3), density)


@pytest.mark.parametrize(
    ("shape", "fan_in", "zero_diagonal", "bound"),
    [
        ((5, 3), 6, False, 5),
        ((5, 3), -1, False, 5),
        ((5, 5), 5, True, 4),
        ((5, 3), 2.0, False, 5),
        ((5, 3), True, False, 5),
        ((5, 3), "2", False, 5),
        ((0, 3), 1, False, 0),
    ],
)
def test_a_bad_fan_in_is_named(shape, fan_in, zero_diagonal, bound):
    with pytest.raises(ValueError, match=re.escape(f"fan_in: expected an int in [0, {bound}], got {fan_in!r}")):
        fixed_fan_in_columns(jax.random.key(0), shape, fan_in, zero_diagonal=zero_diagonal)


def test_zero_diagonal_needs_a_square_shape():
    for sample in (
        lambda: bernoulli_columns(jax.random.key(0), (3, 4), 0.5, zero_diagonal=True),
        lambda: fixed_fan_in_columns(jax.random.key(0), (3, 4), 1, zero_diagonal=True),
    ):
        with pytest.raises(ValueError, match=r"zero_diagonal: expected a square shape \(d == K\), got \(3, 4\)"):
            sample()


def test_patterns_beyond_int32_indices_are_refused_before_sampling():
    with pytest.raises(ValueError, match="too large for int32 indices"):
        bernoulli_columns(jax.random.key(0), (2**31 - 1, 10), 0.5)
    with pytest.raises(ValueError, match="too large for int32 indices"):
        fixed_fan_in_columns(jax.random.key(0), (2**31 - 1, 10), 2**28)
