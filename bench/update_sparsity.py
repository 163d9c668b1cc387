"""Benchmark: how sparse the update is that a data-parallel step sums across processes (issue 12).

A data-parallel step reduces the plasticity rules' raw batch sums (``x^T e`` and the perceptron
terms, before scaling and weight decay) with one ``psum`` of their concatenation
(:func:`darnax.utils.data_parallel.with_fused_batch_sums`). The perceptron rule's error is zero
for every unit that meets its margin, so most of that vector may be zeros; a sparse exchange
(each process sends its non-zero entries, index and value, to every other: an allgather) would
then move fewer bytes than the dense allreduce.

This script trains the seed network (``darnax train``'s default) on Fashion-MNIST as a
data-parallel trainer on a one-device mesh, so that the compiled step contains that ``psum``,
and counts the non-zeros of the vector it reduces at every step (``jax.lax.psum`` is wrapped for
the whole process, which is why this is a script and not a library option). At batch ``b`` this
is what one process of a run at global batch ``P * b`` would send.

Cost, per process and step, with a ring: the dense allreduce moves ``2 (P - 1) / P * 4 n`` bytes
in ``2 (P - 1)`` hops; an allgather of ``k`` (int32 index, float32 value) pairs from each process
moves ``(P - 1) * 8 k`` bytes in ``P - 1`` hops, with ``k`` the largest count over processes and
steps (a compiled program needs a fixed capacity). Sparse moves fewer bytes only while
``k / n < 1 / P``.

Usage::

    python bench/update_sparsity.py                    # b = 8, 16, 64, 128, 512; 1 epoch each
    python bench/update_sparsity.py --batches 16 --epochs 2

Prints a table and writes ``bench/update_sparsity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from darnax.cli.config import Config
from darnax.cli.network import build_trainer
from train_step import _data

HERE = Path(__file__).resolve().parent
SAMPLES = 57344  # 56 * 1024: every batch size below divides it
_counts: list[tuple[int, int]] = []  # (non-zeros, size) of every reduced vector, in order
_psum = jax.lax.psum


def _counting_psum(x, axis_name, **kwargs):
    """``jax.lax.psum``, reporting the non-zeros of each vector it reduces (the update's)."""
    for leaf in jax.tree.leaves(x):
        if leaf.ndim == 1 and leaf.size > 1:  # the fused update, not the accuracies' scalars
            jax.debug.callback(lambda k, n=leaf.size: _counts.append((int(k), n)), jnp.count_nonzero(leaf))
    return _psum(x, axis_name, **kwargs)


def measure(batch: int, epochs: int) -> dict:
    """Non-zero fraction of the reduced update at every step of ``epochs`` epochs at ``batch``."""
    mesh = jax.make_mesh((1,), ("data",), devices=jax.devices()[:1])
    trainer = build_trainer(Config(), 784, 10, mesh=mesh)
    x, y, source = _data(SAMPLES)
    key = jax.random.key(0)
    _counts.clear()
    t0 = time.perf_counter()
    for _ in range(epochs):
        key = trainer.fit_epoch(x, y, key, batch_size=batch)
    jax.block_until_ready(trainer.orchestrator)
    jax.effects_barrier()
    steps = SAMPLES // batch
    if len(_counts) != epochs * steps:
        raise RuntimeError(f"expected {epochs * steps} reduced updates, counted {len(_counts)}")
    size = _counts[0][1]
    frac = np.array([k for k, _ in _counts]) / size
    last = frac[-steps:]  # the last epoch
    return {
        "batch": batch,
        "epochs": epochs,
        "data": source,
        "update_floats": size,
        "first_100_steps": round(float(frac[:100].mean()), 4),
        "last_epoch_mean": round(float(last.mean()), 4),
        "last_epoch_max": round(float(last.max()), 4),
        "last_epoch_p99": round(float(np.quantile(last, 0.99)), 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }


COLUMNS = [
    ("b", "batch", "{}"),
    ("update floats", "update_floats", "{:,}"),
    ("first 100 steps", "first_100_steps", "{:.2%}"),
    ("last epoch mean", "last_epoch_mean", "{:.2%}"),
    ("last epoch p99", "last_epoch_p99", "{:.2%}"),
    ("last epoch max", "last_epoch_max", "{:.2%}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="8,16,64,128,512", help="per-process batch sizes b")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    jax.lax.psum = _counting_psum
    rows = []
    print(" | ".join(f"{h:>15}" for h, _, _ in COLUMNS), flush=True)
    for batch in (int(b) for b in args.batches.split(",")):
        row = measure(batch, args.epochs)
        rows.append(row)
        print(" | ".join(f"{fmt.format(row[k]):>15}" for _, k, fmt in COLUMNS), flush=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(), "jax": jax.__version__}
    meta["samples_per_epoch"] = SAMPLES
    meta["cpus"] = os.cpu_count()
    (HERE / "update_sparsity.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {HERE / 'update_sparsity.json'}")


if __name__ == "__main__":
    main()
