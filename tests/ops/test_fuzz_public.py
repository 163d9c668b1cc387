"""Fuzzing every public op with bad and extreme inputs (the pattern constructors: test_fuzz_patterns.py).

Each example changes at most one argument of a valid call (a wrong dtype, rank or size, NaN or
inf values, an empty or a 70,000-row batch, a bad count, a non-permutation order) and runs it
eagerly or under ``jax.jit``. The call must raise ``TypeError``/``ValueError`` naming that
argument, or return the oracle's result; nothing may crash the process. Values are multiples of
1/2 in [-1, 1] (every sum the kernels form is exact in float32), so results are compared bit for
bit, NaN and inf included wherever the oracle is defined on stored entries alone.

Under ``jit`` Python sees shapes and dtypes, not values: a traced non-permutation ``order`` is
refused by the C++ handler, which raises ``jax.errors.JaxRuntimeError`` naming ``order``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darnax.ops import (
    SparsityPattern,
    async_sign_sweeps,
    async_sign_sweeps_reference,
    dense_async_sign_sweeps,
    dense_async_sign_sweeps_reference,
    random_permutations,
    random_permutations_reference,
    sparse_matmul,
    sparse_outer,
    sparse_outer_reference,
    sync_sign_steps,
    sync_sign_steps_reference,
)

HUGE_BATCH = 70_000
BAD_DTYPES = (np.int32, np.int8, np.uint32, np.bool_, np.complex64, np.float16, jnp.bfloat16)
MODES = st.sampled_from(["eager", "jit"])
BAD_COUNTS = (-1, -(2**40), 1.5, float("nan"), True, "2", None)


class Case:
    """One call: named arguments, the one argument changed (or None) and the error it must raise."""

    def __init__(
        self, args: dict, bad: str | None = None, error: type[Exception] | None = None, nonfinite: bool = False
    ):
        self.args, self.bad, self.error, self.nonfinite = args, bad, error, nonfinite


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Multiples of 1/2 in [-1, 1]."""
    return (rng.integers(-2, 3, size=shape) / 2).astype(dtype)


def spins(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(dtype)


@st.composite
def batches(draw: st.DrawFn) -> int:
    return draw(st.sampled_from([0, 1, 2, 5, 17, HUGE_BATCH]))


@st.composite
def patterns(draw: st.DrawFn, square: bool = False) -> tuple[np.random.Generator, SparsityPattern]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d = draw(st.integers(1, 6))
    k = d if square else draw(st.integers(1, 6))
    mask = rng.random((d, k)) < draw(st.sampled_from([0.0, 0.3, 0.7, 1.0]))
    if square:
        np.fill_diagonal(mask, False)
    return rng, SparsityPattern.from_mask(mask)


@st.composite
def mutated(draw: st.DrawFn, case: Case, floats: dict[str, int | None]) -> Case:
    """``case`` with at most one float argument changed: ``floats`` maps each float argument to
    the axis whose size is checked (None: the whole shape is fixed by another argument)."""
    kind = draw(st.sampled_from(["none", "none", "nonfinite", "dtype", "mixed", "rank", "size", "list"]))
    if kind == "none":
        return case
    name = draw(st.sampled_from(sorted(floats)))
    arr = np.asarray(case.args[name])
    args = dict(case.args)
    if kind == "nonfinite":
        if arr.size:
            flat = arr.copy().reshape(-1)
            picks = draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=3))
            flat[picks] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            args[name] = flat.reshape(arr.shape)
        return Case(args, nonfinite=bool(arr.size))
    if kind == "dtype":
        args[name] = arr.astype(draw(st.sampled_from(BAD_DTYPES)))
        return Case(args, name, TypeError)
    if kind == "mixed":
        args[name] = arr.astype(np.float64 if arr.dtype == np.float32 else np.float32)
        return Case(args, name, TypeError)
    if kind == "rank":  # one axis more, or one less
        args[name] = arr[None] if draw(st.booleans()) else np.zeros(arr.shape[1:], arr.dtype)
        return Case(args, name, ValueError)
    if kind == "size":
        axis = floats[name] if floats[name] is not None else draw(st.integers(0, arr.ndim - 1))
        grow = draw(st.integers(1, 3))
        pad = [(0, 0)] * arr.ndim
        pad[axis] = (0, grow)
        args[name] = np.pad(arr, pad)
        return Case(args, name, ValueError)
    if not arr.size:
        return case
    args[name] = arr.tolist()  # a nested list: float64 (x64 is on in the tests), fine if the others are
    return Case(args, name, TypeError if arr.dtype == np.float32 else None)


