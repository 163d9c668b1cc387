"""all_finite against its oracle: odd values anywhere in arrays of any shapes and float dtypes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import _ffi, all_finite, all_finite_reference

ODD = (np.nan, -np.nan, np.inf, -np.inf)
SHAPES = st.lists(st.integers(0, 300), min_size=0, max_size=3).map(tuple)


@st.composite
def arrays_case(draw: st.DrawFn) -> list[np.ndarray]:
    """1-4 arrays of random shapes and dtypes; some hold one or more NaN or infinities."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for _ in range(draw(st.integers(1, 4))):
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        a = (rng.standard_normal(draw(SHAPES)) * draw(st.sampled_from([1.0, 1e30, 1e-40]))).astype(dtype)
        if a.size and draw(st.booleans()):
            for _ in range(draw(st.integers(1, 3))):
                a.flat[rng.integers(a.size)] = ODD[rng.integers(len(ODD))]
        out.append(a)
    return out


@given(arrays_case())
def test_matches_oracle_eagerly_and_under_jit(arrays):
    want = np.asarray(all_finite_reference(arrays))
    assert want.dtype == bool and want.shape == (len(arrays),)
    np.testing.assert_array_equal(all_finite(arrays), want)
    np.testing.assert_array_equal(jax.jit(all_finite)(arrays), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", ODD)
def test_one_odd_entry_anywhere_in_a_large_array(dtype, value):
    """Every position class of a vectorised pass: the first, last and a middle entry, and the
    last ones of arrays whose sizes are not multiples of a vector."""
    for n in (1, 15, 17, 64, 157_207):
        for at in {0, n // 2, n - 1}:
            a = np.ones(n, dtype) * 3e38 if dtype == np.float32 else np.ones(n, dtype) * 1e308
            a[at] = value
            assert all_finite([np.ones(3, dtype), a]).tolist() == [True, False], (n, at)
    big = np.full(1000, np.finfo(dtype).max, dtype)  # the largest finite values are finite
    assert all_finite([big, -big, np.full(5, np.finfo(dtype).tiny / 2, dtype)]).tolist() == [True] * 3


def test_vmap_and_scan():
    stack = np.ones((3, 4, 5), np.float32)
    stack[1, 2, 3] = np.nan
    np.testing.assert_array_equal(jax.vmap(lambda a: all_finite([a, a[:1]]))(stack), [[1, 1], [0, 1], [1, 1]])

    def body(carry, a):
        return carry, all_finite([a])[0]

    _, flags = jax.lax.scan(body, 0, stack)
    np.testing.assert_array_equal(flags, [True, False, True])


def test_empty_list_and_empty_arrays():
    assert all_finite([]).shape == (0,)
    assert all_finite([np.zeros((0, 7), np.float32), np.zeros(0)]).tolist() == [True, True]


@pytest.mark.parametrize("dtype", [np.int32, np.float16, jnp.bfloat16, np.complex64, np.bool_])
def test_other_dtypes_are_refused_by_position(dtype):
    with pytest.raises(TypeError, match=r"arrays\[1\]: expected float32 or float64"):
        all_finite([np.ones(2, np.float32), np.ones(2, dtype)])


def _raw(arrays, n_out, **attrs):
    """all_finite's custom call as given, bypassing the Python checks."""
    out = jax.ShapeDtypeStruct((n_out,), np.bool_)
    return jax.jit(lambda *a: _ffi.ffi_call("all_finite", out)(*a, **attrs))(*arrays)


def test_handler_refuses_what_the_python_side_would():
    ok = [np.ones(3, np.float32), np.full(2, np.inf)]
    assert np.asarray(_raw(ok, 2)).tolist() == [True, False]
    with pytest.raises(Exception, match="all_finite takes no attributes, got 1"):
        _raw(ok, 2, extra=np.int64(0))
    with pytest.raises(Exception, match=r"out: expected shape \(2,\), got \(3,\)"):
        _raw(ok, 3)
    with pytest.raises(Exception, match=r"arrays\[1\]: expected float32 or float64"):
        _raw([ok[0], np.ones(2, np.int32)], 2)
