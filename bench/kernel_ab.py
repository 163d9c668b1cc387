"""Side-by-side A/B of two git revisions' product kernels in one process (no XLA, no Python layer).

``python bench/kernel_ab.py REV_A REV_B [--batch 16 64 256] [--ops mm so] [--json FILE]``

Each revision's ``csrc`` (``git archive``; ``WORKTREE`` for the working tree) is compiled with
g++ as the AVX2 build is (``-O3 -mavx2 -mno-fma -ffp-contract=off -falign-loops=64``) into a
small shared library calling ``sparse_matmul`` (mm) and ``sparse_outer`` (so), float32; both
libraries are loaded with ctypes and called in turn, call by call (the order flips every round),
so that load from other jobs falls on both alike. Prints medians and A/B time ratios.
Threads: ``DARNAX_NUM_THREADS`` as for darnax.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
from darnax.bench._ops import random_pattern  # noqa: E402

WRAP = """
#define DARNAX_ISA avx2
#define DARNAX_VECTOR_BYTES 32
#include "kernels/sparse_matmul.h"
#include "kernels/sparse_outer.h"
extern "C" void mm(const float* x, long B, const float* v, const int* ptr, const int* idx, long K, long d, long nnz,
                   float* out) {
  darnax::sparse_matmul<float>(x, B, v, darnax::Compressed{ptr, idx, K, d, nnz}, out);
}
extern "C" void so(const float* x, const float* e, long B, const int* ptr, const int* idx, long K, long d, long nnz,
                   float* out) {
  darnax::sparse_outer<float>(x, e, B, darnax::Compressed{ptr, idx, K, d, nnz}, out);
}
"""
FLAGS = ["-O3", "-DNDEBUG", "-std=c++17", "-shared", "-fPIC", "-mavx2", "-mno-fma", "-ffp-contract=off"]
FLAGS += ["-falign-loops=64", "-pthread"]
P, L = ctypes.c_void_p, ctypes.c_long


def build(rev: str, tmp: Path) -> ctypes.CDLL:
    """The revision's kernels as a ctypes library."""
    src = ROOT if rev == "WORKTREE" else tmp / rev
    if rev != "WORKTREE":
        src.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "csrc"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    (tmp / "wrap.cc").write_text(WRAP)
    lib = tmp / f"{rev.replace('/', '_')}.so"
    cmd = ["g++", *FLAGS, "-I", str(src / "csrc"), str(tmp / "wrap.cc"), str(src / "csrc/kernels/scratch.cc")]
    subprocess.run([*cmd, "-o", str(lib)], check=True)
    out = ctypes.CDLL(str(lib))
    out.mm.argtypes = [P, L, P, P, P, L, L, L, P]
    out.so.argtypes = [P, P, L, P, P, L, L, L, P]
    return out


def call(op: str, lib: ctypes.CDLL, batch: int, d: int, k: int, nnz: int, addr: list[int]) -> None:
    """One kernel call on x, e, values, col_ptr, row_idx, out at ``addr``."""
    x, e, v, ptr, idx, out = addr
    if op == "mm":
        lib.mm(x, batch, v, ptr, idx, k, d, nnz, out)
    else:
        lib.so(x, e, batch, ptr, idx, k, d, nnz, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("revs", nargs=2, metavar="REV")
    p.add_argument("--batch", nargs="+", type=int, default=[16, 64, 256])
    p.add_argument("--ops", nargs="+", choices=("mm", "so"), default=["mm", "so"])
    p.add_argument("--json")
    args = p.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        libs = [build(rev, Path(tmp)) for rev in args.revs]
        for d, k, s in [(784, 2000, 0.9), (2000, 2000, 0.99)]:
            rng = np.random.default_rng(0)
            pat = random_pattern(rng, d, k, 1 - s, False)
            ptr, idx = pat.col_ptr.astype(np.int32), pat.row_idx.astype(np.int32)
            v = rng.standard_normal(pat.nnz).astype(np.float32)
            for B in args.batch:
                x, e = (rng.standard_normal(shape).astype(np.float32) for shape in ((B, d), (B, k)))
                out = np.empty(max(pat.nnz, B * k), np.float32)
                addr = [a.ctypes.data for a in (x, e, v, ptr, idx, out)]
                reps = max(100, int(3e6 / (B * pat.nnz / 1000)))
                for op in args.ops:
                    times = [[], []]
                    for lib in libs * 2:
                        call(op, lib, B, d, k, pat.nnz, addr)
                    for r in range(reps):
                        for i in (0, 1) if r % 2 == 0 else (1, 0):
                            t0 = time.perf_counter()
                            call(op, libs[i], B, d, k, pat.nnz, addr)
                            times[i].append(time.perf_counter() - t0)
                    med = [1e6 * float(np.median(t)) for t in times]
                    res[f"{op} {d}x{k} B={B}"] = {"a_us": med[0], "b_us": med[1], "a_over_b": med[0] / med[1]}
                    print(f"{op} {d}x{k} B={B:<4d} A {med[0]:9.1f} µs  B {med[1]:9.1f} µs  A/B {med[0] / med[1]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
