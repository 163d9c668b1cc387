"""Benchmark of darnax's compiled kernels against dense, BCOO and SciPy baselines.

Each op runs at the seed sizes (B=16; 784x2000 at sparsity 0.9, 2000x2000 at 0.99) and at
scale (20000x20000 at 0.999). darnax is timed twice: on NumPy arrays through the nanobind
module (``direct``, no XLA) and through ``jax.jit`` (XLA FFI), so the dispatch overhead shows.
Baselines: the dense ``jnp`` product of the masked matrix, ``jax.experimental.sparse`` BCOO and
``scipy.sparse`` CSR (when installed). Times are medians of repeats after warm-up, taken in
interleaved rounds so that drift on a shared machine hits every implementation alike; the
ratio column is time / time of darnax under ``jit`` at the same size and number of steps.

Usage: ``python bench/kernels.py [--quick] [--out bench/kernels.json] [--dense-limit-gb 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
from _harness import (
    JIT,
    SKIP_MEMORY,
    Case,
    Plan,
    Results,
    dense_fits,
    failure_status,
    fmt_time,
    rel_err,
    size_label,
)
from jax.experimental import sparse as jsparse

from darnax.ops import (
    SparsityPattern,
    async_sign_sweeps,
    async_sign_sweeps_reference,
    direct,
    sparse_matmul,
    sparse_outer,
    sync_sign_steps,
)

try:
    import scipy
    import scipy.sparse
except ImportError:  # scipy is the optional `bench` extra
    scipy = None

B = 16
SEED_SIZES = [(784, 2000, 0.9), (2000, 2000, 0.99)]
SCALE_SIZES = [(20000, 20000, 0.999)]
SWEEPS = (1, 5)  # async sweeps per call; each is set against twice as many synchronous steps
TARGET_SIZE = "2000x2000 s=0.99"
DIRECT = "darnax direct (nanobind)"


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


def to_bcoo(values: np.ndarray, p: SparsityPattern) -> jsparse.BCOO:
    """The pattern's values as a BCOO matrix with sorted (row-major) indices."""
    indices = np.stack([p.row_idx[p.csr_pos], p.col_idx], axis=1)
    data = jnp.asarray(values[p.csr_pos])
    return jsparse.BCOO((data, jnp.asarray(indices)), shape=p.shape, indices_sorted=True, unique_indices=True)


def to_csr(values: np.ndarray, p: SparsityPattern):
    return scipy.sparse.csr_matrix((values[p.csr_pos], p.col_idx, p.row_ptr), shape=p.shape) if scipy else None


def build_dense(p: SparsityPattern, values: jax.Array, limit_gb: float) -> tuple[jax.Array | None, str]:
    """``W ⊙ M`` as a dense array (built by XLA, no NumPy copy), or None and why not."""
    if not dense_fits(4 * p.shape[0] * p.shape[1], limit_gb):
        return None, SKIP_MEMORY
    try:
        return jax.block_until_ready(jax.jit(p.to_dense)(values)), "ok"
    except Exception as err:  # reported as a row, never fatal
        return None, failure_status(err)


