"""How much of the plasticity products' work zero errors let darnax skip, over one Fashion-MNIST epoch.

``python bench/event_skipping.py [--data-dir DIR] [--chunks 25] [--samples 60000] [--json FILE]``

Trains the seeds' network (``darnax train --preset seed-sparse``: 784-2000-10, batch 16) for one
epoch of the 60,000 training images (one fixed shuffle), twice side by side: two identical
trainers advance chunk by chunk in turn, one with ``sparse_outer``'s zero-error shortcuts on and
one with them off (``direct.set_sparse_outer_skipping``). Per chunk it reads the kernel's own
counters (``direct.sparse_outer_work``): (entry, sample) products computed and skipped, calls,
and the calls' wall time. The shortcuts are exact, so the two trainers must end bit for bit
equal; the script checks that too.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

from darnax.cli.config import Config
from darnax.cli.network import build_trainer
from darnax.datasets import read_idx
from darnax.ops import direct

BATCH = 16
HERE = Path(__file__).resolve().parent


def _data(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 60,000 training images in [0, 1] (one fixed shuffle) and their ±1 one-hot labels."""
    x = read_idx(folder / "train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz")
    order = np.random.default_rng(0).permutation(x.shape[0])
    y = np.where(np.eye(10, dtype=bool)[labels[order]], 1.0, -1.0).astype(np.float32)
    return x[order], y


def _chunk(trainer, x: np.ndarray, y: np.ndarray, key: jax.Array, skipping: bool) -> tuple[jax.Array, dict]:
    """One chunk of batches with the shortcuts on or off; the kernel's counters and the wall time."""
    direct.set_sparse_outer_skipping(skipping)
    direct.reset_sparse_outer_work()
    t0 = time.perf_counter()
    key = trainer.fit_epoch(x, y, key, batch_size=BATCH)
    jax.block_until_ready(trainer.orchestrator)
    work = direct.sparse_outer_work()
    work["wall_s"] = time.perf_counter() - t0
    return key, work


def main(argv: list[str] | None = None) -> dict:
    shared = Path(os.environ.get("DARNAX_SHARED_DIR", HERE.parent.parent / "shared")) / "datasets"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=shared, help="folder holding fashion-mnist/")
    p.add_argument("--chunks", type=int, default=25, help="chunks the epoch is cut into (alternation)")
    p.add_argument("--samples", type=int, default=60000, help="train on the first N (shuffled) images")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    x, y = _data(args.data_dir / "fashion-mnist")
    x, y = x[: args.samples], y[: args.samples]
    size = x.shape[0] // args.chunks // BATCH * BATCH
    trainers = {on: build_trainer(Config(), 784, 10) for on in (True, False)}
    keys = {on: jax.random.key(0) for on in (True, False)}
    rows = []
    for c in range(args.chunks):
        xs, ys = x[c * size : (c + 1) * size], y[c * size : (c + 1) * size]
        row = {"chunk": c}
        for on in (True, False) if c % 2 == 0 else (False, True):  # alternate who goes first
            keys[on], row["on" if on else "off"] = _chunk(trainers[on], xs, ys, keys[on], on)
        rows.append(row)
        on = row["on"]
        print(
            f"chunk {c:3d}: skipped {on['skipped'] / (on['computed'] + on['skipped']):6.1%}  "
            f"sparse_outer {1e3 * on['seconds']:7.1f} ms on / {1e3 * row['off']['seconds']:7.1f} ms off  "
            f"chunk {on['wall_s']:5.2f} s / {row['off']['wall_s']:5.2f} s",
            flush=True,
        )
    direct.set_sparse_outer_skipping(True)
    leaves = {on: jax.tree_util.tree_leaves(trainers[on].orchestrator) for on in (True, False)}
    same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves[True], leaves[False], strict=True))

    def total(side: str, field: str) -> float:  # epoch wall times leave out chunk 0 (compilation)
        return sum(r[side][field] for r in (rows[1:] if field == "wall_s" else rows))

    computed, skipped = total("on", "computed"), total("on", "skipped")
    last = rows[-1]["on"]
    out = {
        "samples": size * args.chunks,
        "chunks": args.chunks,
        "calls": total("on", "calls"),
        "products_computed": computed,
        "products_skipped": skipped,
        "fraction_skipped": skipped / (computed + skipped),
        "fraction_skipped_last_chunk": last["skipped"] / (last["computed"] + last["skipped"]),
        "sparse_outer_s_on": total("on", "seconds"),
        "sparse_outer_s_off": total("off", "seconds"),
        "epoch_s_on_after_chunk_0": total("on", "wall_s"),
        "epoch_s_off_after_chunk_0": total("off", "wall_s"),
        "bit_identical_states": same,
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    print(
        f"epoch: {out['fraction_skipped']:.1%} of the (entry, sample) products skipped "
        f"({out['fraction_skipped_last_chunk']:.1%} in the last chunk); sparse_outer "
        f"{out['sparse_outer_s_on']:.2f} s with skipping, {out['sparse_outer_s_off']:.2f} s without "
        f"({out['sparse_outer_s_off'] / out['sparse_outer_s_on']:.2f}x); epoch after chunk 0 "
        f"{out['epoch_s_on_after_chunk_0']:.1f} s vs {out['epoch_s_off_after_chunk_0']:.1f} s; "
        f"states bit for bit equal: {same}"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
