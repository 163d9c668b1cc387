"""Benchmark: the seeds' training loop on darnax and on the published reference, side by side.

Seed 10's network (784-2000-10, W_in sparsity 0.9, J sparsity 0.99, module-internal learning
rates, ``optax.sgd(1.0)``, batch 16) is built through the seeds' public API only, so the same
worker runs on any implementation of that API: this darnax, or the published pure-JAX reference
(a folder holding its ``darnax`` package, put first on ``PYTHONPATH`` by ``--reference``, run by
``--reference-python``). Each worker trains with ``trainer.train_step`` per batch, as the seeds'
loop does, on the same real Fashion-MNIST batches (read once here by darnax's loader and handed
to the workers as a ``.npy`` file). Per round, alternating: the reference's loop, darnax's loop,
and optionally (``--epoch``) the main job's epochs, ``darnax train --preset seed-sparse
--dataset fashion-mnist --epochs 2`` (each epoch's ``train_seconds`` / 3,750 batches; the
first includes loading or compiling the program, the second is steady like the loops' blocks).

Times are per batch: medians over the timed blocks of a round (the first ``train_step``,
compilation included, is reported apart), then medians over rounds; ratios are the reference's
over darnax's. No code of the reference is part of darnax; fetch and install it yourself.

Usage::

    python bench/reference_loop.py --data-dir ../shared/datasets \
        --reference /path/to/reference/src --reference-python /path/to/its/venv/bin/python --epoch

Prints a table and writes ``bench/reference_loop.json``.
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
EPOCH_BATCHES = 60_000 // BATCH


def worker(data: str, blocks: int, block: int) -> dict:
    """Seed 10's network and loop on the importable ``darnax``; returns a JSON-able dict."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    import darnax
    from darnax.layer_maps.sparse import LayerMap
    from darnax.modules.fully_connected import FrozenRescaledFullyConnected, FullyConnected, SparseFullyConnected
    from darnax.modules.input_output import OutputLayer
    from darnax.modules.recurrent import SparseRecurrentDiscrete
    from darnax.orchestrators.sequential import SequentialOrchestrator
    from darnax.states.sequential import SequentialState
    from darnax.trainers.dynamical import DynamicalTrainer

    arrays = np.load(data)
    x, y = arrays["x"], arrays["y"]
    keys = jax.random.split(jax.random.key(44), 5)
    hidden = 2000
    layers = {
        1: {
            0: SparseFullyConnected(
                in_features=784,
                out_features=hidden,
                strength=5.0,
                threshold=1.78,
                sparsity=0.9,
                key=keys[0],
                lr=0.159 / jnp.sqrt(1.0 - 0.9),
                weight_decay=0.01,
            ),
            1: SparseRecurrentDiscrete(
                features=hidden,
                j_d=0.95,
                sparsity=0.99,
                threshold=1.78,
                key=keys[1],
                lr=0.058 / jnp.sqrt(1.0 - 0.99),
                weight_decay=0.00006,
            ),
            2: FrozenRescaledFullyConnected(
                in_features=10, out_features=hidden, strength=1.3, threshold=0.0, key=keys[2]
            ),
        },
        2: {
            1: FullyConnected(
                in_features=hidden,
                out_features=10,
                strength=1.0,
                threshold=7.0,
                key=keys[3],
                lr=0.17,
                weight_decay=0.02,
            ),
            2: OutputLayer(),
        },
    }
    orchestrator = SequentialOrchestrator(layers=LayerMap.from_dict(layers))
    optimizer = optax.sgd(learning_rate=1.0)
    trainer = DynamicalTrainer(
        orchestrator=orchestrator,
        state=SequentialState((784, hidden, 10)),
        optimizer=optimizer,
        optimizer_state=optimizer.init(eqx.filter(orchestrator, eqx.is_inexact_array)),
        warmup_n_iter=1,
        train_clamped_n_iter=5,
        train_free_n_iter=5,
        eval_n_iter=5,
    )
    batches = [(jnp.asarray(x[i : i + BATCH]), jnp.asarray(y[i : i + BATCH])) for i in range(0, len(x), BATCH)]
    key = jax.random.key(0)
    t0 = time.perf_counter()
    key = trainer.train_step(*batches[0], key)
    jax.block_until_ready((key, trainer.orchestrator))
    first = time.perf_counter() - t0
    times = []
    for b in range(blocks):
        t0 = time.perf_counter()
        for xb, yb in batches[1 + b * block : 1 + (b + 1) * block]:
            key = trainer.train_step(xb, yb, key)
        jax.block_until_ready((key, trainer.orchestrator))
        times.append((time.perf_counter() - t0) / block)
    return {
        "darnax": str(Path(darnax.__file__).parent),
        "first_step_s": round(first, 3),
        "block_ms": [round(1e3 * t, 2) for t in times],
        "ms_per_batch": round(1e3 * statistics.median(times), 3),
    }


