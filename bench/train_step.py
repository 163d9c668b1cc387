"""Benchmark: training and evaluation throughput of the seed-10 network, compiled vs jax backend.

Network (seeds 09/10): 784 -> hidden -> 10, ``SparseFullyConnected`` input (sparsity 0.9),
``SparseRecurrentDiscrete`` hidden layer, ``FrozenRescaledFullyConnected`` label feedback,
``FullyConnected`` readout; batch 16; 1 warm-up + 5 clamped + 5 free steps per training batch,
1 + 5 inference steps per evaluation batch; module-internal learning rates, ``optax.sgd(1.0)``.

Configurations: hidden 2000 with sparsity 0.99 (the seeds), and hidden 20000 with sparsity
0.999 (``SparsityPattern.random`` samples such layers in O(nnz), never a dense mask).
Each (configuration, backend, CPUs) runs in its own subprocess so that its peak resident memory
(``ru_maxrss``) is its own. Times are medians after a warm-up (compilation excluded). Rows run
on all the CPUs the process may use and on one CPU (affinity set before JAX starts threads,
as ``darnax train --cpus 1`` does); the jax backend's all-CPU row runs three times, since its
dense products land in a fast or a slow mode from one process to the next.

Usage::

    python bench/train_step.py                    # both sizes, both backends
    python bench/train_step.py --quick            # fewer repetitions
    python bench/train_step.py --skip-dense-large # no jax backend at 20000 units

Prints a table and writes ``bench/train_step.json``.
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


def _data(n: int, seed: int = 0):
    """Fashion-MNIST training images in [0, 1] and ±1 labels if the shared copy exists, else random."""
    import numpy as np

    from darnax.datasets import read_idx

    folder = Path(os.environ.get("DARNAX_SHARED_DIR", HERE.parent.parent / "shared")) / "datasets" / "fashion-mnist"
    rng = np.random.default_rng(seed)
    if (folder / "train-images-idx3-ubyte.gz").exists():
        x = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784)
        labels = read_idx(folder / "train-labels-idx1-ubyte.gz")
        take = rng.permutation(x.shape[0])[:n]
        x, labels, source = x[take].astype(np.float32) / 255.0, labels[take], "fashion-mnist"
    else:
        x, labels, source = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n), "random"
    y = np.where(np.eye(10, dtype=bool)[labels], 1.0, -1.0).astype(np.float32)
    return x, y, source


def _build(hidden: int, sparsity: float, backend: str):
    """The seeds' network (``darnax train``'s builder) at this width and recurrent sparsity."""
    from darnax.cli.config import Config, merge
    from darnax.cli.network import build_trainer

    config = merge(Config(), {"model": {"dim_hidden": hidden, "sparsity": sparsity}})
    return build_trainer(config, 784, 10, backend=backend)


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worker(
    hidden: int, sparsity: float, backend: str, reps: int, epoch_batches: int, parts: list[str], cpus: int
) -> dict:
    """Measure one configuration in this process (on ``cpus`` CPUs, 0: all); returns a JSON-able dict."""
    if cpus:
        from darnax.cli import limit_cpus

        limit_cpus(cpus)
    import jax

    x, y, source = _data(BATCH * max(epoch_batches, 64))
    t0 = time.perf_counter()
    trainer = _build(hidden, sparsity, backend)
    out = {
        "hidden": hidden,
        "sparsity": sparsity,
        "backend": backend,
        "data": source,
        "cpus": len(os.sched_getaffinity(0)),
        "build_s": round(time.perf_counter() - t0, 2),
    }
    key = jax.random.key(0)
    xb = [(x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]) for i in range(64)]
    state = {"key": key, "i": 0}

    def one_train():
        a, b = xb[state["i"] % len(xb)]
        state["i"] += 1
        state["key"] = trainer.train_step(a, b, state["key"])
        jax.block_until_ready(trainer.orchestrator)

    def one_eval():
        a, b = xb[state["i"] % len(xb)]
        state["i"] += 1
        state["key"], m = trainer.eval_step(a, b, state["key"])
        jax.block_until_ready(m)

    if "train_step" in parts:
        t0 = time.perf_counter()
        one_train()
        out["compile_train_s"] = round(time.perf_counter() - t0, 2)
        one_train()
        out["train_step_ms"] = 1e3 * _median_time(one_train, reps)
        out["train_step_sps"] = BATCH / out["train_step_ms"] * 1e3
    if "eval_step" in parts:
        one_eval()
        out["eval_step_ms"] = 1e3 * _median_time(one_eval, reps)
        out["eval_step_sps"] = BATCH / out["eval_step_ms"] * 1e3
    n = epoch_batches * BATCH
    xe, ye = x[:n], y[:n]
    if "fit_epoch" in parts:

        def fit():
            state["key"] = trainer.fit_epoch(xe, ye, state["key"], batch_size=BATCH)
            jax.block_until_ready(trainer.orchestrator)

        fit()
        t = _median_time(fit, max(1, reps // 10))
        out["fit_epoch_samples"] = n
        out["fit_epoch_sps"] = n / t
    if "evaluate" in parts:

        def evaluate():
            state["key"], m = trainer.evaluate(xe, ye, state["key"], batch_size=BATCH)
            jax.block_until_ready(m)

        evaluate()
        out["evaluate_sps"] = n / _median_time(evaluate, max(1, reps // 10))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _spawn(args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hidden", type=int, default=2000)
    parser.add_argument("--sparsity", type=float, default=0.99)
    parser.add_argument("--backend", default="compiled")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--epoch-batches", type=int, default=200)
    parser.add_argument("--parts", default="train_step,eval_step,fit_epoch,evaluate")
    parser.add_argument("--cpus", type=int, default=0, help="worker: CPUs to run on (0: all)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--skip-dense-large", action="store_true", help="no jax backend at 20000 units")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per configuration")
    args = parser.parse_args()
    if args.worker:
        res = worker(
            args.hidden, args.sparsity, args.backend, args.reps, args.epoch_batches, args.parts.split(","), args.cpus
        )
        print(json.dumps(res))
        return

    q = args.quick
    seed_compiled = [
        "--hidden",
        "2000",
        "--sparsity",
        "0.99",
        "--reps",
        "10" if q else "40",
        "--epoch-batches",
        "100" if q else "400",
    ]
    seed_jax = [
        "--hidden",
        "2000",
        "--sparsity",
        "0.99",
        "--reps",
        "5" if q else "15",
        "--epoch-batches",
        "20" if q else "40",
    ]
    large = [
        "--hidden",
        "20000",
        "--sparsity",
        "0.999",
        "--reps",
        "5" if q else "15",
        "--epoch-batches",
        "20" if q else "100",
    ]
    runs = [
        ("2000 / 0.99", "compiled", seed_compiled),
        ("2000 / 0.99", "compiled", [*seed_compiled, "--cpus", "1"]),
        *[("2000 / 0.99", "jax", seed_jax) for _ in range(1 if q else 3)],
        ("2000 / 0.99", "jax", [*seed_jax, "--cpus", "1"]),
        ("20000 / 0.999", "compiled", large),
        ("20000 / 0.999", "compiled", [*large, "--cpus", "1"]),
    ]
    if not args.skip_dense_large:
        runs.append(
            (
                "20000 / 0.999",
                "jax",
                [
                    "--hidden",
                    "20000",
                    "--sparsity",
                    "0.999",
                    "--reps",
                    "3",
                    "--epoch-batches",
                    "4",
                    "--parts",
                    "train_step,eval_step",
                ],
            )
        )
    import jax

    results = []
    for label, backend, extra in runs:
        print(f"running {label} {backend} ...", file=sys.stderr, flush=True)
        res = _spawn(["--backend", backend, *extra], args.timeout)
        res.setdefault("config", label)
        res.setdefault("backend", backend)
        results.append(res)
    meta = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "batch": BATCH,
        "train_iters": "1 + 5 + 5",
        "eval_iters": "1 + 5",
    }
    _print_table(results)
    seed = [r for r in results if r.get("hidden") == 2000]
    fits = [r["fit_epoch_sps"] for r in seed if r.get("backend") == "compiled" and r.get("fit_epoch_sps")]
    steps = [r["train_step_sps"] for r in seed if r.get("backend") == "jax" and r.get("train_step_sps")]
    if fits and steps:
        meta["speedup_fit_epoch_vs_jax_train_step"] = {
            "best_vs_best": max(fits) / max(steps),
            "best_vs_median": max(fits) / statistics.median(steps),
        }
        print(
            f"\nbest compiled fit_epoch / jax train_step (2000 units): {max(fits) / max(steps):.1f}x against "
            f"the fastest jax row, {max(fits) / statistics.median(steps):.1f}x against the median jax row"
        )
    (HERE / "train_step.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {HERE / 'train_step.json'}")


def _print_table(results: list[dict]) -> None:
    cols = [
        ("config", "config", "{}"),
        ("backend", "backend", "{}"),
        ("CPUs", "cpus", "{}"),
        ("train_step", "train_step_sps", "{:,.0f}"),
        ("eval_step", "eval_step_sps", "{:,.0f}"),
        ("fit_epoch", "fit_epoch_sps", "{:,.0f}"),
        ("evaluate", "evaluate_sps", "{:,.0f}"),
        ("peak MB", "peak_rss_mb", "{:,.0f}"),
    ]
    print("\nsamples/s (median after warm-up), peak resident memory per configuration")
    print(" | ".join(f"{h:>14}" for h, _, _ in cols))
    for r in results:
        cells = []
        for _, k, fmt in cols:
            v = r.get(k)
            cells.append(f"{fmt.format(v) if v is not None else '-':>14}")
        line = " | ".join(cells)
        if "error" in r:
            line += f"   ({r['error']})"
        print(line)


if __name__ == "__main__":
    main()
