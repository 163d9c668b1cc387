"""``darnax bench``: argument parsing, one process per thread count, the table, the JSON file."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

EPILOG = """examples:
  darnax bench --quick                                  # seconds: the seed sizes, few repeats
  darnax bench --sizes 2000x2000:0.99 20000x20000:0.999 --batch 16 64 --json runs/bench.json
  darnax bench --ops sparse_matmul --dtypes float32 float64 --threads 1 2
  darnax bench --compare before.json after.json         # change per row between two runs

Sizes are DxK:SPARSITY (the layer's input and output widths, and the fraction of absent
entries); the sign dynamics, the dense sweeps and the permutations run on square sizes only.
Each thread count runs in its own process (darnax's kernel pool is sized once per process,
DARNAX_NUM_THREADS); XLA's own threads, used by the jnp and BCOO baselines, are left as they are.
"""

SEED_SIZES = ("784x2000:0.9", "2000x2000:0.99")


def parse_size(text: str) -> tuple[int, int, float]:
    """``"DxK:S"`` as ``(d, k, sparsity)``.

    Raises:
        argparse.ArgumentTypeError: not of that form, or values out of range.
    """
    try:
        dims, sparsity = text.split(":")
        d, k = (int(v) for v in dims.lower().split("x"))
        s = float(sparsity)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected DxK:SPARSITY, e.g. 2000x2000:0.99") from None
    if d < 1 or k < 1 or not 0.0 <= s < 1.0:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected D, K >= 1 and 0 <= SPARSITY < 1")
    return d, k, s


def parser() -> argparse.ArgumentParser:
    """The options of ``darnax bench`` (also usable as a subparser's parent)."""
    from darnax.bench._ops import OPS

    p = argparse.ArgumentParser(
        prog="darnax bench",
        description="Microbenchmarks of darnax's kernels against "
        "dense jnp, BCOO and SciPy CSR: medians of interleaved rounds after warm-up.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--ops", nargs="+", choices=OPS, default=list(OPS), metavar="OP", help=f"default: all of {', '.join(OPS)}"
    )
    p.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[parse_size(s) for s in SEED_SIZES],
        metavar="DxK:S",
        help=f"default: {' '.join(SEED_SIZES)}",
    )
    p.add_argument("--batch", nargs="+", type=int, default=[16], metavar="B", help="batch sizes (default: 16)")
    p.add_argument("--dtypes", nargs="+", choices=("float32", "float64"), default=["float32"])
    p.add_argument(
        "--threads",
        nargs="+",
        type=int,
        metavar="T",
        help="darnax kernel threads, one process each (default: DARNAX_NUM_THREADS or all CPUs)",
    )
    p.add_argument(
        "--sweeps",
        nargs="+",
        type=int,
        default=[1, 5],
        metavar="M",
        help="sweeps/steps per call of the sign dynamics and permutations (default: 1 5)",
    )
    p.add_argument("--repeats", type=int, default=40, help="timed calls per case, over --rounds rounds (default 40)")
    p.add_argument("--rounds", type=int, default=8, help="interleaved rounds (default 8)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per case first (default 3)")
    p.add_argument("--budget", type=float, default=4.0, help="seconds per case at most (default 4)")
    p.add_argument("--quick", action="store_true", help="1 warm-up, 4 repeats in 2 rounds, 0.5 s a case")
    p.add_argument(
        "--dense-limit-gb",
        type=float,
        default=2.0,
        help="largest dense matrix a baseline may hold; beyond it the row says 'skipped (memory)'",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="write the machine record and every row to FILE")
    p.add_argument(
        "--compare", nargs=2, metavar=("A.json", "B.json"), help="print the change from run A to run B, then exit"
    )
    p.add_argument("--rows-to", help=argparse.SUPPRESS)  # a per-thread-count child writes its rows here
    return p


def run_in_process(args: argparse.Namespace) -> list[dict]:
    """Times every requested op and configuration here; returns the rows (also printed)."""
    import jax

    if "float64" in args.dtypes:
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    from darnax.bench._harness import Plan, Results
    from darnax.bench._ops import Setup, bench_dense_async, bench_permutations, bench_products, bench_sign

    plan = Plan(1, 4, 2, 0.5) if args.quick else Plan(args.warmup, args.repeats, args.rounds, args.budget)
    ops, sweeps, rng = set(args.ops), tuple(args.sweeps), np.random.default_rng(args.seed)
    threads = os.environ.get("DARNAX_NUM_THREADS")
    rows: list[dict] = []
    for dtype in args.dtypes:
        for batch in args.batch:
            print(f"\n# B={batch} {dtype} DARNAX_NUM_THREADS={threads}")
            results = Results()
            for d, k, sparsity in args.sizes:
                s = Setup(d, k, sparsity, batch, dtype, args.dense_limit_gb)
                if ops & {"sparse_matmul", "sparse_outer"}:
                    bench_products(rng, s, ops, plan, results)
                if d != k:
                    continue
                if ops & {"async_sign_sweeps", "sync_sign_steps"}:
                    bench_sign(rng, s, ops, sweeps, plan, results)
                if "dense_async_sign_sweeps" in ops:
                    bench_dense_async(rng, s, sweeps, plan, results)
                if "random_permutations" in ops:
                    bench_permutations(rng, s, sweeps, plan, results)
            rows += [{**r, "threads": int(threads) if threads else None} for r in results.rows]
    return rows


def _child_argv(argv: list[str]) -> list[str]:
    """``argv`` without ``--threads``, ``--json`` and their values (the parent handles those)."""
    out, skip = [], False
    for a in argv:
        if a in ("--threads", "--json"):
            skip = True
        elif skip and not a.startswith("--"):
            continue
        else:
            skip = False
            out.append(a)
    return out


def run_thread_counts(threads: list[int], argv: list[str]) -> list[dict]:
    """Runs ``darnax bench`` once per thread count, each in a child with ``DARNAX_NUM_THREADS`` set."""
    rows: list[dict] = []
    for t in threads:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "rows.json")
            cmd = [sys.executable, "-m", "darnax.bench", *_child_argv(argv), "--rows-to", path]
            subprocess.run(cmd, env={**os.environ, "DARNAX_NUM_THREADS": str(t)}, check=True)
            with open(path) as f:
                rows += json.load(f)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``darnax bench`` (and ``python -m darnax.bench``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    from darnax.bench._report import banner, machine_info, print_compare, write_json

    if args.compare:
        try:
            print_compare(*args.compare)
        except (OSError, ValueError) as err:
            print(f"darnax bench: error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.threads and min(args.threads) < 1:
        print(f"darnax bench: error: --threads: expected counts >= 1, got {args.threads}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    if args.threads and len(args.threads) == 1:  # set before the first kernel call sizes the pool
        os.environ["DARNAX_NUM_THREADS"] = str(args.threads[0])
    info = machine_info()
    if args.rows_to is None:
        print(banner(info))
        print("# vs darnax = time / time of darnax jit at the same size and n (> 1: darnax is faster)")
    rows = run_thread_counts(args.threads, argv) if args.threads and len(args.threads) > 1 else run_in_process(args)
    if args.rows_to:
        with open(args.rows_to, "w") as f:
            json.dump(rows, f)
    if args.json:
        config = {k: v for k, v in vars(args).items() if k not in ("json", "compare", "rows_to")}
        info |= {"loadavg_end": os.getloadavg(), "wall_s": time.perf_counter() - start}
        write_json(args.json, info, config, rows)
        print(f"\n# wrote {args.json} ({info['wall_s']:.0f} s)")
    return 0
