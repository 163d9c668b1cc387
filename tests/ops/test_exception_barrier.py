"""A C++ exception below a handler (here: an allocation that cannot succeed, on the calling
thread or on a pool worker) becomes a Python exception naming the op, never std::terminate;
the next call works and gives the right result.

The failures are real: ``direct.testing_fail_allocations`` (test-only) makes the next kernel
scratch allocations ask for 2^62 more bytes than they need.
"""

import time

import jax
import numpy as np
import pytest

from darnax.ops import (
    SparsityPattern,
    async_sign_sweeps,
    dense_async_sign_sweeps,
    direct,
    sparse_matmul,
    sparse_outer,
    sync_sign_steps,
)

RNG = np.random.default_rng(5)
N, B = 200, 20
PAT = SparsityPattern.from_mask((RNG.random((N, N)) < 0.1) & ~np.eye(N, dtype=bool))
X = RNG.standard_normal((B, N)).astype(np.float32)
S = np.where(RNG.random((B, N)) < 0.5, -1.0, 1.0).astype(np.float32)
V = (RNG.standard_normal(PAT.nnz) / 8).astype(np.float32)
DIAG = np.full(N, 0.25, np.float32)
ORDER = np.stack([RNG.permutation(N) for _ in range(B)]).astype(np.int32)
DENSE = np.asarray(PAT.to_dense(V)) + np.diag(DIAG)

OPS = {
    "sparse_matmul": lambda: sparse_matmul(X, V, PAT),
    "sparse_outer": lambda: sparse_outer(X, S, PAT),
    "async_sign_sweeps": lambda: async_sign_sweeps(X, V, PAT, DIAG, S, ORDER, 2),
    "sync_sign_steps": lambda: sync_sign_steps(X, V, PAT, DIAG, S, 2),
    "dense_async_sign_sweeps": lambda: dense_async_sign_sweeps(X, DENSE, S, ORDER, 2),
}


@pytest.fixture(autouse=True)
def _disarm():
    yield
    direct.testing_fail_allocations(0)


def _run(call):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(jax.block_until_ready(call()))]


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("compiled", [False, True])
def test_allocation_failure_is_an_error_naming_the_op(name, compiled):
    call = jax.jit(OPS[name]) if compiled else OPS[name]
    want = _run(call)
    direct.testing_fail_allocations(1)
    with pytest.raises(Exception, match=rf"RESOURCE_EXHAUSTED: darnax_{name}: out of memory \(std::bad_alloc\)"):
        _run(call)
    for got, expected in zip(_run(call), want):  # the failure was consumed; nothing broke
        np.testing.assert_array_equal(got, expected)


def _until_a_worker_fails(call, error, match):
    """Arms one failure on pool workers and calls until a worker took a chunk (and failed). On a
    loaded machine the caller may run every chunk of many calls before a worker is scheduled: the
    calls are a few ms long, and the loop gives the workers a minute."""
    direct.testing_fail_allocations(1, workers_only=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            call()
        except error as err:
            assert match in str(err)
            return
    direct.testing_fail_allocations(0)
    pytest.fail("no pool worker took a chunk in a minute of calls")


@pytest.fixture
def wide():
    """A product big enough for two chunks (2 x kMinWorkPerThread multiply-adds and more)."""
    rng = np.random.default_rng(6)
    p = SparsityPattern.from_mask(rng.random((1000, 1000)) < 0.05)
    x = rng.standard_normal((256, 1000)).astype(np.float32)
    v = rng.standard_normal(p.nnz).astype(np.float32)
    if direct.thread_info()["threads"] < 2:
        pytest.skip("one CPU: no pool workers")
    return p, x, v, direct.sparse_matmul(x, v, p.col_ptr, p.row_idx)


def test_a_failing_pool_task_is_rethrown_on_the_caller(wide):
    """Without the pool's barrier a worker's exception calls std::terminate (the process dies)."""
    p, x, v, want = wide
    _until_a_worker_fails(lambda: direct.sparse_matmul(x, v, p.col_ptr, p.row_idx), MemoryError, "bad_alloc")
    assert direct.thread_info()["workers"] >= 1
    for _ in range(20):  # the pool still runs jobs, and right
        np.testing.assert_array_equal(direct.sparse_matmul(x, v, p.col_ptr, p.row_idx), want)


def test_a_failing_pool_task_under_jit_is_an_ffi_error(wide):
    p, x, v, want = wide
    run = jax.jit(lambda a: sparse_matmul(a, v, p))
    _until_a_worker_fails(lambda: jax.block_until_ready(run(x)), Exception, "darnax_sparse_matmul: out of memory")
    np.testing.assert_array_equal(np.asarray(run(x)), want)
