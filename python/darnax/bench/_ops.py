"""The cases of ``darnax bench``: every darnax op at one size, beside dense ``jnp``, BCOO and SciPy CSR.

darnax runs twice per op: on NumPy arrays through the nanobind module (``direct``, no XLA) and
through ``jax.jit`` (XLA FFI), so the dispatch cost shows. The ratio column of a row is its time
over darnax under ``jit`` at the same size and sweep/step count (> 1: darnax is faster).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse as jsparse

from darnax.bench._harness import JIT, SKIP_MEMORY, Case, Plan, Results, dense_fits, failure_status, rel_err, size_label
from darnax.ops import (
    SparsityPattern,
    async_sign_sweeps,
    dense_async_sign_sweeps,
    direct,
    random_permutations,
    sparse_matmul,
    sparse_outer,
    sync_sign_steps,
)

try:
    import scipy.sparse
except ImportError:  # scipy is the optional `bench` extra
    scipy = None

DIRECT = "darnax direct (nanobind)"
NO_SCIPY = "n/a (scipy not installed)"
OPS = (
    "sparse_matmul",
    "sparse_outer",
    "async_sign_sweeps",
    "sync_sign_steps",
    "dense_async_sign_sweeps",
    "random_permutations",
)


@dataclass(frozen=True)
class Setup:
    """One configuration: a ``d x k`` pattern at ``sparsity``, batch ``batch``, values of ``dtype``."""

    d: int
    k: int
    sparsity: float
    batch: int
    dtype: str
    dense_limit_gb: float = 2.0

    @property
    def size(self) -> str:
        return size_label(self.d, self.k, self.sparsity)

    def meta(self, nnz: int) -> dict:
        return {"d": self.d, "K": self.k, "sparsity": self.sparsity, "nnz": nnz, "B": self.batch, "dtype": self.dtype}


def random_pattern(rng: np.random.Generator, d: int, k: int, density: float, zero_diagonal: bool) -> SparsityPattern:
    """Exactly ``round(density * d * k)`` distinct uniform coordinates, never a dense mask."""
    target = round(density * d * k)
    lin = np.empty(0, np.int64)
    while lin.size < target:
        lin = np.union1d(lin, rng.integers(0, d * k, size=int(1.05 * (target - lin.size)) + 64))
        if zero_diagonal:
            lin = lin[lin // k != lin % k]
    lin = np.sort(rng.choice(lin, size=target, replace=False))
    return SparsityPattern.from_coo(lin // k, lin % k, (d, k))


def _bcoo(values: np.ndarray, p: SparsityPattern) -> jsparse.BCOO:
    indices = np.stack([p.row_idx[p.csr_pos], p.col_idx], axis=1)
    return jsparse.BCOO(
        (jnp.asarray(values[p.csr_pos]), jnp.asarray(indices)), shape=p.shape, indices_sorted=True, unique_indices=True
    )


def _csr(values: np.ndarray, p: SparsityPattern):
    return scipy.sparse.csr_matrix((values[p.csr_pos], p.col_idx, p.row_ptr), shape=p.shape) if scipy else None


def _dense(p: SparsityPattern, values: jax.Array, limit_gb: float) -> tuple[jax.Array | None, str]:
    """``W ⊙ M`` as a dense array (built by XLA), or None and why not."""
    if not dense_fits(values.dtype.itemsize * p.shape[0] * p.shape[1], limit_gb):
        return None, SKIP_MEMORY
    try:
        return jax.block_until_ready(jax.jit(p.to_dense)(values)), "ok"
    except Exception as err:  # reported as a row, never fatal
        return None, failure_status(err)


def _values(rng: np.random.Generator, s: Setup, nnz: int) -> np.ndarray:
    return (rng.standard_normal(nnz) / np.sqrt(s.d * (1.0 - s.sparsity))).astype(s.dtype)


def bench_products(rng: np.random.Generator, s: Setup, ops: set[str], plan: Plan, results: Results) -> None:
    """sparse_matmul (``y = x (W ⊙ M)``) and sparse_outer (``x^T e`` sampled on the pattern)."""
    p = random_pattern(rng, s.d, s.k, 1.0 - s.sparsity, zero_diagonal=False)
    x, e = (rng.standard_normal(shape).astype(s.dtype) for shape in ((s.batch, s.d), (s.batch, s.k)))
    v = _values(rng, s, p.nnz)
    xj, ej, vj = jnp.asarray(x), jnp.asarray(e), jnp.asarray(v)
    w_bcoo, w_csr = _bcoo(v, p), _csr(v, p)
    product = jax.jit(lambda x, w: x @ w)
    if "sparse_matmul" in ops:
        mm = jax.jit(lambda x, v: sparse_matmul(x, v, p))
        w_dense, dense_status = _dense(p, vj, s.dense_limit_gb)
        check = rel_err(np.asarray(mm(xj, vj), np.float64))
        results.run(
            "sparse_matmul",
            s.size,
            s.meta(p.nnz),
            [
                Case(DIRECT, lambda: direct.sparse_matmul(x, v, p.col_ptr, p.row_idx), check=check),
                Case(JIT, lambda: mm(xj, vj)),
                Case(
                    "dense jnp x @ (W⊙M)",
                    (lambda: product(xj, w_dense)) if w_dense is not None else None,
                    status=dense_status,
                    check=check,
                ),
                Case("BCOO jit x @ W", lambda: product(xj, w_bcoo), check=check),
                Case(
                    "scipy CSR x @ W",
                    (lambda: x @ w_csr) if scipy else None,
                    status="ok" if scipy else NO_SCIPY,
                    check=check,
                ),
            ],
            plan,
        )
        del w_dense
    if "sparse_outer" in ops:
        so = jax.jit(lambda x, e: sparse_outer(x, e, p))
        rows, cols = p.row_idx, p.col_of_entry()
        dense_so = jax.jit(lambda x, e: (x.T @ e)[rows, cols])
        numbers = (([1], [0]), ([], []))
        bcoo_so = jax.jit(
            lambda x, e: jsparse.bcoo_dot_general_sampled(x.T, e, w_bcoo.indices, dimension_numbers=numbers)
        )
        xt, et = np.ascontiguousarray(x.T), np.ascontiguousarray(e.T)
        flat = rows.astype(np.int64) * s.k + cols
        dense_ok = dense_fits(x.itemsize * s.d * s.k, s.dense_limit_gb)
        want = np.asarray(so(xj, ej), np.float64)
        check = rel_err(want)
        results.run(
            "sparse_outer",
            s.size,
            s.meta(p.nnz),
            [
                Case(DIRECT, lambda: direct.sparse_outer(x, e, p.col_ptr, p.row_idx), check=check),
                Case(JIT, lambda: so(xj, ej)),
                Case(
                    "dense jnp (x.T @ e) gathered",
                    (lambda: dense_so(xj, ej)) if dense_ok else None,
                    status="ok" if dense_ok else SKIP_MEMORY,
                    check=check,
                ),
                # BCOO samples in row-major order: argsort(csr_pos) maps it back to darnax's column order.
                Case(
                    "BCOO jit bcoo_dot_general_sampled",
                    lambda: bcoo_so(xj, ej),
                    check=rel_err(want, np.argsort(p.csr_pos)),
                ),
                Case(
                    "NumPy BLAS (x.T @ e) gathered",
                    (lambda: np.take(x.T @ e, flat)) if dense_ok else None,
                    status="ok" if dense_ok else SKIP_MEMORY,
                    check=check,
                ),
                Case("NumPy gather-einsum (no scipy SDDMM)", lambda: _gather_einsum(xt, et, rows, cols), check=check),
            ],
            plan,
        )


def _gather_einsum(xt: np.ndarray, et: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``out[p] = xt[rows[p]] . et[cols[p]]`` by NumPy gathers and ``einsum``, 4096 entries at a time
    (the gathered rows then stay in cache: 2-3x faster than one gather of all entries at B >= 64)."""
    out = np.empty(rows.size, xt.dtype)
    for a in range(0, rows.size, 4096):
        np.einsum("pb,pb->p", xt[rows[a : a + 4096]], et[cols[a : a + 4096]], out=out[a : a + 4096])
    return out