def bench_products(rng: np.random.Generator, d: int, k: int, sparsity: float, plan: Plan, limit_gb: float,
                   results: Results) -> None:
    """sparse_matmul (``x @ (W ⊙ M)``) and sparse_outer (``(x^T e)`` on the pattern) at one size."""
    density = 1.0 - sparsity
    p = random_pattern(rng, d, k, density, zero_diagonal=False)
    size, meta = size_label(d, k, sparsity), {"d": d, "K": k, "sparsity": sparsity, "nnz": p.nnz, "B": B}
    x, e = (rng.standard_normal(shape).astype(np.float32) for shape in ((B, d), (B, k)))
    v = (rng.standard_normal(p.nnz) / np.sqrt(d * density)).astype(np.float32)
    xj, ej, vj = jnp.asarray(x), jnp.asarray(e), jnp.asarray(v)
    w_bcoo, w_csr, no_scipy = to_bcoo(v, p), to_csr(v, p), "n/a (scipy not installed)"

    mm = jax.jit(lambda x, v: sparse_matmul(x, v, p))
    product = jax.jit(lambda x, w: x @ w)
    w_dense, dense_status = build_dense(p, vj, limit_gb)
    check = rel_err(np.asarray(mm(xj, vj), np.float64))
    results.run("sparse_matmul", size, meta, [
        Case(DIRECT, lambda: direct.sparse_matmul(x, v, p.col_ptr, p.row_idx), check=check),
        Case(JIT, lambda: mm(xj, vj)),
        Case("dense jnp x @ (W⊙M)", (lambda: product(xj, w_dense)) if w_dense is not None else None,
             status=dense_status, check=check),
        Case("BCOO jit x @ W", lambda: product(xj, w_bcoo), check=check),
        Case("scipy CSR x @ W", (lambda: x @ w_csr) if scipy else None,
             status="ok" if scipy else no_scipy, check=check),
    ], plan)
    del w_dense

    so = jax.jit(lambda x, e: sparse_outer(x, e, p))
    rows, cols = p.row_idx, p.col_of_entry()
    dense_so = jax.jit(lambda x, e: (x.T @ e)[rows, cols])
    numbers = (([1], [0]), ([], []))
    bcoo_so = jax.jit(lambda x, e: jsparse.bcoo_dot_general_sampled(x.T, e, w_bcoo.indices, dimension_numbers=numbers))
    xt, et = np.ascontiguousarray(x.T), np.ascontiguousarray(e.T)
    dense_ok = dense_fits(4 * d * k, limit_gb)
    want = np.asarray(so(xj, ej), np.float64)
    check = rel_err(want)
    results.run("sparse_outer", size, meta, [
        Case(DIRECT, lambda: direct.sparse_outer(x, e, p.col_ptr, p.row_idx), check=check),
        Case(JIT, lambda: so(xj, ej)),
        Case("dense jnp (x.T @ e) gathered", (lambda: dense_so(xj, ej)) if dense_ok else None,
             status="ok" if dense_ok else SKIP_MEMORY, check=check),
        # BCOO samples in its own (row-major) order: argsort(csr_pos) maps it back to column order.
        Case("BCOO jit bcoo_dot_general_sampled", lambda: bcoo_so(xj, ej),
             check=rel_err(want, np.argsort(p.csr_pos))),
        Case("NumPy gather-einsum (no scipy SDDMM)", lambda: np.einsum("pb,pb->p", xt[rows], et[cols]), check=check),
    ], plan)


