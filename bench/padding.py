"""Benchmark: what a batch that is not a multiple of the kernels' 16 vector lanes costs.

The kernels process samples 16 at a time; B = 17 leaves one live lane in a second lane block.
Each op runs on NumPy arrays through the nanobind module (no XLA) at B = 16, 17 and 32, float32,
the seed sizes (784x2000 at sparsity 0.9 for the products, 2000x2000 at 0.99 for the products and
the sign dynamics); the "vs B=16" column is time / time at B = 16. Work shows best on one thread
(``DARNAX_NUM_THREADS=1``: with two, the second block runs beside the first). Medians of
interleaved rounds after warm-up.

Usage: ``DARNAX_NUM_THREADS=1 python bench/padding.py [--quick] [--batches 16 17 32]``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from _harness import Case, Plan, Results, size_label
from darnax.ops import direct
from kernels import random_pattern


def cases_for(rng: np.random.Generator, d: int, k: int, sparsity: float, batches: list[int]) -> dict[str, list[Case]]:
    """One group of cases per op at one size: a direct call per batch size."""
    p = random_pattern(rng, d, k, 1.0 - sparsity, zero_diagonal=d == k)
    v = (rng.standard_normal(p.nnz) / np.sqrt(d * (1.0 - sparsity))).astype(np.float32)
    top = max(batches)
    x, e = rng.standard_normal((top, d)).astype(np.float32), rng.standard_normal((top, k)).astype(np.float32)
    groups: dict[str, list[Case]] = {"sparse_matmul": [], "sparse_outer": []}
    ref = f"B={batches[0]}"
    for b in batches:
        groups["sparse_matmul"].append(
            Case(f"B={b}", lambda b=b: direct.sparse_matmul(x[:b], v, p.col_ptr, p.row_idx), ref=ref)
        )
        groups["sparse_outer"].append(
            Case(f"B={b}", lambda b=b: direct.sparse_outer(x[:b], e[:b], p.col_ptr, p.row_idx), ref=ref)
        )
    if d != k:
        return groups
    pat = (p.col_ptr, p.row_idx, p.row_ptr, p.col_idx, p.csr_pos)
    h = rng.standard_normal((top, d)).astype(np.float32)
    s0 = rng.choice(np.array([-1.0, 1.0], np.float32), size=(top, d))
    diag = np.zeros(d, np.float32)
    order = np.argsort(rng.random((1, d)), axis=1).astype(np.int32)  # shared: the lane kernels
    groups["sync_steps"] = [
        Case(f"B={b}", lambda b=b: direct.sync_sign_steps(h[:b], v, *pat, diag, s0[:b], 10), 10, ref) for b in batches
    ]
    groups["async_sweeps"] = [
        Case(f"B={b}", lambda b=b: direct.async_sign_sweeps(h[:b], v, *pat, diag, s0[:b], order, 5), 5, ref)
        for b in batches
    ]
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 17, 32])
    args = parser.parse_args()
    print(
        f"# kernels {direct.kernel_isa()}, DARNAX_NUM_THREADS={os.environ.get('DARNAX_NUM_THREADS')}, "
        f"load {os.getloadavg()[0]:.2f}; 'vs darnax' = time / time at B={args.batches[0]}\n"
    )
    plan = Plan(2, 6, 2, 1.0) if args.quick else Plan(3, 60, 6, 6.0)
    rng = np.random.default_rng(0)
    results = Results()
    for d, k, sparsity in [(784, 2000, 0.9), (2000, 2000, 0.99)]:
        for op, cases in cases_for(rng, d, k, sparsity, args.batches).items():
            results.run(op, size_label(d, k, sparsity), {"d": d, "K": k, "sparsity": sparsity}, cases, plan)


if __name__ == "__main__":
    main()