def _steps_with(product: Callable, steps: int) -> Callable:
    """A jitted loop of ``steps`` synchronous sign steps whose coupling product is ``product(s, w)``."""

    def run(h, s, w, diag):
        step = lambda _, s: jnp.where(h + product(s, w) + diag * s >= 0, 1.0, -1.0).astype(s.dtype)  # noqa: E731
        return jax.lax.fori_loop(0, steps, step, s)

    return jax.jit(run)


def _agreement(want: np.ndarray) -> Callable[[object], dict]:
    def check(out: object) -> dict:
        states = np.asarray(out[0] if isinstance(out, tuple) else out)
        return {"state_agreement_with_darnax": float((states == want).mean())}

    return check


def _flips(out: tuple) -> dict:
    flips = np.asarray(out[1])
    return {"flips_per_iter": float(flips.mean())}


def bench_sign(
    rng: np.random.Generator, s: Setup, ops: set[str], sweeps: tuple[int, ...], plan: Plan, results: Results
) -> None:
    """async_sign_sweeps and sync_sign_steps on a square layer against synchronous steps of dense/BCOO/CSR."""
    n, dt = s.d, np.dtype(s.dtype)
    p = random_pattern(rng, n, n, 1.0 - s.sparsity, zero_diagonal=True)
    h = rng.standard_normal((s.batch, n)).astype(dt)
    s0 = rng.choice(np.array([-1.0, 1.0], dt), size=(s.batch, n))
    v, diag = _values(rng, s, p.nnz), np.zeros(n, dt)
    order = np.argsort(rng.random((1, n)), axis=1).astype(np.int32)  # shared by the batch, as in training
    hj, s0j, vj, diagj, orderj = (jnp.asarray(a) for a in (h, s0, v, diag, order))
    pat = (p.col_ptr, p.row_idx, p.row_ptr, p.col_idx, p.csr_pos)
    cases: list[Case] = []
    for m in sweeps if "async_sign_sweeps" in ops else ():
        fn = jax.jit(lambda h, v, d, s, o, m=m: async_sign_sweeps(h, v, p, d, s, o, m))
        cases += [
            Case(
                "async darnax direct",
                lambda m=m: direct.async_sign_sweeps(h, v, *pat, diag, s0, order, m),
                m,
                "async darnax jit",
                check=_flips,
            ),
            Case("async darnax jit", lambda fn=fn: fn(hj, vj, diagj, s0j, orderj), m, "async darnax jit", check=_flips),
        ]
    w_bcoo, w_csr = _bcoo(v, p), _csr(v, p)
    w_dense, dense_status = _dense(p, vj, s.dense_limit_gb) if "sync_sign_steps" in ops else (None, "")
    for m in sweeps if "sync_sign_steps" in ops else ():
        want = direct.sync_sign_steps(h, v, *pat, diag, s0, m)[0]
        fn = jax.jit(lambda h, v, d, s, m=m: sync_sign_steps(h, v, p, d, s, m))
        via_matmul = _steps_with(lambda s, w: s @ w, m)

        def scipy_steps(m: int = m) -> np.ndarray:
            state = s0
            for _ in range(m):
                state = np.where(h + state @ w_csr + diag * state >= 0, dt.type(1), dt.type(-1))
            return state

        cases += [
            Case(
                "sync darnax direct",
                lambda m=m: direct.sync_sign_steps(h, v, *pat, diag, s0, m),
                m,
                "sync darnax jit",
                check=_flips,
            ),
            Case("sync darnax jit", lambda fn=fn: fn(hj, vj, diagj, s0j), m, "sync darnax jit", check=_flips),
            Case(
                "sync dense jnp step",
                (lambda f=via_matmul, w=w_dense: f(hj, s0j, w, diagj)) if w_dense is not None else None,
                m,
                "sync darnax jit",
                dense_status,
                _agreement(want),
            ),
            Case(
                "sync BCOO jit step",
                lambda f=via_matmul: f(hj, s0j, w_bcoo, diagj),
                m,
                "sync darnax jit",
                check=_agreement(want),
            ),
            Case(
                "sync scipy CSR step",
                scipy_steps if scipy else None,
                m,
                "sync darnax jit",
                "ok" if scipy else NO_SCIPY,
                _agreement(want),
            ),
        ]
    if cases:
        results.run("sign dynamics", s.size, s.meta(p.nnz), cases, plan)
    del w_dense, cases


