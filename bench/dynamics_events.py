"""Benchmark: how much of the recurrent dynamics' work the incremental kernel skips over a training epoch.

``sync_sign_steps`` computes the fields once, then per step decides every unit (N comparisons per
sample) and moves the fields only by the rows of the units that flipped; a recomputing step
(``sign(h_ext + s @ J)``) costs ``nnz`` multiply-adds per sample whatever flips. This script trains
the seed network (``darnax train``'s default preset, sync dynamics) for one Fashion-MNIST epoch
with every dynamics call reporting its flips (a ``jax.debug.callback``: statistics only, not a
timing run), then reports:

- per phase (clamped, free) and step, the fraction of units that flip;
- the multiply-adds done by the pushes against those of recomputing steps (the work skipped),
  and the steps never run because a phase reached a fixed point;
- the gain in time: the kernel against recomputing steps (``sparse_matmul`` + sign, compiled),
  side by side on the inputs of the epoch's last training batches (medians).

Usage::

    python bench/dynamics_events.py --data-dir ../shared/datasets   # about 1 minute

Prints a table and writes ``bench/dynamics_events.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _record_flips(log: dict) -> None:
    """Make every compiled dynamics call report its flips, inputs and step count into ``log``."""
    import jax

    from darnax import ops
    from darnax.modules import _kernels

    def sync_steps(h_ext, values, pattern, diag, s0, n_steps, backend):
        s, flips, fields = ops.sync_sign_steps(h_ext, values, pattern, diag, s0, n_steps)

        def record(flips, h_ext, s0, values, diag):
            log["calls"].append((int(n_steps), np.asarray(flips)))
            log["last"] = (np.asarray(h_ext), np.asarray(s0), np.asarray(values), np.asarray(diag), int(n_steps))

        jax.debug.callback(record, flips, h_ext, s0, values, diag, ordered=True)
        log["pattern"] = pattern
        return s, fields

    _kernels.sync_steps = sync_steps


def _timings(log: dict, reps: int) -> dict:
    """The last call's kernel time against recomputing steps, medians of interleaved repetitions."""
    import jax
    import jax.numpy as jnp

    from darnax import ops

    h_ext, s0, values, diag, n_steps = (jnp.asarray(a) if i < 4 else a for i, a in enumerate(log["last"]))
    pattern = log["pattern"]
    kernel = jax.jit(lambda h, s: ops.sync_sign_steps(h, values, pattern, diag, s, n_steps)[0])

    def recompute(h, s):
        for _ in range(n_steps):
            s = jnp.where(h + ops.sparse_matmul(s, values, pattern) + diag * s >= 0, 1.0, -1.0).astype(s.dtype)
        return s

    recompute = jax.jit(recompute)
    times: dict[str, list[float]] = {"kernel": [], "recompute": []}
    for _ in range(reps):
        for name, fn in (("kernel", kernel), ("recompute", recompute)):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(h_ext, s0))
            times[name].append(time.perf_counter() - t0)
    out = {f"{k}_us": round(1e6 * statistics.median(v), 1) for k, v in times.items()}
    out["steps"] = n_steps
    out["gain"] = round(out["recompute_us"] / out["kernel_us"], 2)
    # float32 fields recomputed each step against float64 ones moved by flips: equal but for ties
    out["same_states_fraction"] = float(jnp.mean(kernel(h_ext, s0) == recompute(h_ext, s0)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder with fashion-mnist/ (else DARNAX_DATA_DIR)")
    parser.add_argument("--batches", type=int, default=0, help="train on this many batches (0: the epoch)")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--json", default=str(HERE / "dynamics_events.json"))
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["DARNAX_DATA_DIR"] = str(Path(args.data_dir).resolve())
    import jax

    from darnax.cli.config import resolve
    from darnax.cli.network import build_trainer
    from darnax.datasets.classification.fashion_mnist import FashionMnist

    log: dict = {"calls": []}
    _record_flips(log)
    config = resolve("seed-sparse")
    ds = FashionMnist(batch_size=16, label_mode="pm1", x_transform="identity")
    key = ds.build(jax.random.key(0))
    trainer = build_trainer(config, 784, 10)
    x, y = ds.epoch_arrays()
    if args.batches:
        x, y = x[: 16 * args.batches], y[: 16 * args.batches]
    jax.block_until_ready(trainer.fit_epoch(x, y, key, batch_size=16))
    n = trainer.orchestrator.lmap[1, 1].J.shape[0]
    nnz = log["pattern"].nnz
    rows = []
    for phase, calls in (("clamped", log["calls"][0::2]), ("free", log["calls"][1::2])):
        steps = calls[0][0]
        flips = np.stack([f for _, f in calls])  # (calls, B, steps)
        samples = flips.shape[0] * flips.shape[1]
        per_step = flips.sum(axis=(0, 1)) / (samples * n)
        pushes = flips.sum() * nnz / n  # multiply-adds of the pushes (mean out-degree per flip)
        moving = (flips > 0).any(axis=1)  # (calls, steps): a step in which some sample of the call flipped
        last = np.where(moving.any(axis=1), steps - np.argmax(moving[:, ::-1], axis=1), 0)
        run = np.minimum(last + 1, steps).sum()  # a call stops after its first step without flips
        rows.append(
            {
                "phase": phase,
                "calls": flips.shape[0],
                "kernel_steps": steps,
                "flip_fraction_per_step": [round(float(v), 5) for v in per_step],
                "pushed_macs_fraction": round(float(pushes / (samples * steps * nnz)), 5),
                "steps_run_fraction": round(float(run / (flips.shape[0] * steps)), 4),
            }
        )
    result = {"units": n, "nnz": nnz, "samples": int(x.shape[0]), "phases": rows, "timing": _timings(log, args.reps)}
    for row in rows:
        print(
            f"{row['phase']:8s} calls {row['calls']:5d}  steps per call {row['kernel_steps']}  "
            f"flipping units per step {row['flip_fraction_per_step']}  "
            f"multiply-adds pushed / recomputed {row['pushed_macs_fraction']:.4f}"
        )
    t = result["timing"]
    print(
        f"last call ({t['steps']} steps): kernel {t['kernel_us']} µs, recomputing steps {t['recompute_us']} µs: {t['gain']}x"
    )
    load = os.getloadavg()
    result["load_average"] = load
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"# load average {load[0]:.2f}; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