def _run_loop(python: str, pythonpath: str | None, data: str, blocks: int, block: int) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    cmd = [python, __file__, "--worker", data, "--blocks", str(blocks), "--block", str(block)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_epochs(data_dir: str) -> list[dict]:
    """``darnax train``'s first two epochs in a subprocess; each one's ``train_seconds`` per batch
    (the first includes loading or compiling the training program; the second is steady, as
    the loops' timed blocks are)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = ["darnax", "train", "--preset", "seed-sparse", "--dataset", "fashion-mnist", "--epochs", "2"]
        done = subprocess.run(
            [*cmd, "--out", out], env={**os.environ, "DARNAX_DATA_DIR": data_dir}, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [
        {
            "train_seconds": row["train_seconds"],
            "ms_per_batch": round(1e3 * row["train_seconds"] / EPOCH_BATCHES, 3),
            "test_accuracy": row["test_accuracy"],
        }
        for row in rows
    ]


def _save_batches(data_dir: str, n_batches: int, folder: str) -> str:
    """The first ``n_batches`` of a shuffled Fashion-MNIST epoch, as the seeds configure it."""
    import jax
    import numpy as np

    from darnax.datasets.classification.fashion_mnist import FashionMnist

    os.environ["DARNAX_DATA_DIR"] = data_dir
    ds = FashionMnist(batch_size=BATCH, label_mode="pm1", x_transform="identity")
    ds.build(jax.random.key(0))
    x, y = ds.epoch_arrays()
    path = os.path.join(folder, "batches.npz")
    np.savez(path, x=np.asarray(x[: BATCH * n_batches]), y=np.asarray(y[: BATCH * n_batches]))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("DARNAX_DATA_DIR"), help="holds fashion-mnist/")
    parser.add_argument("--reference", help="folder holding the reference's `darnax` package (its src/)")
    parser.add_argument("--reference-python", default=sys.executable, help="interpreter for the reference")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=4, help="timed blocks of batches per round")
    parser.add_argument("--block", type=int, default=100, help="batches per timed block")
    parser.add_argument("--epoch", action="store_true", help="also time `darnax train`'s first two epochs")
    parser.add_argument("--json", default=str(HERE / "reference_loop.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.blocks, args.block)))
        return 0
    if not args.data_dir:
        parser.error("--data-dir (or DARNAX_DATA_DIR) must name the folder that holds fashion-mnist/")
    if args.reference and not (Path(args.reference) / "darnax" / "__init__.py").is_file():
        parser.error(f"--reference {args.reference} holds no darnax/__init__.py (pass the reference's src/ folder)")
    runs: dict[str, list[dict]] = {"darnax loop": []}
    if args.reference:
        runs = {"reference loop": [], **runs}
    if args.epoch:
        runs["darnax train epoch 1"], runs["darnax train epoch 2"] = [], []
    with tempfile.TemporaryDirectory() as folder:
        data = _save_batches(args.data_dir, 1 + args.blocks * args.block, folder)
        for r in range(args.rounds):
            for name, rows in runs.items():
                if name == "reference loop":
                    row = _run_loop(args.reference_python, args.reference, data, args.blocks, args.block)
                elif name == "darnax loop":
                    row = _run_loop(sys.executable, None, data, args.blocks, args.block)
                elif name == "darnax train epoch 1":
                    row, second = _run_epochs(args.data_dir)
                    runs["darnax train epoch 2"].append(second)
                    print(json.dumps({"round": r, "run": "darnax train epoch 2", **second}), flush=True)
                else:
                    continue  # filled with epoch 1
                rows.append(row)
                print(json.dumps({"round": r, "run": name, **row}), flush=True)
    table = {name: statistics.median(row["ms_per_batch"] for row in rows) for name, rows in runs.items()}
    print("\n| run | ms per batch (median over rounds) | reference / run |\n| --- | ---: | ---: |")
    ref = table.get("reference loop")
    for name, ms in table.items():
        print(f"| {name} | {ms:.2f} | {f'{ref / ms:.1f}x' if ref else ''} |")
    report = {"load_average": os.getloadavg(), "ms_per_batch": table, "runs": runs}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
