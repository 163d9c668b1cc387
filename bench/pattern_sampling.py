"""Time and peak memory of the O(nnz) pattern samplers, one case per fresh process.

    python bench/pattern_sampling.py fixed       # fixed_fan_in_columns((100_000, 100_000), 100, zero_diagonal)
    python bench/pattern_sampling.py bernoulli   # bernoulli_columns((784, 100_000), 0.1)

Prints the time of a tiny warm-up call (it compiles JAX's ``bits`` for the seed), then of three
calls with fresh keys, the process's peak RSS before and after them, and the growth per stored
entry.
"""

from __future__ import annotations

import resource
import sys
import time

import jax

from darnax.ops.pattern_sampling import bernoulli_columns, fixed_fan_in_columns

CASES = {
    "fixed": lambda key: fixed_fan_in_columns(key, (100_000, 100_000), 100, zero_diagonal=True),
    "bernoulli": lambda key: bernoulli_columns(key, (784, 100_000), 0.1),
}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def main(name: str) -> None:
    case = CASES[name]
    start = time.perf_counter()
    fixed_fan_in_columns(jax.random.key(99), (10, 10), 1)
    warmup = time.perf_counter() - start
    before = peak_rss_bytes()
    times = []
    for seed in range(3):
        start = time.perf_counter()
        col_ptr, row_idx = case(jax.random.key(seed))
        times.append(time.perf_counter() - start)
        nnz = row_idx.size
        del col_ptr, row_idx
    extra = peak_rss_bytes() - before
    print(
        f"{name}: nnz={nnz:,} warm-up={warmup:.3f}s calls={', '.join(f'{t:.3f}s' for t in times)} "
        f"peak_rss={peak_rss_bytes() / 2**20:.0f}MiB (before calls {before / 2**20:.0f}MiB, "
        f"+{extra / nnz:.1f} B/entry incl. the 4 B/entry row_idx)"
    )


if __name__ == "__main__":
    main(sys.argv[1])