def bench_sign(rng: np.random.Generator, n: int, sparsity: float, plan: Plan, limit_gb: float, results: Results,
               with_oracle: bool) -> None:
    """async_sign_sweeps and sync_sign_steps on a square layer, against synchronous-step baselines."""
    density = 1.0 - sparsity
    p = random_pattern(rng, n, n, density, zero_diagonal=True)
    size, meta = size_label(n, n, sparsity), {"d": n, "K": n, "sparsity": sparsity, "nnz": p.nnz, "B": B}
    h = rng.standard_normal((B, n)).astype(np.float32)
    s0 = rng.choice(np.array([-1.0, 1.0], np.float32), size=(B, n))
    v = (rng.standard_normal(p.nnz) / np.sqrt(n * density)).astype(np.float32)
    diag = np.zeros(n, np.float32)
    order = np.argsort(rng.random((1, n)), axis=1).astype(np.int32)  # shared by the batch, as in training
    per_sample = np.argsort(rng.random((B, n)), axis=1).astype(np.int32)
    hj, s0j, vj, diagj, orderj = (jnp.asarray(a) for a in (h, s0, v, diag, order))
    pat = (p.col_ptr, p.row_idx, p.row_ptr, p.col_idx, p.csr_pos)

    def flips_of(direct_out: tuple) -> Callable[[object], dict]:
        def check(out: tuple) -> dict:
            flips = np.asarray(out[1])
            return {"flips_per_iter": float(flips.mean()), "flips_by_iter": flips.mean(0).tolist(),
                    "same_as_direct": bool(np.array_equal(np.asarray(out[0]), direct_out[0]))}
        return check

    def agreement(want: np.ndarray) -> Callable[[object], dict]:
        def check(out: object) -> dict:
            states = np.asarray(out[0] if isinstance(out, tuple) else out)
            return {"state_agreement_with_darnax": float((states == want).mean())}
        return check

    def steps_with(product: Callable, steps: int) -> Callable:
        def run(h, s, w, diag):
            step = lambda _, s: jnp.where(h + product(s, w) + diag * s >= 0, 1.0, -1.0).astype(s.dtype)  # noqa: E731
            return jax.lax.fori_loop(0, steps, step, s)
        return jax.jit(run)

    def scipy_steps(steps: int) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            s = s0
            for _ in range(steps):
                s = np.where(h + s @ w_csr + diag * s >= 0, np.float32(1), np.float32(-1))
            return s
        return run

    cases: list[Case] = []
    for m in SWEEPS:
        out = direct.async_sign_sweeps(h, v, *pat, diag, s0, order, m)
        fn = jax.jit(lambda h, v, d, s, o, m=m: async_sign_sweeps(h, v, p, d, s, o, m))
        cases += [
            Case("async darnax direct", lambda m=m: direct.async_sign_sweeps(h, v, *pat, diag, s0, order, m), m,
                 "async darnax jit", check=flips_of(out)),
            Case("async darnax jit", lambda fn=fn: fn(hj, vj, diagj, s0j, orderj), m, "async darnax jit",
                 check=flips_of(out)),
            Case("async darnax jit, per-sample orders", lambda fn=fn, o=jnp.asarray(per_sample): fn(hj, vj, diagj, s0j, o),
                 m, "async darnax jit"),
        ]
        if with_oracle and m == 1:
            oracle = jax.jit(lambda h, v, d, s, o: async_sign_sweeps_reference(h, v, p, d, s, o, 1))
            cases.append(Case("async jnp oracle (lax.scan)", lambda: oracle(hj, vj, diagj, s0j, orderj), 1,
                              "async darnax jit", check=agreement(out[0])))

    w_bcoo, w_csr = to_bcoo(v, p), to_csr(v, p)
    w_dense, dense_status = build_dense(p, vj, limit_gb)
    for m in sorted({1, *SWEEPS, *(2 * m for m in SWEEPS)}):
        out = direct.sync_sign_steps(h, v, *pat, diag, s0, m)
        fn = jax.jit(lambda h, v, d, s, m=m: sync_sign_steps(h, v, p, d, s, m))
        cases += [
            Case("sync darnax direct", lambda m=m: direct.sync_sign_steps(h, v, *pat, diag, s0, m), m,
                 "sync darnax jit", check=flips_of(out)),
            Case("sync darnax jit", lambda fn=fn: fn(hj, vj, diagj, s0j), m, "sync darnax jit", check=flips_of(out)),
        ]
        if m not in {2 * m for m in SWEEPS}:
            continue
        via_darnax = steps_with(lambda s, w: sparse_matmul(s, w, p), m)
        via_matmul = steps_with(lambda s, w: s @ w, m)
        cases += [
            Case("sync sparse_matmul+sign (darnax jit)", lambda f=via_darnax: f(hj, s0j, vj, diagj), m,
                 "sync darnax jit", check=agreement(out[0])),
            Case("sync dense jnp step", (lambda f=via_matmul: f(hj, s0j, w_dense, diagj)) if w_dense is not None
                 else None, m, "sync darnax jit", dense_status, agreement(out[0])),
            Case("sync BCOO jit step", lambda f=via_matmul: f(hj, s0j, w_bcoo, diagj), m, "sync darnax jit",
                 check=agreement(out[0])),
            Case("sync scipy CSR step", scipy_steps(m) if scipy else None, m, "sync darnax jit",
                 "ok" if scipy else "n/a (scipy not installed)", agreement(out[0])),
        ]
    results.run("sign dynamics", size, meta, cases, plan)
    del w_dense, cases


