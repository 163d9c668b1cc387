"""random_permutations against its oracle, eager, under jit, vmap and scan; uniformity; bad inputs."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import random_permutations, random_permutations_reference


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 300))
def test_rows_are_permutations_equal_to_the_oracle(seed, rows, n):
    bits = jax.random.bits(jax.random.key(seed), (rows, n), jnp.uint32)
    got = np.asarray(jax.jit(random_permutations)(bits))
    assert got.dtype == np.int32 and got.shape == (rows, n)
    np.testing.assert_array_equal(np.sort(got, axis=1), np.broadcast_to(np.arange(n), (rows, n)))
    np.testing.assert_array_equal(got, random_permutations_reference(bits))


def test_extreme_words_stay_in_range():
    """All-ones words pick j = i (the largest choice), zeros pick j = 0."""
    n = 50
    for word, want in ((0xFFFFFFFF, np.arange(n)), (0, np.roll(np.arange(n), -1))):
        bits = jnp.full((1, n), word, jnp.uint32)
        np.testing.assert_array_equal(random_permutations(bits)[0], want)
        np.testing.assert_array_equal(random_permutations_reference(bits)[0], want)


def test_uniform_over_the_six_orders_of_three():
    perms = np.asarray(random_permutations(jax.random.bits(jax.random.key(7), (12000, 3), jnp.uint32)))
    counts = collections.Counter(map(tuple, perms))
    assert len(counts) == 6
    chi2 = sum((c - 2000) ** 2 / 2000 for c in counts.values())
    assert chi2 < 25  # 5 degrees of freedom: p < 1e-4 only for a biased shuffle


def test_vmap_scan_and_leading_axes():
    bits = jax.random.bits(jax.random.key(3), (4, 2, 40), jnp.uint32)
    want = np.asarray(random_permutations_reference(bits))
    np.testing.assert_array_equal(random_permutations(bits), want)
    np.testing.assert_array_equal(jax.vmap(random_permutations)(bits), want)
    _, ys = jax.lax.scan(lambda c, b: (c, random_permutations(b)), 0, bits)
    np.testing.assert_array_equal(ys, want)


@pytest.mark.parametrize(
    "bits, error, match",
    [
        (np.zeros((2, 5), np.int32), TypeError, "bits: expected uint32"),
        (np.uint32(3), ValueError, r"bits: expected shape \(..., N\)"),
    ],
)
def test_bad_inputs(bits, error, match):
    with pytest.raises(error, match=match):
        random_permutations(bits)
    with pytest.raises(error, match=match):
        random_permutations_reference(bits)


def test_empty_inputs():
    for shape in ((3, 0), (0, 4)):
        bits = np.zeros(shape, np.uint32)
        assert random_permutations(bits).shape == shape == random_permutations_reference(bits).shape
