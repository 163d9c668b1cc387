"""Bad inputs raise clear errors in Python, and the C++ handlers refuse them too (never crash)."""

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darnax.ops import (
    SparsityPattern,
    _ffi,
    async_sign_sweeps,
    dense_async_sign_sweeps,
    direct,
    sparse_matmul,
    sparse_outer,
    sync_sign_steps,
)

P = SparsityPattern.from_mask(np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], bool))
H = np.zeros((2, 3), np.float32)
V = np.ones(P.nnz, np.float32)
D = np.zeros(3, np.float32)
S = np.ones((2, 3), np.float32)
ORDER = np.array([2, 0, 1], np.int32)
J = np.eye(3, dtype=np.float32) / 2


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: sparse_matmul(np.ones(3, np.float32), V, P), ValueError, r"x: expected shape \(\?, 3\), got \(3,\)"),
        (
            lambda: sparse_matmul(np.ones((2, 4), np.float32), V, P),
            ValueError,
            r"x: expected shape \(\?, 3\), got \(2, 4\)",
        ),
        (
            lambda: sparse_matmul(np.ones((2, 3), np.int32), V, P),
            TypeError,
            "x: expected float32 or float64, got int32",
        ),
        (lambda: sparse_matmul(np.ones((2, 3)), V, P), TypeError, "one float dtype"),
        (lambda: sparse_matmul(H, V[:-1], P), ValueError, r"values: expected shape \(5,\), got \(4,\)"),
        (lambda: sparse_outer(H, np.ones((3, 3), np.float32), P), ValueError, r"e: expected shape \(2, 3\)"),
        (
            lambda: sync_sign_steps(H, V, SparsityPattern.from_mask(np.ones((3, 2), bool)), D, S, 1),
            ValueError,
            "square",
        ),
        (lambda: sync_sign_steps(H, V, P, D[:2], S, 1), ValueError, r"diag: expected shape \(3,\)"),
        (lambda: sync_sign_steps(H, V, P, D, S[:1], 1), ValueError, r"s0: expected shape \(2, 3\)"),
        (lambda: sync_sign_steps(H, V, P, D, S, -1), ValueError, "n_steps: expected a non-negative int"),
        (lambda: async_sign_sweeps(H, V, P, D, S, ORDER, 1.5), ValueError, "n_sweeps"),
        (lambda: async_sign_sweeps(H, V, P, D, S, np.array([0, 0, 1], np.int32), 1), ValueError, "permutation"),
        (lambda: async_sign_sweeps(H, V, P, D, S, np.array([0, 1, 3], np.int32), 1), ValueError, "permutation"),
        (lambda: async_sign_sweeps(H, V, P, D, S, ORDER.astype(np.int64), 1), TypeError, "order: expected int32"),
        (
            lambda: async_sign_sweeps(H, V, P, D, S, ORDER[:2], 1),
            ValueError,
            r"order: expected shape \(3,\), \(1 or 2, 3\) or \(1 or 2, 1, 3\)",
        ),
        (lambda: async_sign_sweeps(H, V, P, D, S, np.tile(ORDER, (2, 2, 1)), 3), ValueError, r"order: expected shape"),
        (
            lambda: dense_async_sign_sweeps(H, J[:2], S, ORDER, 1),
            ValueError,
            r"couplings: expected a square \(N, N\) matrix, got shape \(2, 3\)",
        ),
        (
            lambda: dense_async_sign_sweeps(H, J[0], S, ORDER, 1),
            ValueError,
            r"couplings: expected shape \(\?, \?\), got \(3,\)",
        ),
        (
            lambda: dense_async_sign_sweeps(H[:, :2], J, S, ORDER, 1),
            ValueError,
            r"h_ext: expected shape \(\?, 3\), got \(2, 2\)",
        ),
        (
            lambda: dense_async_sign_sweeps(H, J, S[:1], ORDER, 1),
            ValueError,
            r"s0: expected shape \(2, 3\), got \(1, 3\)",
        ),
        (
            lambda: dense_async_sign_sweeps(H, J.astype(np.int32), S, ORDER, 1),
            TypeError,
            "couplings: expected float32 or float64, got int32",
        ),
        (lambda: dense_async_sign_sweeps(H, J.astype(np.float64), S, ORDER, 1), TypeError, "one float dtype"),
        (lambda: dense_async_sign_sweeps(H, J, S, ORDER, -1), ValueError, "n_sweeps: expected a non-negative int"),
        (lambda: dense_async_sign_sweeps(H, J, S, ORDER, 2.0), ValueError, "n_sweeps: expected a non-negative int"),
        (lambda: dense_async_sign_sweeps(H, J, S, ORDER.astype(np.int64), 1), TypeError, "order: expected int32"),
        (
            lambda: dense_async_sign_sweeps(H, J, S, np.tile(ORDER, (3, 1)), 1),
            ValueError,
            r"order: expected shape \(3,\), \(1 or 2, 3\)",
        ),
        (lambda: dense_async_sign_sweeps(H, J, S, np.array([1, 1, 0], np.int32), 1), ValueError, "permutation"),
    ],
)
def test_python_checks(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_traced_non_permutation_is_refused_by_the_handler():
    """Under jit Python cannot see the values; the C++ handler checks and returns an FFI error."""
    run = jax.jit(lambda o: async_sign_sweeps(H, V, P, D, S, o, 1))
    with pytest.raises(Exception, match="order: not a permutation"):
        jax.block_until_ready(run(jnp.array([0, 0, 1], jnp.int32)))
    with pytest.raises(Exception, match="order: not a permutation"):
        jax.block_until_ready(run(jnp.array([0, 1, 7], jnp.int32)))


def test_dense_handler_refuses_what_python_would():
    """The dense handler checks everything again: a traced non-permutation, shapes, dtypes and
    n_sweeps reach it only through a raw call, and each is an FFI error, never a crash."""
    run = jax.jit(lambda o: dense_async_sign_sweeps(H, J, S, o, 2))
    for bad in ([0, 0, 1], [0, 1, 7], [-1, 0, 1]):
        with pytest.raises(Exception, match="order: not a permutation"):
            jax.block_until_ready(run(jnp.array(bad, jnp.int32)))
    h, j, s = jnp.asarray(H), jnp.asarray(J), jnp.asarray(S)
    outs = lambda b=2, n=3, t=1, dt=jnp.float32: (  # noqa: E731
        jax.ShapeDtypeStruct((b, n), dt),
        jax.ShapeDtypeStruct((b, t), jnp.int32),
        jax.ShapeDtypeStruct((b, n), dt),
    )
    order = jnp.asarray(ORDER[None])
    with pytest.raises(Exception, match=r"order: not a permutation of 0..2 \(entry 1 is 2\)"):
        _raw("dense_async_sign_sweeps", outs(), h, j, s, jnp.array([[2, 2, 0]], jnp.int32), n_sweeps=np.int64(1))
    with pytest.raises(Exception, match=r"couplings: expected shape \(3, 3\), got \(3, 2\)"):
        _raw("dense_async_sign_sweeps", outs(), h, j[:, :2], s, order, n_sweeps=np.int64(1))
    with pytest.raises(Exception, match=r"s0: expected shape \(2, 3\), got \(1, 3\)"):
        _raw("dense_async_sign_sweeps", outs(), h, j, s[:1], order, n_sweeps=np.int64(1))
    with pytest.raises(Exception, match=r"order: expected shape \(1 or 2, 3\) or \(1 or 2, 1, 3\), got \(3,\)"):
        _raw("dense_async_sign_sweeps", outs(), h, j, s, order[0], n_sweeps=np.int64(1))
    with pytest.raises(Exception, match=r"flips: expected shape \(2, 1\), got \(2, 2\)"):
        _raw("dense_async_sign_sweeps", outs(t=2), h, j, s, order, n_sweeps=np.int64(1))
    with pytest.raises(Exception, match="the number of sweeps must be >= 0, got -1"):
        _raw("dense_async_sign_sweeps", outs(t=0), h, j, s, order, n_sweeps=np.int64(-1))
    with pytest.raises(Exception, match="must share one dtype"):
        _raw("dense_async_sign_sweeps", outs(), h, j.astype(jnp.float64), s, order, n_sweeps=np.int64(1))
    with pytest.raises(Exception, match="h_ext: expected float32 or float64"):
        _raw(
            "dense_async_sign_sweeps",
            outs(dt=jnp.int32),
            *(a.astype(jnp.int32) for a in (h, j, s)),
            order,
            n_sweeps=np.int64(1),
        )
    with pytest.raises(Exception, match=r"h_ext: expected rank 2 \(B, N\), got \(3,\)"):
        _raw("dense_async_sign_sweeps", outs(), h[0], j, s, order, n_sweeps=np.int64(1))


def _raw(target, outs, *args, **attrs):
    """A custom call that bypasses the Python checks (attributes as given)."""
    return jax.jit(lambda *a: _ffi.ffi_call(target, outs)(*a, **attrs))(*args)


def _key(pattern):
    return {"pattern": np.int64(pattern.key)}


LAYER = (jnp.asarray(H), jnp.asarray(V), jnp.asarray(D), jnp.asarray(S))
LAYER_OUTS = (
    jax.ShapeDtypeStruct((2, 3), jnp.float32),
    jax.ShapeDtypeStruct((2, 1), jnp.int32),
    jax.ShapeDtypeStruct((2, 3), jnp.float32),
)


def test_handlers_refuse_patterns_not_in_the_store():
    """A key that names no live pattern (never stored, or freed) is an error at instantiation."""
    x = jnp.ones((2, 3), jnp.float32)
    gone = SparsityPattern.from_mask(np.array([[0, 1, 1], [1, 0, 0], [1, 1, 1]], bool))
    key = gone.key
    del gone
    gc.collect()
    for attrs in ({"pattern": np.int64(key)}, {"pattern": np.int64(12345)}):
        with pytest.raises(Exception, match="is not in this process's pattern store"):
            _raw("sparse_matmul", jax.ShapeDtypeStruct((2, 3), jnp.float32), x, jnp.ones(6, jnp.float32), **attrs)
        with pytest.raises(Exception, match="is not in this process's pattern store"):
            _raw("sync_sign_steps", LAYER_OUTS, *LAYER, **attrs, n_steps=np.int64(1))


def test_handlers_refuse_bad_attributes():
    x = jnp.ones((2, 3), jnp.float32)
    with pytest.raises(Exception, match="expected float32 or float64"):
        _raw(
            "sparse_matmul",
            jax.ShapeDtypeStruct((2, 3), jnp.int32),
            x.astype(jnp.int32),
            jnp.ones(5, jnp.int32),
            **_key(P),
        )
    wide = SparsityPattern.from_mask(np.ones((3, 2), bool))
    with pytest.raises(Exception, match=r"expected a square pattern, got \(3, 2\)"):
        _raw("sync_sign_steps", LAYER_OUTS, *LAYER, **_key(wide), n_steps=np.int64(1))
    with pytest.raises(Exception, match="must be >= 0"):
        _raw(
            "sync_sign_steps",
            (LAYER_OUTS[0], jax.ShapeDtypeStruct((2, 0), jnp.int32), LAYER_OUTS[2]),
            *LAYER,
            **_key(P),
            n_steps=np.int64(-1),
        )
    with pytest.raises(Exception, match="Wrong number of attributes"):
        _raw("sparse_matmul", jax.ShapeDtypeStruct((2, 3), jnp.float32), x, jnp.ones(5, jnp.float32))


def test_handlers_check_buffers_against_the_stored_pattern():
    """Each execution compares its buffers with the stored pattern's sizes (ORDER(1))."""
    x = jnp.ones((2, 4), jnp.float32)
    with pytest.raises(Exception, match=r"x: expected shape \(B, 3\), got \(2, 4\)"):
        _raw("sparse_matmul", jax.ShapeDtypeStruct((2, 3), jnp.float32), x, jnp.ones(5, jnp.float32), **_key(P))
    with pytest.raises(Exception, match=r"values: expected shape \(5,\), got \(4,\)"):
        _raw("sparse_matmul", jax.ShapeDtypeStruct((2, 3), jnp.float32), x[:, :3], jnp.ones(4, jnp.float32), **_key(P))
    with pytest.raises(Exception, match=r"e: expected shape \(2, 3\)"):
        _raw("sparse_outer", jax.ShapeDtypeStruct((5,), jnp.float32), x[:, :3], x, **_key(P))
    wide = jnp.zeros((2, 4), jnp.float32)
    outs = (
        jax.ShapeDtypeStruct((2, 4), jnp.float32),
        jax.ShapeDtypeStruct((2, 1), jnp.int32),
        jax.ShapeDtypeStruct((2, 4), jnp.float32),
    )
    with pytest.raises(Exception, match=r"h_ext: expected 3 units \(the pattern's width\), got 4"):
        _raw(
            "sync_sign_steps",
            outs,
            wide,
            jnp.asarray(V),
            jnp.zeros(4, jnp.float32),
            wide,
            **_key(P),
            n_steps=np.int64(1),
        )


@pytest.mark.parametrize(
    ("shape", "col_ptr", "row_idx", "match"),
    [
        ((3, 3), [0, 2, 3, 5], [0, 9, 1, 0, 2], r"row_idx: expected entries in \[0, 3\), got \[0, 9\]"),
        ((3, 3), [0, 4, 2, 5], [0, 2, 1, 0, 1], "col_ptr: expected non-decreasing"),
        ((3, 3), [0, 1, 2, 9], [0, 2, 1, 0, 1], "nnz=5"),
        ((3, 3), [0, 2, 3, 5], [2, 0, 1, 0, 1], "strictly increasing inside each column"),
        ((-1, 3), [0, 2, 3, 5], [0, 2, 1, 0, 1], "shape: expected 0 <= d"),
        ((3, 3), [0, 2, 5], [0, 2, 1, 0, 1], r"col_ptr: expected shape \(4,\), got \(3,\)"),
    ],
)
def test_the_store_validates_what_bypasses_python(shape, col_ptr, row_idx, match):
    with pytest.raises(ValueError, match=match):
        direct.store_pattern(*shape, np.asarray(col_ptr, np.int32), np.asarray(row_idx, np.int32))


def test_direct_calls_validate():
    with pytest.raises(ValueError, match="outside"):
        direct.sparse_matmul(H, V, P.col_ptr, np.array([0, 9, 1, 0, 2], np.int32))
    with pytest.raises(ValueError, match="permutation"):
        direct.async_sign_sweeps(
            H, V, P.col_ptr, P.row_idx, P.row_ptr, P.col_idx, P.csr_pos, D, S, np.zeros((2, 3), np.int32), 1
        )
    with pytest.raises(ValueError, match="values must have length nnz"):
        direct.sparse_matmul(H, V[:2], P.col_ptr, P.row_idx)
    with pytest.raises(ValueError, match=r"order: not a permutation of 0..2 \(entry 2 is 3\)"):
        direct.dense_async_sign_sweeps(H, J, S, np.array([[0, 1, 3]], np.int32), 1)
    with pytest.raises(ValueError, match="order: expected shape"):
        direct.dense_async_sign_sweeps(H, J, S, np.zeros((3, 3), np.int32), 1)
    with pytest.raises(ValueError, match=r"couplings must have shape \(N, N\)"):
        direct.dense_async_sign_sweeps(H, J[:2], S, ORDER[None], 1)
    with pytest.raises(ValueError, match="sweeps must be >= 0"):
        direct.dense_async_sign_sweeps(H, J, S, ORDER[None], -1)
    with pytest.raises(TypeError):
        direct.sparse_matmul("not an array", V, P.col_ptr, P.row_idx)


def test_direct_calls_match_ops(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(direct.sparse_matmul(x, V, P.col_ptr, P.row_idx), sparse_matmul(x, V, P))
    e = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_array_equal(direct.sparse_outer(x, e, P.col_ptr, P.row_idx), sparse_outer(x, e, P))
    order = np.stack([ORDER, ORDER])
    got = direct.async_sign_sweeps(H, V, P.col_ptr, P.row_idx, P.row_ptr, P.col_idx, P.csr_pos, D, -S, order, 2)
    for a, b in zip(got, async_sign_sweeps(H, V, P, D, -S, order, 2)):
        np.testing.assert_array_equal(a, b)


def test_a_bad_index_in_the_last_column_of_a_large_pattern_is_found():
    """The store checks every index before any kernel can read it: a bad one in the very last
    column of a large pattern is an error naming it, never a read out of bounds."""
    rng = np.random.default_rng(0)
    d = k = 3000
    flat = rng.choice(d * k, 90_000, replace=False)
    p = SparsityPattern.from_coo(flat // k, flat % k, (d, k))
    rows = np.array(p.row_idx)
    rows[-1] = -1
    with pytest.raises(ValueError, match=r"row_idx: expected entries in \[0, 3000\), got \[-1,"):
        direct.store_pattern(d, k, np.asarray(p.col_ptr), rows)
    with pytest.raises(ValueError, match="index -1"):
        direct.sparse_outer(np.ones((16, d), np.float32), np.ones((16, k), np.float32), p.col_ptr, rows)


def _layer_arrays():
    return {name: np.array(getattr(P, name)) for name in ("col_ptr", "row_idx", "row_ptr", "col_idx", "csr_pos")}


def _swap(a, i, j):
    a[[i, j]] = a[[j, i]]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: _swap(a["csr_pos"], 0, 1), "csr_pos: entry 0 .* the two orientations disagree"),
        (lambda a: a["csr_pos"].__setitem__(1, a["csr_pos"][0]), "csr_pos: entry 1 .* the two orientations disagree"),
        (lambda a: _swap(a["col_idx"], 0, 1), "col_idx: indices must be strictly increasing"),
        (lambda a: _swap(a["row_idx"], 0, 1), "row_idx: indices must be strictly increasing"),
        (lambda a: a["row_idx"].__setitem__(1, a["row_idx"][0]), "row_idx: indices must be strictly increasing"),
        (lambda a: a["row_ptr"].__setitem__(slice(1, 3), [1, 3]), "col_idx: indices must be strictly increasing"),
        (lambda a: a["col_idx"].__setitem__(0, 1), "csr_pos: entry 0 .* the two orientations disagree"),
    ],
)
def test_direct_layer_calls_refuse_orientations_that_disagree(change, match):
    """The direct calls take both orientations and csr_pos from the caller: each must be the exact
    transpose of the column order (sorted, no duplicates, csr_pos a matching permutation), not
    merely in bounds."""
    a = _layer_arrays()
    change(a)
    args = (a["col_ptr"], a["row_idx"], a["row_ptr"], a["col_idx"], a["csr_pos"], D, S)
    with pytest.raises(ValueError, match=match):
        direct.sync_sign_steps(H, V, *args, 1)
    with pytest.raises(ValueError, match=match):
        direct.async_sign_sweeps(H, V, *args, np.stack([ORDER, ORDER]), 1)