def find_median(rows: list[dict], op: str, size: str, impl: str, n: int | None = None) -> float | None:
    row = next((r for r in rows if (r["op"], r["size"], r["impl"], r["n_iter"]) == (op, size, impl, n)), None)
    return row.get("median_s") if row else None


def check_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, read off this run's rows (ratios of medians measured side by side)."""
    targets = []

    def add(name: str, size: str, a: float | None, b: float | None, ok: Callable[[float], bool], required: bool):
        value = a / b if a and b else None
        targets.append({"target": name, "size": size, "value": value, "required": required,
                        "met": None if value is None else ok(value)})

    for op, dense in (("sparse_matmul", "dense jnp x @ (W⊙M)"), ("sparse_outer", "dense jnp (x.T @ e) gathered")):
        for size in dict.fromkeys(r["size"] for r in rows if r["op"] == op):
            add(f"{op}: dense / darnax jit >= 20", size, find_median(rows, op, size, dense),
                find_median(rows, op, size, JIT), lambda r: r >= 20, size == TARGET_SIZE)
    op = "sign dynamics"
    for size in dict.fromkeys(r["size"] for r in rows if r["op"] == op):
        for m in SWEEPS:
            for kind, sync in (("jit", "sync darnax jit"), ("direct", "sync darnax direct"),
                               ("jit", "sync sparse_matmul+sign (darnax jit)")):
                add(f"async x{m} / {sync} x{2 * m} <= 1", size, find_median(rows, op, size, f"async darnax {kind}", m),
                    find_median(rows, op, size, sync, 2 * m), lambda r: r <= 1.0, True)
    return targets


def dispatch_overheads(rows: list[dict]) -> list[dict]:
    """darnax through ``jax.jit`` minus darnax on NumPy arrays, per op, size and n."""
    out = []
    for r in rows:
        if r["impl"] in (DIRECT, "async darnax direct", "sync darnax direct") and "median_s" in r:
            jit_label = JIT if r["impl"] == DIRECT else r["impl"].replace("direct", "jit")
            jit = find_median(rows, r["op"], r["size"], jit_label, r["n_iter"])
            if jit is not None:
                out.append({"op": r["op"], "size": r["size"], "impl": r["impl"].replace(" (nanobind)", ""),
                            "n_iter": r["n_iter"], "direct_s": r["median_s"], "jit_s": jit,
                            "overhead_s": jit - r["median_s"]})
    return out


def marginal_costs(rows: list[dict]) -> list[dict]:
    """Cost of one more sweep/step, ``(t(n2) - t(n1)) / (n2 - n1)``, and the fixed part of a call (setup, fields)."""
    out = []
    n1, n2 = min(SWEEPS), max(SWEEPS)
    for r in rows:
        if r["impl"] in ("async darnax jit", "sync darnax jit") and r["n_iter"] == n1 and "median_s" in r:
            t2 = find_median(rows, r["op"], r["size"], r["impl"], n2)
            if t2 is not None:
                per = (t2 - r["median_s"]) / (n2 - n1)
                out.append({"size": r["size"], "impl": r["impl"], "per_iter_s": per, "fixed_s": r["median_s"] - n1 * per})
    return out