def bench_dense_async(
    rng: np.random.Generator, s: Setup, sweeps: tuple[int, ...], plan: Plan, results: Results
) -> None:
    """dense_async_sign_sweeps (couplings ``J``, N x N) against synchronous dense ``jnp`` steps."""
    n, dt = s.d, np.dtype(s.dtype)
    if not dense_fits(dt.itemsize * n * n, s.dense_limit_gb):
        print(f"dense async    {size_label(n, n, 0.0):<21}  {SKIP_MEMORY}")
        return
    J = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(dt)
    h = rng.standard_normal((s.batch, n)).astype(dt)
    s0 = rng.choice(np.array([-1.0, 1.0], dt), size=(s.batch, n))
    Jj, hj, s0j, zero = jnp.asarray(J), jnp.asarray(h), jnp.asarray(s0), jnp.zeros(n, dt)
    cases = []
    for m in sweeps:
        order = jnp.asarray(np.stack([rng.permutation(n) for _ in range(m)])[None], jnp.int32)  # (1, m, N)
        fn = jax.jit(lambda h, J, s, o, m=m: dense_async_sign_sweeps(h, J, s, o, m))
        steps = _steps_with(lambda s, w: s @ w, m)
        cases += [
            Case(
                "dense async darnax jit",
                lambda fn=fn, o=order: fn(hj, Jj, s0j, o),
                m,
                "dense async darnax jit",
                check=_flips,
            ),
            Case("sync dense jnp step", lambda f=steps: f(hj, s0j, Jj, zero), m, "dense async darnax jit"),
        ]
    results.run(
        "dense async",
        size_label(n, n, 0.0),
        {"d": n, "K": n, "sparsity": 0.0, "B": s.batch, "dtype": s.dtype},
        cases,
        plan,
    )


def bench_permutations(
    rng: np.random.Generator, s: Setup, sweeps: tuple[int, ...], plan: Plan, results: Results
) -> None:
    """random_permutations of ``(B, n_sweeps, N)`` uint32 words against ``argsort`` in jnp and NumPy."""
    cases = []
    for m in sweeps:
        bits = rng.integers(0, 2**32, size=(s.batch, m, s.k), dtype=np.uint32)
        bj = jnp.asarray(bits)
        darnax_fn = jax.jit(random_permutations)
        argsort = jax.jit(lambda b: jnp.argsort(b, axis=-1).astype(jnp.int32))
        cases += [
            Case("darnax jit (Fisher-Yates)", lambda f=darnax_fn, b=bj: f(b), m, "darnax jit (Fisher-Yates)"),
            Case("jnp argsort of bits jit", lambda f=argsort, b=bj: f(b), m, "darnax jit (Fisher-Yates)"),
            Case("NumPy argsort of bits", lambda b=bits: np.argsort(b, axis=-1), m, "darnax jit (Fisher-Yates)"),
        ]
    results.run("permutations", f"{s.batch}x{s.k}", {"K": s.k, "B": s.batch}, cases, plan)
