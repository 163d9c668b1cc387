"""SparsityPattern: construction, validation, both orientations, static under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import SparsityPattern

from .strategies import random_pattern


@given(st.integers(1, 50), st.integers(1, 50), st.sampled_from([0.0, 0.05, 0.5, 1.0]), st.integers(0, 2**32 - 1))
def test_orientations_describe_one_mask(d, k, density, seed):
    rng = np.random.default_rng(seed)
    p = random_pattern(rng, (d, k), density)
    mask = p.to_dense_mask()
    assert p.nnz == mask.sum() and p.density == pytest.approx(mask.mean())
    rows = np.repeat(np.arange(d), np.diff(p.row_ptr))
    np.testing.assert_array_equal(p.row_idx[p.csr_pos], rows)  # row order -> value position
    np.testing.assert_array_equal(p.col_of_entry()[p.csr_pos], p.col_idx)
    assert np.all(mask[rows, p.col_idx])
    again = SparsityPattern.from_coo(*np.nonzero(mask), (d, k))
    assert again == p and hash(again) == hash(p)
    values = jnp.asarray(rng.standard_normal(p.nnz))
    np.testing.assert_array_equal(p.gather(p.to_dense(values)), values)


def test_random_matches_jax_bernoulli_and_drops_diagonal():
    key = jax.random.key(3)
    p = SparsityPattern.random(key, (40, 30), 0.7)
    np.testing.assert_array_equal(p.to_dense_mask(), jax.random.bernoulli(key, 0.3, (40, 30)))
    q = SparsityPattern.random(key, (30, 30), 0.0, zero_diagonal=True)
    assert q.nnz == 30 * 29 and not np.any(np.diag(q.to_dense_mask()))


def test_static_under_jit_and_hashable():
    p = SparsityPattern.from_mask(np.eye(3, dtype=bool))
    assert jax.tree_util.tree_leaves(p) == []
    calls = []

    @jax.jit
    def f(pattern, x):
        calls.append(1)
        return x * pattern.nnz

    f(p, 1.0)
    f(SparsityPattern.from_mask(np.eye(3, dtype=bool)), 1.0)  # equal content: cache hit
    assert len(calls) == 1
    f(SparsityPattern.from_mask(~np.eye(3, dtype=bool)), 1.0)
    assert len(calls) == 2
    assert p != SparsityPattern.from_mask(~np.eye(3, dtype=bool))


def test_arrays_are_read_only():
    p = SparsityPattern.from_mask(np.eye(2, dtype=bool))
    with pytest.raises(ValueError):
        p.row_idx[0] = 1


@pytest.mark.parametrize(
    ("shape", "col_ptr", "row_idx", "match"),
    [
        ((2, 2), [0, 1], [0], r"col_ptr: expected shape \(3,\)"),
        ((2, 2), [1, 1, 1], [0], "non-decreasing from 0"),
        ((2, 2), [0, 2, 1], [0], "non-decreasing"),
        ((2, 2), [0, 1, 1], [2], r"row_idx: expected entries in \[0, 2\)"),
        ((2, 2), [0, 1, 1], [-1], r"row_idx: expected entries in \[0, 2\)"),
        ((3, 1), [0, 2], [1, 0], "strictly increasing"),
        ((3, 1), [0, 2], [1, 1], "strictly increasing"),
        ((-1, 1), [0, 0], [], "non-negative"),
    ],
)
def test_invalid_compressed_input_is_rejected(shape, col_ptr, row_idx, match):
    with pytest.raises(ValueError, match=match):
        SparsityPattern(shape, np.array(col_ptr), np.array(row_idx, dtype=np.int64))


@pytest.mark.parametrize("shape", [(-1, 1), (1, 1, 1), (1,), None, (1.5, 1), (True, 1)])
def test_every_constructor_checks_its_shape(shape):
    # the same check as SparsityPattern.random's; before it, a float shape was truncated and a
    # wrong length failed with Python's unnamed unpacking error
    with pytest.raises(ValueError, match=r"shape: expected two non-negative ints \(d, K\)"):
        SparsityPattern(shape, np.array([0, 0]), np.zeros(0, np.int32))
    with pytest.raises(ValueError, match=r"shape: expected two non-negative ints \(d, K\)"):
        SparsityPattern.from_coo(np.zeros(0, np.int64), np.zeros(0, np.int64), shape)
    with pytest.raises(ValueError, match=r"shape: expected two non-negative ints \(d, K\)"):
        SparsityPattern.random(jax.random.key(0), shape, 0.5)


def test_invalid_constructors_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        SparsityPattern.from_coo([0, 0], [1, 1], (2, 2))
    with pytest.raises(ValueError, match="cols"):
        SparsityPattern.from_coo([0], [5], (2, 2))
    with pytest.raises(ValueError, match="rank 2"):
        SparsityPattern.from_mask(np.ones(3, bool))
    with pytest.raises(ValueError, match="sparsity"):
        SparsityPattern.random(jax.random.key(0), (2, 2), 1.5)
    with pytest.raises(ValueError, match="square"):
        SparsityPattern.random(jax.random.key(0), (2, 3), 0.5, zero_diagonal=True)
