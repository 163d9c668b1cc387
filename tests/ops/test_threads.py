"""Results depend neither on the kernel thread count (DARNAX_NUM_THREADS) nor on the kernel build
(DARNAX_KERNELS=baseline forces the portable one; the default picks AVX2 where the CPU has it)."""

import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np, jax.numpy as jnp
from darnax.ops import SparsityPattern, sparse_matmul, sparse_outer, async_sign_sweeps, sync_sign_steps
rng = np.random.default_rng(0)
n, b = 1500, 37
mask = rng.random((n, n)) < 0.02
np.fill_diagonal(mask, False)
p = SparsityPattern.from_mask(mask)
x = rng.standard_normal((b, n)).astype(np.float32)
s = np.where(rng.random((b, n)) < 0.5, -1.0, 1.0).astype(np.float32)
v = rng.standard_normal(p.nnz).astype(np.float32) / 5
d = np.full(n, 0.3, np.float32)
order = np.stack([rng.permutation(n) for _ in range(b)]).astype(np.int32)
np.savez(sys.argv[1], matmul=sparse_matmul(x, v, p), outer=sparse_outer(x, s, p),
         async_s=async_sign_sweeps(x, v, p, d, s, order, 3)[0], sync_s=sync_sign_steps(x, v, p, d, s, 3)[0])
"""


def test_threads_and_kernel_builds_agree_bitwise(tmp_path):
    results = []
    for threads, build in (("1", "baseline"), ("3", "best")):
        out = tmp_path / f"t{threads}.npz"
        env = {**os.environ, "DARNAX_NUM_THREADS": threads, "DARNAX_KERNELS": build}
        subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, env=env)
        results.append(np.load(out))
    for name in results[0].files:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)