def call(mode: str, fn, case: Case, static: tuple[str, ...] = ()):
    """``fn(**args)`` eagerly, or under ``jit`` with the array arguments traced."""
    if mode == "eager":
        return fn(**case.args)
    kept = {k: v for k, v in case.args.items() if k in static or isinstance(v, (list, SparsityPattern))}
    traced = {k: v for k, v in case.args.items() if k not in kept}
    return jax.jit(lambda **t: fn(**t, **kept))(**traced)


def outcome(mode: str, fn, case: Case, static: tuple[str, ...] = ()):
    """The result, after checking the error when ``case`` must fail; None when it failed as it should."""
    if case.error is None:
        return call(mode, fn, case, static)
    with pytest.raises(case.error) as info:
        call(mode, fn, case, static)
    assert case.bad in str(info.value), f"the error does not name {case.bad}: {info.value}"
    return None


def same(got, want) -> None:
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))  # NaN equals NaN here


def stored_matmul(x: np.ndarray, values: np.ndarray, pattern: SparsityPattern) -> np.ndarray:
    """``x @ W`` summed over stored entries only (the dense oracle also multiplies x by the zeros
    off the pattern, which turns an inf in ``x`` into NaN where the kernel never reads it)."""
    y = np.zeros((x.shape[0], pattern.shape[1]), np.float64)
    cols = pattern.col_of_entry()
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0, inf - inf: NaN, as in the kernel
        for p in range(pattern.nnz):
            y[:, cols[p]] += x[:, pattern.row_idx[p]].astype(np.float64) * float(values[p])
    return y.astype(x.dtype)


# ---------------------------------------------------------------------- products
@given(data=st.data(), mode=MODES, p=patterns(), batch=batches(), dtype=st.sampled_from([np.float32, np.float64]))
def test_sparse_matmul(data, mode, p, batch, dtype):
    rng, pattern = p
    base = Case(
        {
            "x": values(rng, (batch, pattern.shape[0]), dtype),
            "values": values(rng, (pattern.nnz,), dtype),
            "pattern": pattern,
        }
    )
    case = data.draw(mutated(base, {"x": 1, "values": 0}))
    got = outcome(mode, sparse_matmul, case)
    if got is not None:
        x, v = np.asarray(case.args["x"]), np.asarray(case.args["values"])
        assert got.shape == (batch, pattern.shape[1]) and got.dtype == x.dtype
        same(got, stored_matmul(x, v, pattern))


@given(data=st.data(), mode=MODES, p=patterns(), batch=batches(), dtype=st.sampled_from([np.float32, np.float64]))
def test_sparse_outer(data, mode, p, batch, dtype):
    rng, pattern = p
    base = Case(
        {
            "x": values(rng, (batch, pattern.shape[0]), dtype),
            "e": values(rng, (batch, pattern.shape[1]), dtype),
            "pattern": pattern,
        }
    )
    case = data.draw(mutated(base, {"x": 1, "e": None}))
    got = outcome(mode, sparse_outer, case)
    if got is not None:
        x, e = np.asarray(case.args["x"]), np.asarray(case.args["e"])
        assert got.shape == (pattern.nnz,) and got.dtype == x.dtype
        want = sparse_outer_reference(jnp.asarray(x, jnp.float64), jnp.asarray(e, jnp.float64), pattern)
        same(got, np.asarray(want).astype(x.dtype))


