"""Benchmark: one collective's time against its size, 2 processes on localhost (issue 12).

A data-parallel step sums its update over the processes with one ``psum`` (an allreduce over
gloo, jax's CPU collectives). This measures, for float32 vectors of ``n`` entries, the median
time of

- ``psum``: the allreduce a data-parallel step uses;
- ``all_gather``: every process receives every other's vector (what a sparse exchange of
  (index, value) pairs would use, at twice the bytes per entry sent);
- ``psum_pieces`` (``--piece K``): one ``psum`` of the vector cut into ``K``-float slices.

Each process is pinned to its own CPU (``--unpinned``: both free to use every CPU); 2 warm-up
calls, then the median of ``--reps``.

Usage::

    python bench/allreduce.py                          # n = 1 ... 4,000,000
    python bench/allreduce.py --sizes 237269,3960000 --reps 50
    python bench/allreduce.py --sizes 237269 --piece 65536 --unpinned

Prints a table and writes ``bench/allreduce.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from darnax.cli.distributed import free_port
from data_parallel import median_ms, replicated_call

HERE = Path(__file__).resolve().parent
SIZES = "1,1000,10000,30000,100000,237269,1000000,3960000"


def worker(process_id: int, port: int, sizes: list[int], reps: int, piece: int) -> list[dict]:
    """This process's medians (ms) of the collectives for every size."""
    import jax
    import jax.numpy as jnp

    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    mesh = jax.make_mesh((2,), ("data",))

    def in_pieces(v: jax.Array) -> jax.Array:  # one psum of a list of `piece`-float slices
        return jnp.concatenate(jax.lax.psum([v[i : i + piece] for i in range(0, v.size, piece)], "data"))

    collectives = {
        "psum": lambda v: jax.lax.psum(v, "data"),
        "all_gather": lambda v: jax.lax.all_gather(v, "data"),
        **({"psum_pieces": in_pieces} if piece else {}),
    }
    rows = []
    for n in sizes:
        row = {"n": n, "megabytes": round(4 * n / 1e6, 3)}
        for name, body in collectives.items():
            vec, call = replicated_call(mesh, n, body)
            call(vec)  # compiles; median_ms warms up once more
            row[f"{name}_ms"] = round(median_ms(call, vec, reps), 3)
        rows.append(row)
    return rows


COLUMNS = [
    ("n floats", "n", "{:,}"),
    ("MB", "megabytes", "{:.3f}"),
    ("psum ms", "psum_ms", "{:.3f}"),
    ("all_gather ms", "all_gather_ms", "{:.3f}"),
    ("psum GB/s", "psum_gb_s", "{:.2f}"),
]
PIECES_COLUMN = ("psum in pieces ms", "psum_pieces_ms", "{:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=SIZES, help="vector lengths, comma-separated")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--piece", type=int, default=0, help="also psum the vector in slices of this many floats")
    parser.add_argument("--unpinned", action="store_true", help="do not pin each process to one CPU")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.port, sizes, args.reps, args.piece)))
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("allreduce.py needs 2 CPUs")
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(i),
                "--port",
                str(port),
                "--sizes",
                args.sizes,
                "--reps",
                str(args.reps),
                "--piece",
                str(args.piece),
            ],
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=None if args.unpinned else lambda cpu=cpus[i]: os.sched_setaffinity(0, {cpu}),
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"a worker failed: exit statuses {[p.returncode for p in procs]}")
    rows = json.loads(outs[0].strip().splitlines()[-1])
    columns = COLUMNS + [PIECES_COLUMN] * bool(args.piece)
    print(" | ".join(f"{h:>13}" for h, _, _ in columns))
    for row in rows:
        row["psum_gb_s"] = row["megabytes"] / row["psum_ms"]
        print(" | ".join(f"{fmt.format(row[k]):>13}" for _, k, fmt in columns))
    meta = {"machine": platform.machine(), "python": platform.python_version(), "reps": args.reps}
    meta.update(piece=args.piece, pinned=not args.unpinned)
    meta["load_avg_at_end"] = os.getloadavg()
    (HERE / "allreduce.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {HERE / 'allreduce.json'}")


if __name__ == "__main__":
    main()
