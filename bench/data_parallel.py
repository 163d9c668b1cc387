"""Benchmark: data-parallel training over 2 local processes against the fair baseline.

For each network (the seed network, 2,000 hidden units; a wide one, 20,000 units at fan-in 100)
and global batch B (16, 64, 256, 1024), three runs, each process pinned to its own CPU:

- ``one``: one process trains at batch B (``fit_epoch`` over a fixed number of samples);
- ``pair``: two independent single-process runs at batch B started together (no communication):
  their combined samples/s is what this machine gives two processes (its two vCPUs share much of
  their throughput, so this, not 2x ``one``, is the baseline);
- ``dp2``: one data-parallel run over 2 processes (``jax.distributed`` on localhost, B/2 rows each).
- ``lockstep`` (``--lockstep``): the pair again, each at batch B/2 and joined by ``jax.distributed``,
  but training alone (no mesh) and meeting at a one-float allreduce after every step: data
  parallel without its update's allreduce. Between ``pair`` and ``dp2``, it splits their gap into
  the cost of running in step (each step waits for the slower process, and both do the same phase
  at the same time on CPUs that share their throughput) and that of the update's allreduce.

Reported: samples/s of each, ``dp2 / pair`` (the goal: >= 0.9 at B >= 256 and for the wide
network), and the time of one allreduce of the network's update (every inexact parameter, as one
float32 vector, ``psum`` across the 2 processes), median of 20. Each run is a fresh subprocess:
warm-up call (compilation) first, then the timed calls. With ``--rounds N``, ``one`` runs once and
``pair``, ``dp2`` (and ``lockstep``) run N times, interleaved: each ratio is taken within a round
and the table shows the medians (this VM's two-process throughput drifts ~20% over minutes).

Usage::

    python bench/data_parallel.py                       # both networks, B = 16, 64, 256, 1024
    python bench/data_parallel.py --widths 2000 --batches 256
    python bench/data_parallel.py --widths 20000 --batches 256,1024 --samples 8192 --rounds 3 --lockstep

Prints a table and writes ``bench/data_parallel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from darnax.cli.distributed import free_port

HERE = Path(__file__).resolve().parent
SAMPLES = {2000: 16384, 20000: 2048}  # timed samples per run, per width


def worker(width: int, batch: int, process_id: int, processes: int, port: int, lockstep: bool = False) -> dict:
    """One process's measurement (``processes`` > 1: a data-parallel run, or ``lockstep``)."""
    import jax

    if processes > 1:
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=processes, process_id=process_id)
    import equinox as eqx
    import jax.numpy as jnp
    import numpy as np

    from train_step import _data

    samples = SAMPLES.get(width, 4096)
    mesh = jax.make_mesh((jax.device_count(),), ("data",)) if processes > 1 else None
    if lockstep:
        return _lockstep(width, batch // processes, mesh)
    trainer = _trainer(width, mesh)
    local = batch // processes
    x, y, source = _data(samples)
    rows = np.concatenate(
        [
            np.arange(k * batch + process_id * local, k * batch + (process_id + 1) * local)
            for k in range(samples // batch)
        ]
    )
    x, y = jnp.asarray(x[rows]), jnp.asarray(y[rows])
    key = jax.random.key(0)
    t0 = time.perf_counter()
    key = trainer.fit_epoch(x[: 4 * local], y[: 4 * local], key, batch_size=local)  # compiles
    jax.block_until_ready(trainer.orchestrator)
    out = {
        "width": width,
        "batch": batch,
        "processes": processes,
        "data": source,
        "first_call_s": round(time.perf_counter() - t0, 2),
    }
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        key = trainer.fit_epoch(x, y, key, batch_size=local)
        jax.block_until_ready(trainer.orchestrator)
        times.append(time.perf_counter() - t0)
    out["samples_per_s"] = round(samples / statistics.median(times), 1)  # global samples
    n_params = sum(a.size for a in jax.tree.leaves(eqx.filter(trainer.orchestrator, eqx.is_inexact_array)))
    out["update_floats"] = int(n_params)
    if mesh is not None:
        vec, reduce = _allreduce(mesh, n_params)
        out["allreduce_ms"] = round(median_ms(reduce, vec, 20), 2)
    return out


def _trainer(width: int, mesh):
    """The seed network at ``width`` hidden units (fan-in 100, fixed, above 2,000), on ``mesh`` if given."""
    from darnax.cli.config import Config, merge
    from darnax.cli.network import build_trainer

    fields = {"dim_hidden": width}
    if width > 2000:
        fields.update(sparsity=1 - 100 / (width - 1), connectivity="fixed-fan-in")
    return build_trainer(merge(Config(), {"model": fields}), 784, 10, mesh=mesh)


def replicated_call(mesh, n: int, body):
    """``(vector, call)``: a replicated ``n``-float vector of ones and ``body`` (a collective over
    the mesh's one axis) jitted over ``mesh``."""
    import jax
    import numpy as np
    from jax.sharding import PartitionSpec as P

    vec = jax.make_array_from_process_local_data(jax.NamedSharding(mesh, P()), np.ones(n, np.float32))
    return vec, jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P(), out_specs=P(), check_vma=False))


def _allreduce(mesh, n: int):
    """``(vector, reduce)``: :func:`replicated_call` of the ``psum`` over the ``data`` axis."""
    import jax

    return replicated_call(mesh, n, lambda v: jax.lax.psum(v, "data"))