# ---------------------------------------------------------------------- sign dynamics
def check_dynamics(case: Case, got, reference, n: int, batch: int, n_iter: int, dtype) -> None:
    states, flips, fields = got
    assert states.shape == fields.shape == (batch, n) and flips.shape == (batch, n_iter) and flips.dtype == jnp.int32
    assert states.dtype == fields.dtype == dtype
    assert np.all((np.asarray(flips) >= 0) & (np.asarray(flips) <= n))
    if n_iter == 0:  # nothing ran: the initial states, whatever they hold
        same(states, case.args["s0"])
    else:
        assert np.all(np.abs(np.asarray(states)) == 1)
    if not case.nonfinite:  # NaN fields make every unit -1 (NaN >= 0 is false); the oracle's NaNs differ in where
        for g, w in zip(got, reference(**case.args)):
            same(g, w)


@st.composite
def counts(draw: st.DrawFn, case: Case, name: str) -> Case:
    """``case`` with its count argument replaced by a bad one, sometimes."""
    if case.error is not None or draw(st.integers(0, 5)):
        return case
    return Case({**case.args, name: draw(st.sampled_from(BAD_COUNTS))}, name, (ValueError, TypeError))


@given(
    data=st.data(),
    mode=MODES,
    p=patterns(square=True),
    batch=batches(),
    n_steps=st.integers(0, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_sync_sign_steps(data, mode, p, batch, n_steps, dtype):
    rng, pattern = p
    n = pattern.shape[0]
    base = Case(
        {
            "h_ext": values(rng, (batch, n), dtype),
            "values": values(rng, (pattern.nnz,), dtype),
            "pattern": pattern,
            "diag": values(rng, (n,), dtype),
            "s0": spins(rng, (batch, n), dtype),
            "n_steps": n_steps,
        }
    )
    case = data.draw(counts(data.draw(mutated(base, {"h_ext": 1, "values": 0, "diag": 0, "s0": None})), "n_steps"))
    got = outcome(mode, sync_sign_steps, case, static=("n_steps",))
    if got is not None:
        check_dynamics(case, got, sync_sign_steps_reference, n, batch, n_steps, np.asarray(case.args["h_ext"]).dtype)


@st.composite
def orders(draw: st.DrawFn, rng: np.random.Generator, n: int, batch: int, n_sweeps: int) -> np.ndarray:
    """Valid visiting orders in one of the accepted layouts."""
    lead = draw(st.sampled_from([None, 1, batch]))
    shape = (n,) if lead is None else draw(st.sampled_from([(lead, n), (lead, n_sweeps, n)]))
    rows = np.array([rng.permutation(n) for _ in range(int(np.prod(shape[:-1], dtype=np.int64)))], np.int32)
    return rows.reshape(shape)


@st.composite
def bad_orders(draw: st.DrawFn, case: Case, n: int, batch: int) -> Case:
    """``case`` with a bad ``order`` (if none of its other arguments is bad), sometimes."""
    if case.error is not None or draw(st.integers(0, 2)):
        return case
    order = np.asarray(case.args["order"])
    kind = draw(
        st.sampled_from(["repeat", "range", "negative", "dtype", "shape"] if order.size else ["dtype", "shape"])
    )
    if kind == "dtype":
        return Case(
            {**case.args, "order": order.astype(draw(st.sampled_from([np.int64, np.uint32, np.float32, np.int16])))},
            "order",
            TypeError,
        )
    if kind == "shape":
        return Case({**case.args, "order": np.zeros((batch + 2, n + 1), np.int32)}, "order", ValueError)
    flat = order.reshape(-1).copy()
    at = draw(st.integers(0, flat.size - 1))
    neighbour = at - at % n + (at + 1) % n  # the next entry of the same row
    flat[at] = {
        "repeat": flat[neighbour] if n > 1 else 1,
        "range": n + draw(st.integers(0, 2**20)),
        "negative": -1 - draw(st.integers(0, 2**20)),
    }[kind]
    # eagerly Python sees the values (ValueError); under jit the handler refuses them
    return Case({**case.args, "order": flat.reshape(order.shape)}, "order", "non-permutation")


def outcome_with_orders(mode: str, fn, case: Case, static: tuple[str, ...]):
    if case.error != "non-permutation":
        return outcome(mode, fn, case, static)
    if mode != "eager" and np.shape(case.args["h_ext"])[0] == 0:
        # No samples: every result is empty, so XLA never runs the kernel that would check the
        # traced order (eagerly Python checks it); the call returns empty results.
        assert all(np.size(r) == 0 for r in jax.block_until_ready(call(mode, fn, case, static)))
        return None
    error = ValueError if mode == "eager" else jax.errors.JaxRuntimeError
    with pytest.raises(error, match=r"order: (every row must be a permutation|not a permutation)"):
        jax.block_until_ready(call(mode, fn, case, static))
    return None


@given(
    data=st.data(),
    mode=MODES,
    p=patterns(square=True),
    batch=batches(),
    n_sweeps=st.integers(0, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_async_sign_sweeps(data, mode, p, batch, n_sweeps, dtype):
    rng, pattern = p
    n = pattern.shape[0]
    batch = min(batch, 300)  # the oracle visits units one by one
    base = Case(
        {
            "h_ext": values(rng, (batch, n), dtype),
            "values": values(rng, (pattern.nnz,), dtype),
            "pattern": pattern,
            "diag": values(rng, (n,), dtype),
            "s0": spins(rng, (batch, n), dtype),
            "order": data.draw(orders(rng, n, batch, n_sweeps)),
            "n_sweeps": n_sweeps,
        }
    )
    case = data.draw(mutated(base, {"h_ext": 1, "values": 0, "diag": 0, "s0": None}))
    case = data.draw(bad_orders(data.draw(counts(case, "n_sweeps")), n, batch))
    got = outcome_with_orders(mode, async_sign_sweeps, case, static=("n_sweeps",))
    if got is not None:
        check_dynamics(case, got, async_sign_sweeps_reference, n, batch, n_sweeps, np.asarray(case.args["h_ext"]).dtype)


@given(
    data=st.data(),
    mode=MODES,
    n=st.integers(1, 6),
    batch=batches(),
    n_sweeps=st.integers(0, 3),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_dense_async_sign_sweeps(data, mode, n, batch, n_sweeps, dtype, seed):
    rng = np.random.default_rng(seed)
    batch = min(batch, 300)
    base = Case(
        {
            "h_ext": values(rng, (batch, n), dtype),
            "couplings": values(rng, (n, n), dtype),
            "s0": spins(rng, (batch, n), dtype),
            "order": data.draw(orders(rng, n, batch, n_sweeps)),
            "n_sweeps": n_sweeps,
        }
    )
    case = data.draw(mutated(base, {"h_ext": 1, "couplings": None, "s0": None}))
    case = data.draw(bad_orders(data.draw(counts(case, "n_sweeps")), n, batch))
    got = outcome_with_orders(mode, dense_async_sign_sweeps, case, static=("n_sweeps",))
    if got is not None:
        check_dynamics(
            case, got, dense_async_sign_sweeps_reference, n, batch, n_sweeps, np.asarray(case.args["h_ext"]).dtype
        )


# ---------------------------------------------------------------------- permutations
@given(
    mode=MODES,
    shape=st.sampled_from([(0,), (5,), (0, 4), (3, 0), (2, 3, 7), (HUGE_BATCH // 10, 9), (1, 1000)]),
    dtype=st.sampled_from([np.uint32, np.uint32, np.uint64, np.int32, np.float32, np.bool_]),
    rank0=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_permutations(mode, shape, dtype, rank0, seed):
    bits = np.random.default_rng(seed).integers(0, 2**32, size=() if rank0 else shape, dtype=np.uint64).astype(dtype)
    case = Case({"bits": bits})
    if dtype != np.uint32:
        case = Case({"bits": bits}, "bits", TypeError)
    elif rank0:
        case = Case({"bits": bits}, "bits", ValueError)
    got = outcome(mode, random_permutations, case)
    if got is not None:
        assert got.shape == bits.shape and got.dtype == jnp.int32
        same(got, random_permutations_reference(bits))
        if bits.size:
            rows = np.sort(np.asarray(got).reshape(-1, bits.shape[-1]), axis=1)
            same(rows, np.broadcast_to(np.arange(bits.shape[-1]), rows.shape))


# ---------------------------------------------------------------------- constructors
