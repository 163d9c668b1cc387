"""Benchmark: asynchronous sweeps of a dense recurrent layer, dense kernel against the pattern path.

``RecurrentDiscrete.async_sweeps`` used to run :func:`async_sign_sweeps` on the pattern of every
off-diagonal entry (``N^2`` int32 indices, gathered from ``J`` inside the jitted step); it now runs
:func:`dense_async_sign_sweeps` on ``J`` itself. Both give the same bits. For N in 200, 1000, 2000
(B = 16, Gaussian ``J / sqrt(N)``, diagonal 0.5, float32, orders shared by the batch as the
orchestrator draws them) this times one jitted call of each, compiled with ``J`` as an argument,
and reports the compiled program's size (HLO text) and compile time; the oracle (``lax.scan``
over units) runs at the smallest size only. Medians of interleaved rounds after warm-up.

Usage: ``python bench/dense_sign_dynamics.py [--quick] [--sizes 200 1000 2000]``.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from _harness import Case, Plan, Results, size_label
from darnax.ops import SparsityPattern, async_sign_sweeps, dense_async_sign_sweeps, dense_async_sign_sweeps_reference

B = 16
DENSE = "dense_async_sign_sweeps jit"


def compiled(fn, *args) -> tuple[object, int, float]:
    """``jax.jit(fn)`` compiled for ``args``, its HLO text length and its compile time (s)."""
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    program = lowered.compile()
    return program, len(lowered.as_text()), time.perf_counter() - start


def bench_size(rng: np.random.Generator, n: int, plan: Plan, with_oracle: bool, results: Results) -> None:
    J = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
    np.fill_diagonal(J, 0.5)
    h = jnp.asarray(rng.standard_normal((B, n)), jnp.float32)
    s0 = jnp.asarray(rng.choice(np.array([-1.0, 1.0], np.float32), size=(B, n)))
    Jj = jnp.asarray(J)
    pattern = SparsityPattern.from_mask(~np.eye(n, dtype=bool))
    cases, sizes = [], {}
    for m in (1, 5):
        order = jnp.asarray(np.stack([rng.permutation(n) for _ in range(m)])[None], jnp.int32)  # (1, m, N)

        def dense(J, h, s, o, m=m):
            return dense_async_sign_sweeps(h, J, s, o, m)

        def pattern_path(J, h, s, o, m=m):
            return async_sign_sweeps(h, pattern.gather(J), pattern, jnp.diagonal(J), s, o, m)

        want = None
        for label, fn in ((DENSE, dense), ("off-diagonal pattern jit (before)", pattern_path)):
            program, chars, seconds = compiled(fn, Jj, h, s0, order)
            sizes[(label, m)] = (chars, seconds)
            out = jax.block_until_ready(program(Jj, h, s0, order))
            want = out if want is None else want
            same = all(np.array_equal(a, b) for a, b in zip(out, want))
            cases.append(
                Case(
                    label,
                    lambda p=program, o=order: p(Jj, h, s0, o),
                    m,
                    DENSE,
                    check=lambda _, same=same, c=chars, t=seconds: {
                        "bitwise_equal_to_dense": same,
                        "hlo_chars": c,
                        "compile_s": t,
                    },
                )
            )
        if with_oracle and m == 1:
            oracle = jax.jit(lambda J, h, s, o: dense_async_sign_sweeps_reference(h, J, s, o, 1))
            cases.append(Case("jnp oracle (lax.scan)", lambda o=order, f=oracle: f(Jj, h, s0, o), 1, DENSE))
    results.run("dense async", size_label(n, n, 0.0), {"N": n, "B": B}, cases, plan)
    for (label, m), (chars, seconds) in sizes.items():
        print(f"{'':<36}{label:<38}{m:>3}  HLO {chars / 1e3:9.1f} kB  compile {seconds:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 2000])
    args = parser.parse_args()
    print(
        f"# B={B}, float32, DARNAX_NUM_THREADS={os.environ.get('DARNAX_NUM_THREADS')}, load {os.getloadavg()[0]:.2f}; "
        f"'vs darnax' = time / time of {DENSE}\n"
    )
    plan = Plan(2, 6, 2, 1.0) if args.quick else Plan(3, 30, 6, 6.0)
    rng = np.random.default_rng(0)
    results = Results()
    for n in args.sizes:
        bench_size(rng, n, plan, with_oracle=n == min(args.sizes), results=results)


if __name__ == "__main__":
    main()
