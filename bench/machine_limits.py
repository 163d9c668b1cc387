"""This machine's limits for the kernel tables: memory bandwidth and the AVX2 build's peak mul+add rate.

``python bench/machine_limits.py`` prints one JSON line:

- ``dram_gbs``: a STREAM-like triad on 256 MiB arrays (``c = s * b; c += a`` by NumPy, one
  thread; 5 array passes of bytes moved: two for the multiply, three for the add), best of 5;
- ``l2_gbs``: the same on arrays that fit in one core's L2 (3 x 256 kB), best of 2000;
- ``peak_gmuladds``: float32 multiply-adds per second on one core by the instructions the AVX2
  build uses (``-mavx2 -mno-fma``: a vector multiply and a vector add per 8 multiply-adds; 12
  independent chains, compiled here with g++), and ``peak_gmuladds_fma`` with FMA for reference.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

PEAK = r"""
#include <immintrin.h>
extern "C" double run(long n) {  // n rounds of 12 independent vector mul+add chains, 8 lanes each
  __m256 acc[12], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
  for (long r = 0; r < n; ++r)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
#ifdef USE_FMA
      acc[i] = _mm256_fmadd_ps(acc[i], m, a);
#else
      acc[i] = _mm256_add_ps(_mm256_mul_ps(acc[i], m), a);
#endif
    }
  float s = 0, out[8];
  for (int i = 0; i < 12; ++i) { _mm256_storeu_ps(out, acc[i]); s += out[0]; }
  return s;
}
"""


def _triad(n: int, reps: int) -> float:
    a, b, c = (np.ones(n, np.float32) for _ in range(3))
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        np.multiply(b, np.float32(1.5), out=c)
        np.add(a, c, out=c)
        best = min(best, time.perf_counter() - t0)
    return 5 * n * 4 / best / 1e9  # multiply: read b, write c; add: read a and c, write c


def _peak(fma: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        src, lib = Path(tmp) / "peak.cc", Path(tmp) / "peak.so"
        src.write_text(PEAK)
        flags = ["-mavx2", "-mfma", "-DUSE_FMA"] if fma else ["-mavx2", "-mno-fma", "-ffp-contract=off"]
        subprocess.run(["g++", "-O3", "-shared", "-fPIC", *flags, str(src), "-o", str(lib)], check=True)
        run = ctypes.CDLL(str(lib)).run
        run.argtypes, run.restype = [ctypes.c_long], ctypes.c_double
        n, best = 2_000_000, float("inf")
        for _ in range(7):
            t0 = time.perf_counter()
            run(n)
            best = min(best, time.perf_counter() - t0)
        return n * 12 * 8 / best / 1e9


def main() -> None:
    out = {
        "dram_gbs": round(_triad(64 << 20, 5), 1),
        "l2_gbs": round(_triad(64 << 10, 2000), 1),
        "peak_gmuladds": round(_peak(False), 1),
        "peak_gmuladds_fma": round(_peak(True), 1),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
