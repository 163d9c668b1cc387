"""Results depend neither on the kernel thread count (DARNAX_NUM_THREADS) nor on the kernel build
(DARNAX_KERNELS=baseline forces the portable one; the default picks AVX-512 or AVX2 where the CPU has
them)."""

import os
import subprocess
import sys

import numpy as np

from tests.ops.cpu import cpu_flags

SCRIPT = """
import sys, numpy as np, jax.numpy as jnp
from darnax.ops import SparsityPattern, sparse_matmul, sparse_outer, async_sign_sweeps, sync_sign_steps, dense_async_sign_sweeps
from darnax.ops import direct  # float64 products without jax's x64 mode
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
x64, s64, e64 = x.astype(np.float64), s.astype(np.float64), rng.standard_normal((b, n)) * (rng.random((b, n)) < 0.1)
index = (p.col_ptr, p.row_idx)
np.savez(sys.argv[1], matmul=sparse_matmul(x, v, p), outer=sparse_outer(x, s, p), outer16=sparse_outer(x[:16], s[:16], p),
         matmul64=direct.sparse_matmul(x64, v.astype(np.float64), *index), outer64=direct.sparse_outer(s64, e64, *index),
         outer64_16=direct.sparse_outer(s64[:16], e64[:16], *index),
         async_s=async_sign_sweeps(x, v, p, d, s, order, 3)[0], sync_s=sync_sign_steps(x, v, p, d, s, 3)[0],
         lanes_s=async_sign_sweeps(x, v, p, d, s, order[:1], 3)[0],
         dense=dense_async_sign_sweeps(x, np.asarray(p.to_dense(v)) + np.diag(d), s, order, 3)[2],
         **{f"blocks_{b}_{steps}_{i}": np.asarray(a) for b in (16, 7, 32, 20) for steps in (9, 2, 1, 0)
            for i, a in enumerate(sync_sign_steps(x[:b], v, p, d, s[:b], steps))})
"""


def test_threads_and_kernel_builds_agree_bitwise(tmp_path):
    """Also one lane block (B = 16 and 7) on 2 and 3 threads and two (B = 32 and 20) on 3, which
    share their steps of all units and sum their own fields (split_sync.h: sync_steps_shared),
    against the single thread that sums every field first, with 9 steps of random fields
    re-deciding all units."""
    results = []
    narrower = "avx2" if "avx2" in cpu_flags() else ""
    for threads, build in (("1", "baseline"), ("2", narrower), ("3", "")):  # "": the default (best) build
        out = tmp_path / f"t{threads}.npz"
        env = {
            **os.environ,
            "DARNAX_NUM_THREADS": threads,
            "DARNAX_KERNELS": build,
            "DARNAX_ALLOW_OVERSUBSCRIPTION": "1",
        }
        subprocess.run([sys.executable, "-c", SCRIPT, str(out)], check=True, env=env)
        results.append(np.load(out))
    for other in results[1:]:
        for name in results[0].files:
            np.testing.assert_array_equal(results[0][name], other[name], err_msg=name)