def median_ms(call, arg, reps: int) -> float:
    """Median milliseconds of ``call(arg)`` to its result, over ``reps`` calls after one warm-up."""
    import jax

    jax.block_until_ready(call(arg))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(call(arg))
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def _lockstep(width: int, local: int, mesh) -> dict:
    """``train_step`` alone at batch ``local``, then a one-float allreduce over ``mesh``, per step."""
    import jax
    import jax.numpy as jnp

    from train_step import _data

    trainer = _trainer(width, None)
    samples = SAMPLES.get(width, 4096) // 2
    x, y, _ = _data(samples)
    x, y = jnp.asarray(x), jnp.asarray(y)
    one, meet = _allreduce(mesh, 1)
    key = jax.random.key(0)

    def step(k: int) -> None:
        nonlocal key
        key = trainer.train_step(x[k * local : (k + 1) * local], y[k * local : (k + 1) * local], key)
        jax.block_until_ready(trainer.orchestrator)
        jax.block_until_ready(meet(one))

    step(0)  # compiles
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        for k in range(samples // local):
            step(k)
        times.append(time.perf_counter() - t0)
    return {"samples_per_s": round(2 * samples / statistics.median(times), 1)}  # both processes'


def _start(
    width: int, batch: int, cpu: int, process_id: int = 0, processes: int = 1, port: int = 0, lockstep: bool = False
):
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--widths",
        str(width),
        "--batches",
        str(batch),
        "--process-id",
        str(process_id),
        "--processes",
        str(processes),
        "--port",
        str(port),
        *(["--lockstep"] if lockstep else []),
        "--samples",
        str(SAMPLES.get(width, 4096)),
    ]
    return subprocess.Popen(
        cmd,
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )


def _results(procs: list[subprocess.Popen], timeout: float) -> list[dict]:
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"worker failed: {stderr.strip().splitlines()[-3:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def measure(width: int, batch: int, timeout: float, lockstep: bool = False, rounds: int = 1) -> dict:
    """``one`` once, then ``rounds`` rounds of ``pair``, ``dp2`` (and ``lockstep``), interleaved.

    The ratios to ``pair`` are taken within each round, a few minutes apart, where this VM's
    throughput drifts least; the row holds the medians over rounds and every round's figures.
    """
    cpus = sorted(os.sched_getaffinity(0))
    one = _results([_start(width, batch, cpus[0])], timeout)[0]
    per_round = []
    for _ in range(rounds):
        pair = _results([_start(width, batch, cpu) for cpu in cpus[:2]], timeout)
        port = free_port()
        dp = _results([_start(width, batch, cpus[i], i, 2, port) for i in range(2)], timeout)
        r = {
            "pair": sum(p["samples_per_s"] for p in pair),
            "pair_each": [p["samples_per_s"] for p in pair],  # CPU by CPU: are the two alike?
            "dp2": dp[0]["samples_per_s"],
            "allreduce_ms": dp[0]["allreduce_ms"],
        }
        r["dp2_over_pair"] = round(r["dp2"] / r["pair"], 3)
        if lockstep:
            port = free_port()
            steps = _results([_start(width, batch, cpus[i], i, 2, port, lockstep=True) for i in range(2)], timeout)
            r["lockstep"] = steps[0]["samples_per_s"]
            r["lockstep_over_pair"] = round(r["lockstep"] / r["pair"], 3)
        per_round.append(r)
    row = {
        "width": width,
        "batch": batch,
        "one": one["samples_per_s"],
        "update_floats": dp[0]["update_floats"],
        "data": one["data"],
        "rounds": per_round,
    }
    for key in ("pair", "dp2", "allreduce_ms", "dp2_over_pair", "lockstep", "lockstep_over_pair"):
        if key in per_round[0]:
            row[key] = statistics.median(r[key] for r in per_round)
    return row


COLUMNS = [
    ("width", "width", "{:,}"),
    ("batch", "batch", "{}"),
    ("one s/s", "one", "{:,.0f}"),
    ("pair s/s", "pair", "{:,.0f}"),
    ("dp2 s/s", "dp2", "{:,.0f}"),
    ("dp2/pair", "dp2_over_pair", "{:.2f}"),
    ("allreduce ms", "allreduce_ms", "{:.2f}"),
    ("update floats", "update_floats", "{:,}"),
]
LOCKSTEP_COLUMNS = [("lockstep s/s", "lockstep", "{:,.0f}"), ("lockstep/pair", "lockstep_over_pair", "{:.2f}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--widths", default="2000,20000")
    parser.add_argument("--batches", default="16,64,256,1024")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument("--lockstep", action="store_true", help="also the lockstep run (see the module)")
    parser.add_argument("--samples", type=int, help=f"timed samples per run (default: {SAMPLES})")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of pair, dp2 (and lockstep)")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    if args.samples:
        SAMPLES.update(dict.fromkeys(widths, args.samples))
    if args.worker:
        print(json.dumps(worker(widths[0], batches[0], args.process_id, args.processes, args.port, args.lockstep)))
        return
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("data_parallel.py needs 2 CPUs")
    rows = []
    columns = COLUMNS + LOCKSTEP_COLUMNS * args.lockstep
    print(" | ".join(f"{h:>13}" for h, _, _ in columns), flush=True)
    for width in widths:
        for batch in batches:
            row = measure(width, batch, args.timeout, args.lockstep, args.rounds)
            rows.append(row)
            print(" | ".join(f"{fmt.format(row[k]):>13}" for _, k, fmt in columns), flush=True)
            if args.rounds > 1:
                keys = [k for k in ("dp2_over_pair", "lockstep_over_pair") if k in row]
                ratios = ["/".join(f"{r[k]:.2f}" for k in keys) for r in row["rounds"]]
                print(f"  {' and '.join(keys)} by round: {'  '.join(ratios)}", flush=True)
    import jax

    meta = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "samples_per_run": SAMPLES,
        "rounds": args.rounds,
        "load_avg_at_end": os.getloadavg(),
    }
    (HERE / "data_parallel.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {HERE / 'data_parallel.json'}")


if __name__ == "__main__":
    main()
