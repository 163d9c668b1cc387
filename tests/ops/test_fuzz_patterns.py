"""Fuzzing the ``SparsityPattern`` constructors with bad and extreme inputs (the ops' fuzzing is in
``test_fuzz_public.py``): every call either builds a valid pattern or raises ``TypeError``/
``ValueError`` naming the argument; nothing may crash the process."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from darnax.ops import SparsityPattern


def expect_pattern_or_error(build, check, names: tuple[str, ...]) -> None:
    """``build()`` raises TypeError/ValueError naming one of ``names``, or returns a pattern for
    which ``check`` holds."""
    try:
        pattern = build()
    except (TypeError, ValueError) as err:
        assert any(name in str(err) for name in names), f"the error names none of {names}: {err}"
        return
    assert isinstance(pattern, SparsityPattern)
    check(pattern)


# Integer coordinates only: float ones are known defects (test_known_constructor_defects).
coordinates = st.one_of(st.integers(-3, 8), st.sampled_from([2**31, 2**40, -(2**40), 2**63 - 1]))


@st.composite
def coordinate_lists(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Mostly two integer arrays of one length (int64, int32 or uint32 when the values fit)."""
    n = draw(st.integers(0, 12))
    arrays = []
    for _ in range(2):
        m = n if draw(st.integers(0, 4)) else draw(st.integers(0, 12))
        a = np.asarray(
            draw(st.lists(draw(st.sampled_from([st.integers(-1, 6), coordinates])), min_size=m, max_size=m)), np.int64
        )
        dtype = draw(st.sampled_from([np.int64, np.int32, np.uint32]))
        arrays.append(
            a.astype(dtype) if a.size and np.iinfo(dtype).min <= a.min() and a.max() <= np.iinfo(dtype).max else a
        )
    return tuple(arrays)


@given(coords=coordinate_lists(), shape=st.tuples(st.integers(-1, 6), st.integers(-1, 6)))
@example(coords=(np.zeros(0, np.int64), np.zeros(0, np.int64)), shape=(0, -1))  # once failed unnamed
def test_from_coo(coords, shape):
    rows, cols = coords

    def check(p: SparsityPattern) -> None:
        # accepted: the coordinates were integral, in range, distinct, one per entry
        r, c = np.asarray(rows), np.asarray(cols)
        assert r.shape == c.shape and np.array_equal(r, r.astype(np.int64)) and np.array_equal(c, c.astype(np.int64))
        want = np.zeros(p.shape, bool)
        want[r.astype(np.int64), c.astype(np.int64)] = True
        assert p.shape == shape and p.nnz == len(rows) and np.array_equal(p.to_dense_mask(), want)

    expect_pattern_or_error(
        lambda: SparsityPattern.from_coo(np.asarray(rows), np.asarray(cols), shape), check, ("rows", "cols", "shape")
    )


@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=3),
    dtype=st.sampled_from([np.bool_, np.int32, np.float32, np.float64, np.complex64]),
    special=st.sampled_from([None, np.nan, np.inf]),
    seed=st.integers(0, 2**32 - 1),
)
def test_from_mask(shape, dtype, special, seed):
    mask = (np.random.default_rng(seed).random(shape) < 0.5).astype(dtype)
    if special is not None and mask.size and np.issubdtype(dtype, np.floating):
        mask.reshape(-1)[0] = special  # NaN and inf are nonzero: stored

    def check(p: SparsityPattern) -> None:
        assert mask.ndim == 2 and np.array_equal(p.to_dense_mask(), mask != 0)

    expect_pattern_or_error(lambda: SparsityPattern.from_mask(mask), check, ("mask",))


@given(
    shape=st.tuples(st.integers(-2, 40), st.integers(-2, 40)),
    sparsity=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 0.5, "0.5"])),
    zero_diagonal=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_random(shape, sparsity, zero_diagonal, seed):
    def check(p: SparsityPattern) -> None:
        assert p.shape == shape and 0.0 <= float(sparsity) <= 1.0
        if zero_diagonal:
            assert not np.any(p.to_dense_mask().diagonal())
        if float(sparsity) == 1.0:
            assert p.nnz == 0

    expect_pattern_or_error(
        lambda: SparsityPattern.random(jax.random.key(seed), shape, sparsity, zero_diagonal=zero_diagonal),
        check,
        ("shape", "sparsity", "zero_diagonal"),
    )


@given(
    shape=st.tuples(st.integers(-2, 30), st.integers(-2, 30)),
    fan_in=st.one_of(st.integers(-3, 35), st.sampled_from([2**40, 1.5, float("nan"), True, "3", None])),
    zero_diagonal=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_fixed_fan_in(shape, fan_in, zero_diagonal, seed):
    def check(p: SparsityPattern) -> None:
        assert p.shape == shape and isinstance(fan_in, int) and not isinstance(fan_in, bool)
        assert np.all(np.diff(p.col_ptr) == fan_in)
        if zero_diagonal:
            assert not np.any(p.to_dense_mask().diagonal())

    expect_pattern_or_error(
        lambda: SparsityPattern.fixed_fan_in(jax.random.key(seed), shape, fan_in, zero_diagonal=zero_diagonal),
        check,
        ("shape", "fan_in", "zero_diagonal"),
    )


def test_a_legacy_integer_key_is_a_clear_error_or_a_valid_pattern():
    expect_pattern_or_error(lambda: SparsityPattern.random(0, (4, 4), 0.5), lambda p: None, ("key",))
    expect_pattern_or_error(lambda: SparsityPattern.fixed_fan_in(0, (4, 4), 2), lambda p: None, ("key",))


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: SparsityPattern.from_coo(np.asarray([]), np.asarray([]), (2, 2)), ("rows", "cols")),  # float64 empties
        (lambda: SparsityPattern.from_coo(np.asarray([0.5]), np.asarray([0]), (2, 2)), ("rows",)),  # stored as row 0
        (lambda: SparsityPattern.from_coo(np.asarray([np.nan]), np.asarray([0]), (2, 2)), ("rows",)),
        (lambda: SparsityPattern.random(jax.random.key(0), (3, 3), None), ("sparsity",)),
        (lambda: SparsityPattern.random(jax.random.key(0), (3, 3), "dense"), ("sparsity",)),
    ],
)
def test_float_coordinates_and_non_numeric_sparsities_are_refused(build, names):
    with pytest.raises((TypeError, ValueError)) as info:
        build()
    assert any(name in str(info.value) for name in names) and "int32" not in str(info.value), info.value
