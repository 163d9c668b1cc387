"""Benchmark: the per-batch API (``train_step``/``eval_step`` in a Python loop, as the seed tutorials
write it) against the compiled epoch (``fit_epoch``/``evaluate``), and the first step's compilation.

The seed-10 network (``darnax train``'s builder: 784-2000-10, recurrent sparsity 0.99, batch 16)
on Fashion-MNIST through :class:`darnax.datasets.classification.fashion_mnist.FashionMnist`
(``DARNAX_DATA_DIR`` or ``--data-dir``; random images if absent). Per round, interleaved:

- ``loop``: ``for xb, yb in batches: key = trainer.train_step(xb, yb, key)`` over the first
  ``--batches`` batches of a pass, as yielded by iterating the dataset;
- ``filter_jit``: the same loop through ``equinox.filter_jit`` of the trainer's step, rebinding the
  model by hand (the previous ``train_step``, which waits for every result);
- ``program``: the loop's compiled program called directly on the arrays the trainer holds
  (no checks, no bookkeeping): ``loop - program`` is the API's cost per batch, ``program -
  fit_epoch`` the cost of running one program per batch instead of one scan;
- ``fit_epoch``: the same batches in one compiled call;
- ``eval loop`` / ``eval program`` / ``evaluate``: likewise for evaluation.

Times are per batch, medians over rounds. The ratios are loop / compiled, medians of the ratios
of the same round (a round runs the cases in order, the next one in reverse): this machine's speed
drifts between minutes, and a ratio of two medians taken in different rounds would carry that
drift. Each ``--cpus`` value
runs in its own process (``darnax train --cpus`` pins the same way). The first ``train_step``'s
compilation is timed in a fresh process (``first_step_s``: the first call minus a steady step;
``trace_s``/``lower_s``/``compile_s``: the program's stages, timed separately once more), with an
empty compilation cache (``DARNAX_CACHE_DIR`` a new folder), then again in a second process that
finds the first one's programs there (``warm_first_step_s``, as a script's second run would).

Usage::

    python bench/per_batch_api.py --data-dir ../shared/datasets     # --cpus 1 and 0 (all)

Prints a table and writes ``bench/per_batch_api.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH = 16


def _dataset(n_batches: int):
    """Fashion-MNIST as the seeds configure it, or random images of its shape when absent."""
    import jax
    import numpy as np

    from darnax.datasets.classification.fashion_mnist import FashionMnist

    try:
        ds = FashionMnist(batch_size=BATCH, label_mode="pm1", x_transform="identity")
        ds.build(jax.random.key(0))
        return ds, "fashion-mnist"
    except (FileNotFoundError, OSError):
        rng = np.random.default_rng(0)
        x = rng.random((BATCH * n_batches, 784), dtype=np.float32)
        y = np.where(np.eye(10, dtype=bool)[rng.integers(0, 10, BATCH * n_batches)], 1.0, -1.0)
        return None, (x, y.astype(np.float32))


def worker(cpus: int, n_batches: int, rounds: int, first_only: bool = False) -> dict:
    """Measure in this process (pinned to ``cpus`` CPUs, 0: all); returns a JSON-able dict."""
    if cpus:
        from darnax.cli import limit_cpus

        limit_cpus(cpus)
    t_start = time.perf_counter()
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from darnax.cli.config import Config
    from darnax.cli.network import build_trainer

    ds, source = _dataset(n_batches)
    if ds is not None:
        x_all, y_all = ds.epoch_arrays()
        x, y = x_all[: BATCH * n_batches], y_all[: BATCH * n_batches]
        batches = list(ds._batches(x, y))  # what `for xb, yb in ds` yields, kept for every round
        source = "fashion-mnist"
    else:
        x, y = (jnp.asarray(a) for a in source)
        batches = [(x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]) for i in range(n_batches)]
        source = "random"
    trainer = build_trainer(Config(), 784, 10)
    key = jax.random.key(0)
    out: dict = {"cpus": len(os.sched_getaffinity(0)), "data": source, "batches": n_batches}

    t0 = time.perf_counter()
    key = trainer.train_step(*batches[0], key)
    jax.block_until_ready(trainer.orchestrator)
    first = time.perf_counter() - t0
    out["import_to_first_step_s"] = round(time.perf_counter() - t_start, 2)
    if first_only:
        return {**out, "first_call_s": round(first, 3)}
    key, m = trainer.eval_step(*batches[0], key)
    jax.block_until_ready(m)
    jit_step = eqx.filter_jit(type(trainer)._checked_train)

    def loop() -> None:
        nonlocal key
        for xb, yb in batches:
            key = trainer.train_step(xb, yb, key)
        trainer.check_weights()

    def filter_jit() -> None:
        nonlocal key
        orch, ctx = trainer.orchestrator, trainer.ctx
        for xb, yb in batches:
            key, orch, _, opt_state, _ = jit_step(xb, yb, key, orch, trainer._template, ctx)
            ctx = {**ctx, "optimizer_state": opt_state}
        trainer.orchestrator, trainer.ctx = orch, ctx

    train_program = _program(trainer._flat_train)
    eval_program = _program(trainer._flat_eval)
    template = trainer._flat_template.arrays

    def program() -> None:
        nonlocal key
        orch, ctx = trainer._flat_orchestrator.arrays, trainer._flat_ctx.arrays
        for xb, yb in batches:
            key, orch, _, ctx, _ = train_program(xb, yb, key, orch, template, ctx)
        jax.block_until_ready(orch)

    def fit() -> None:
        nonlocal key
        key = trainer.fit_epoch(x, y, key, batch_size=BATCH)

    def eval_loop() -> None:
        nonlocal key
        for xb, yb in batches:
            key, metrics = trainer.eval_step(xb, yb, key)
        jax.block_until_ready(metrics)

    def eval_program_loop() -> None:
        nonlocal key
        orch, ctx = trainer._flat_orchestrator.arrays, trainer._flat_ctx.arrays
        for xb, yb in batches:
            key, _, metrics = eval_program(xb, yb, key, orch, template, ctx)
        jax.block_until_ready(metrics)

    def evaluate() -> None:
        nonlocal key
        jax.block_until_ready(trainer.evaluate(x, y, key, batch_size=BATCH))

    cases = {"loop": loop, "filter_jit": filter_jit, "program": program, "fit_epoch": fit}
    cases |= {"eval loop": eval_loop, "eval program": eval_program_loop, "evaluate": evaluate}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up: compile everything
        fn()
    for r in range(rounds):
        for name, fn in list(cases.items())[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            fn()
            jax.block_until_ready(trainer.orchestrator)
            times[name].append((time.perf_counter() - t0) / n_batches)
    for name, ts in times.items():
        out[f"{name}_us"] = round(1e6 * statistics.median(ts), 1)
    out["first_step_s"] = round(first - out["loop_us"] * 1e-6, 3)

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(x / y for x, y in zip(times[a], times[b], strict=True)), 3)

    out["loop_vs_fit"] = ratio("loop", "fit_epoch")
    out["filter_jit_vs_fit"] = ratio("filter_jit", "fit_epoch")
    out["program_vs_fit"] = ratio("program", "fit_epoch")
    out["eval_loop_vs_evaluate"] = ratio("eval loop", "evaluate")
    out["eval_program_vs_evaluate"] = ratio("eval program", "evaluate")
    out.update(_stages(trainer, batches[0], key))
    return out


def _program(flat_jit):
    """The one program ``flat_jit`` (a trainer's per-batch call, already traced) runs."""
    ((program, _),) = flat_jit._programs.values()
    return program


def _stages(trainer, batch, key) -> dict:
    """Trace, lower and compile times of a fresh copy of the first step's program (not from the cache)."""
    from darnax.trainers._flat import FlatJit

    call = FlatJit(type(trainer)._checked_train_ctx, flat_in=(3, 4, 5), flat_out=(1, 2, 3))
    flats = (trainer._flat_orchestrator, trainer._flat_template, trainer._flat_ctx)
    jitted, _ = call._trace(tuple(f.structure for f in flats))
    import jax

    jax.config.update("jax_enable_compilation_cache", False)  # compile it, do not load it
    t0 = time.perf_counter()
    traced = jitted.trace(*batch, key, *(f.arrays for f in flats))
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    lowered.compile()
    t3 = time.perf_counter()
    return {"trace_s": round(t1 - t0, 3), "lower_s": round(t2 - t1, 3), "compile_s": round(t3 - t2, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 0], help="CPUs per run (0: all)")
    parser.add_argument("--batches", type=int, default=600, help="batches per timed call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", help="folder with fashion-mnist/ (else DARNAX_DATA_DIR)")
    parser.add_argument("--json", default=str(HERE / "per_batch_api.json"))
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["DARNAX_DATA_DIR"] = str(Path(args.data_dir).resolve())
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.batches, args.rounds, args.first_only)))
        return 0
    rows = []
    for cpus in args.cpus:
        with tempfile.TemporaryDirectory() as cache_dir:
            env = {**os.environ, "DARNAX_CACHE_DIR": cache_dir, "DARNAX_NO_CACHE": "0"}
            cmd = [sys.executable, __file__, "--worker", str(cpus), "--batches", str(args.batches)]
            runs = [[*cmd, "--rounds", str(args.rounds)], [*cmd, "--first-only"]]
            cold, warm = (
                json.loads(
                    subprocess.run(c, capture_output=True, text=True, check=True, env=env).stdout.splitlines()[-1]
                )
                for c in runs
            )
        rows.append({**cold, "warm_first_step_s": round(warm["first_call_s"] - cold["loop_us"] * 1e-6, 3)})
    head = ["cpus", "loop_us", "filter_jit_us", "program_us", "fit_epoch_us", "loop_vs_fit", "program_vs_fit"]
    head += ["eval loop_us", "eval program_us", "evaluate_us", "eval_loop_vs_evaluate", "eval_program_vs_evaluate"]
    head += ["first_step_s", "warm_first_step_s"]
    head += ["trace_s", "lower_s", "compile_s"]
    print(" | ".join(head))
    for row in rows:
        print(" | ".join(str(row[h]) for h in head))
    load = os.getloadavg()
    Path(args.json).write_text(json.dumps({"load_average": load, "rows": rows}, indent=1) + "\n")
    print(f"# load average {load[0]:.2f}; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
