"""Benchmark: how the seed-10 network scales with its width at a fixed recurrent fan-in.

Hidden widths 2,000 / 20,000 / 100,000, each hidden unit with exactly ``--fan-in`` (100)
recurrent inputs (``model.connectivity = "fixed-fan-in"``), 784 Fashion-MNIST inputs at 10%,
seed-10 hyper-parameters otherwise, batch 16, ``darnax train``'s network builder. Each
(width, threads) runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its
own, with ``DARNAX_NUM_THREADS`` set to 1 or 2 (the darnax kernel pool; XLA's own pool is left
alone). Columns:

- build: network construction (patterns, weights, optimiser state), seconds;
- HLO: characters of the training step's lowered program (``jax.jit(...).lower().as_text()``);
- first step: the first ``train_step`` (tracing, compilation and one step), seconds; compile:
  that minus one later step;
- step: median ``train_step`` after it, ms, and samples/s;
- peak: the process's peak RSS, MB, and per stored coupling (everything included).

Usage::

    python bench/scale.py                   # 2k / 20k / 100k, 1 and 2 threads
    python bench/scale.py --widths 100000 --threads 2

Prints a table and writes ``bench/scale.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH = 16


def worker(width: int, fan_in: int, steps: int) -> dict:
    """Measure one width in this process; returns a JSON-able dict."""
    t_start = time.perf_counter()
    import jax
    import jax.numpy as jnp

    from darnax.cli import return_freed_memory
    from darnax.cli.config import Config, merge
    from darnax.cli.network import build_trainer
    from train_step import _data

    return_freed_memory()
    x, y, source = _data(BATCH * (steps + 1))
    import_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    config = merge(
        Config(), {"model": {"dim_hidden": width, "sparsity": 1 - fan_in / (width - 1), "connectivity": "fixed-fan-in"}}
    )
    trainer = build_trainer(config, 784, 10)
    jax.block_until_ready(trainer.orchestrator)
    out = {
        "width": width,
        "fan_in": fan_in,
        "threads": int(os.environ.get("DARNAX_NUM_THREADS", "0")),
        "data": source,
        "import_s": round(import_s, 2),
        "build_s": round(time.perf_counter() - t0, 2),
    }
    modules = jax.tree_util.tree_leaves(trainer.orchestrator, is_leaf=lambda m: hasattr(m, "pattern"))
    out["stored_couplings"] = sum(m.pattern.nnz for m in modules if hasattr(m, "pattern"))
    batches = [
        (jnp.asarray(x[i * BATCH : (i + 1) * BATCH]), jnp.asarray(y[i * BATCH : (i + 1) * BATCH]))
        for i in range(steps + 1)
    ]
    key = jax.random.key(0)
    lowered = trainer._jit_train.lower(*batches[0], key, trainer.orchestrator, trainer._template, trainer.ctx)
    out["hlo_chars"] = len(lowered.as_text())
    t0 = time.perf_counter()
    key = trainer.train_step(*batches[0], key)
    jax.block_until_ready(trainer.orchestrator)
    out["first_step_s"] = round(time.perf_counter() - t0, 2)
    times = []
    for xb, yb in batches[1:]:
        t0 = time.perf_counter()
        key = trainer.train_step(xb, yb, key)
        jax.block_until_ready(trainer.orchestrator)
        times.append(time.perf_counter() - t0)
    out["step_ms"] = round(1e3 * statistics.median(times), 2)
    out["samples_per_s"] = round(BATCH / statistics.median(times), 1)
    out["compile_s"] = round(out["first_step_s"] - statistics.median(times), 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["bytes_per_coupling"] = round(out["peak_rss_mb"] * 2**20 / out["stored_couplings"], 1)
    return out


def _spawn(width: int, fan_in: int, steps: int, threads: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--widths", str(width), "--fan-in", str(fan_in), "--steps", str(steps)]
    env = {**os.environ, "DARNAX_NUM_THREADS": str(threads)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE)
    except subprocess.TimeoutExpired:
        return {"width": width, "threads": threads, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"width": width, "threads": threads, "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


COLUMNS = [
    ("width", "width", "{:,}"),
    ("threads", "threads", "{}"),
    ("couplings", "stored_couplings", "{:,}"),
    ("build s", "build_s", "{:.2f}"),
    ("HLO chars", "hlo_chars", "{:,}"),
    ("first step s", "first_step_s", "{:.2f}"),
    ("compile s", "compile_s", "{:.2f}"),
    ("step ms", "step_ms", "{:.1f}"),
    ("samples/s", "samples_per_s", "{:,.0f}"),
    ("peak MB", "peak_rss_mb", "{:,.0f}"),
    ("B/coupling", "bytes_per_coupling", "{:.1f}"),
]


def _print_table(results: list[dict]) -> None:
    print(" | ".join(f"{h:>12}" for h, _, _ in COLUMNS))
    for r in results:
        line = " | ".join(f"{fmt.format(r[k]) if r.get(k) is not None else '-':>12}" for _, k, fmt in COLUMNS)
        print(line + (f"   ({r['error']})" if "error" in r else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--widths", default="2000,20000,100000")
    parser.add_argument("--threads", default="1,2", help="DARNAX_NUM_THREADS values to run")
    parser.add_argument("--fan-in", type=int, default=100)
    parser.add_argument("--steps", type=int, default=15, help="timed training steps after the first")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per configuration")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    if args.worker:
        print(json.dumps(worker(widths[0], args.fan_in, args.steps)))
        return
    results = []
    for width in widths:
        for threads in (int(t) for t in args.threads.split(",")):
            print(f"running width {width:,}, {threads} thread(s) ...", file=sys.stderr, flush=True)
            results.append(_spawn(width, args.fan_in, args.steps, threads, args.timeout))
    import jax

    meta = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "batch": BATCH,
        "fan_in": args.fan_in,
        "train_iters": "1 + 5 + 5",
    }
    _print_table(results)
    (HERE / "scale.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {HERE / 'scale.json'}")


if __name__ == "__main__":
    main()