WIDE = """
import sys, numpy as np, jax
jax.config.update("jax_enable_x64", True)
from darnax.ops import SparsityPattern, sync_sign_steps
rng = np.random.default_rng(2)
n = 5000
mask = rng.random((n, n)) < 0.035
mask[:, :40] |= rng.random((n, 40)) < 0.3  # hub columns (unequal unit ranges) and long rows
mask[7] = mask[4000] = True
np.fill_diagonal(mask, False)
wide = SparsityPattern.from_mask(mask)
assert 16 * (n + wide.nnz) >= 3 * 4e6  # wide enough for 3 chunks (kMinSplitStepWork, split_sync.h)
narrow_mask = rng.random((1500, 1500)) < 0.02  # sync_steps_shared's width: 16 * 1,500 decisions >= 2 * 8e3
np.fill_diagonal(narrow_mask, False)
narrow = SparsityPattern.from_mask(narrow_mask)
out = {}
for dtype, p, batches in ((np.float32, wide, (1, 5, 16, 17, 33)), (np.float64, wide, (1, 5, 16, 17, 33)),
                          (np.float64, narrow, (7, 16))):
    n = p.shape[0]
    v = (rng.standard_normal(p.nnz) / 16).astype(dtype)
    diag = (rng.standard_normal(n) / 4).astype(dtype)
    for b in batches:
        gauss = rng.standard_normal((b, n)).astype(dtype)
        pm1 = np.where(rng.random((b, n)) < 0.5, -1.0, 1.0).astype(dtype)
        signs = np.where(gauss >= 0, 1.0, -1.0).astype(dtype)
        for name, h, s0, d in (("gauss", gauss, signs, diag), ("pm1", pm1, pm1[::-1].copy(), diag),
                               ("zeros", gauss, 0 * pm1, diag), ("settles", gauss, signs, 2 + np.abs(diag))):
            for steps in (0, 8):
                for i, a in enumerate(sync_sign_steps(h, v, p, d, s0, steps)):
                    out[f"{np.dtype(dtype).name}_{n}_{b}_{name}_{steps}_{i}"] = np.asarray(a)
np.savez(sys.argv[1], **out)
"""


def test_sync_steps_split_by_units_agree_bitwise(tmp_path):
    """A batch with fewer lane blocks than threads splits each block's units across the threads
    on a wide layer (and, on a narrower one, its steps of all units: float64 here); the outputs
    equal one thread's bit for bit, for every batch shape (lone samples, a partial block, a block
    and a lone sample, two blocks), input kind and dtype."""
    results = []
    for threads, build in (("1", "baseline"), ("2", ""), ("3", "")):
        out = tmp_path / f"wide{threads}.npz"
        env = {
            **os.environ,
            "DARNAX_NUM_THREADS": threads,
            "DARNAX_KERNELS": build,
            "DARNAX_ALLOW_OVERSUBSCRIPTION": "1",
        }
        subprocess.run([sys.executable, "-c", WIDE, str(out)], check=True, env=env)
        results.append(np.load(out))
    for other in results[1:]:
        for name in results[0].files:
            np.testing.assert_array_equal(results[0][name], other[name], err_msg=name)
    flips = [results[0][f"float32_5000_{b}_settles_8_1"] for b in (1, 16, 17)]
    assert all(np.all(f[:, -1] == 0) and np.all(f[:, 0] > 0) for f in flips)  # fixed points end calls early


def test_unknown_kernel_build_is_an_import_error():
    env = {**os.environ, "DARNAX_KERNELS": "sse9"}
    result = subprocess.run([sys.executable, "-c", "import darnax.ops"], capture_output=True, text=True, env=env)
    assert result.returncode != 0
    assert "DARNAX_KERNELS=sse9: expected one of baseline" in result.stderr


STRESS = """
import threading, numpy as np
from darnax.ops import SparsityPattern, direct
rng = np.random.default_rng(1)
mask = rng.random((1200, 1200)) < 0.05
p = SparsityPattern.from_mask(mask)
x = rng.standard_normal((16, 1200)).astype(np.float32)
v = rng.standard_normal(p.nnz).astype(np.float32)
want = direct.sparse_matmul(x, v, p.col_ptr, p.row_idx)
bad = []

def hammer():
    for _ in range(400):
        if not np.array_equal(direct.sparse_matmul(x, v, p.col_ptr, p.row_idx), want):
            bad.append(1)

threads = [threading.Thread(target=hammer) for _ in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not bad, len(bad)
print("ok")
"""


def test_thread_pool_survives_back_to_back_and_concurrent_jobs():
    """Thousands of pooled jobs, from several caller threads at once: no crash, same results."""
    env = {**os.environ, "DARNAX_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