def machine_info() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git = {}
    try:
        run = lambda *cmd: subprocess.run(["git", "-C", repo, *cmd], capture_output=True, text=True, check=True).stdout  # noqa: E731
        git = {"commit": run("rev-parse", "HEAD").strip(), "dirty_paths": run("status", "--porcelain").splitlines()}
    except (OSError, subprocess.CalledProcessError):
        pass
    isa, ext = getattr(direct, "kernel_isa", None), direct.__file__
    sources = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(repo, "csrc")) for f in fs]
    stale = any(os.path.getmtime(f) > os.path.getmtime(ext) for f in sources)
    return {"platform": platform.platform(), "cpu_model": model, "cpu_count": os.cpu_count(), "git": git,
            "extension": {"path": ext, "mtime": time.ctime(os.path.getmtime(ext)), "older_than_csrc": stale},
            "darnax_kernel_isa": isa() if callable(isa) else None,
            "DARNAX_NUM_THREADS": os.environ.get("DARNAX_NUM_THREADS"),
            "python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__ if scipy else None,
            "darnax_built_with_jaxlib": direct.built_with_jaxlib, "jax_devices": [str(d) for d in jax.devices()],
            "loadavg_start": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run in seconds: seed sizes, few repeats")
    parser.add_argument("--out", default="bench/kernels.json", help="JSON file for the records ('' for none)")
    parser.add_argument("--dense-limit-gb", type=float, default=2.0,
                        help="largest dense matrix a baseline may hold; beyond it the row says 'skipped (memory)'")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    info = machine_info()
    print(f"# {info['cpu_model']}, {info['cpu_count']} cpus, jax {info['jax']}, numpy {info['numpy']}, "
          f"scipy {info['scipy']}, B={B}, load {info['loadavg_start'][0]:.2f}, darnax {info['git'].get('commit', '?')[:7]}"
          f"{'+dirty' if info['git'].get('dirty_paths') else ''} kernels {info['darnax_kernel_isa']}, "
          f"DARNAX_NUM_THREADS={info['DARNAX_NUM_THREADS']}")
    print("# vs darnax = time / time of darnax jit at the same size and n (> 1: darnax is faster)\n")
    rng = np.random.default_rng(args.seed)
    seed_plan = Plan(1, 4, 2, 0.5) if args.quick else Plan(3, 40, 8, 4.0)
    scale_plan = Plan(1, 6, 3, 20.0)
    results, start = Results(), time.perf_counter()
    for d, k, sparsity in SEED_SIZES:
        bench_products(rng, d, k, sparsity, seed_plan, args.dense_limit_gb, results)
    for d, k, sparsity in SEED_SIZES:
        if d == k:
            bench_sign(rng, d, sparsity, seed_plan, args.dense_limit_gb, results, with_oracle=not args.quick)
    for d, k, sparsity in [] if args.quick else SCALE_SIZES:
        bench_products(rng, d, k, sparsity, scale_plan, args.dense_limit_gb, results)
        bench_sign(rng, d, sparsity, scale_plan, args.dense_limit_gb, results, with_oracle=False)

    targets, overheads = check_targets(results.rows), dispatch_overheads(results.rows)
    print("\n# targets")
    for t in targets:
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        print(f"{t['target']:<62}{t['size']:<21}{value:>8}  {verdict}{'' if t['required'] else ' (informative)'}")
    print("\n# dispatch: darnax jit - darnax direct (medians)")
    for o in overheads:
        n = "" if o["n_iter"] is None else f" n={o['n_iter']}"
        print(f"{o['op']:<15}{o['size']:<21}{o['impl'] + n:<30}{fmt_time(o['direct_s']):>12}"
              f"{fmt_time(o['jit_s']):>12}{o['overhead_s'] * 1e6:>+11.1f} µs")
    marginals = marginal_costs(results.rows)
    print(f"\n# marginal cost per sweep/step, (t(n={max(SWEEPS)}) - t(n={min(SWEEPS)})) / {max(SWEEPS) - min(SWEEPS)}, "
          "and the fixed cost of a call")
    for m in marginals:
        print(f"{'sign dynamics':<15}{m['size']:<21}{m['impl']:<30}{fmt_time(m['per_iter_s']):>12}/iter"
              f"{fmt_time(m['fixed_s']):>12} fixed")
    info |= {"loadavg_end": os.getloadavg(), "wall_s": time.perf_counter() - start,
             "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": info, "quick": args.quick, "batch": B, "targets": targets, "dispatch": overheads, "marginal": marginals,
                       "plans": {"seed": asdict(seed_plan), "scale": asdict(scale_plan)}, "rows": results.rows},
                      f, indent=1)
        print(f"\n# wrote {args.out} ({info['wall_s']:.0f} s, peak RSS {info['peak_rss_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
