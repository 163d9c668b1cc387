"""One data-parallel training run of the dyadic seed network, for ``test_data_parallel.py``.

Run as a script (one per process, or one process with several CPU devices); also imported by the
test for the single-process reference, so both sides run exactly the same steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BATCH = 16  # global batch
N_BATCHES = 4


def configure() -> None:
    """The test suite's jax settings (``tests/conftest.py``)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")


def train(dynamics: str, mesh=None, shard: tuple[int, int] = (0, 1)):
    """Two ``train_step`` batches, then ``fit_epoch`` and ``evaluate`` over the other two.

    ``shard = (i, n)``: this process holds part ``i`` of ``n`` of every global batch.
    Returns ``(trainer, key, batch accuracies)``.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    sys.path.insert(0, str(Path(__file__).parent))
    from _nets import dyadic_seed10, pm1_data

    from darnax.trainers.dynamical import DynamicalTrainer

    state, orch = dyadic_seed10(dynamics=dynamics)
    opt = optax.sgd(1.0)
    trainer = DynamicalTrainer(
        orch, state, opt, opt.init(eqx.filter(orch, eqx.is_inexact_array)), 1, 3, 3, 3, mesh=mesh
    )
    x, y = pm1_data(jax.random.key(2), BATCH * N_BATCHES, 64, 5)
    i, n = shard
    b = BATCH // n
    rows = jnp.concatenate([jnp.arange(k * BATCH + i * b, k * BATCH + (i + 1) * b) for k in range(N_BATCHES)])
    x, y = x[rows], y[rows]
    key = jax.random.key(7)
    for k in range(2):
        key = trainer.train_step(x[k * b : (k + 1) * b], y[k * b : (k + 1) * b], key)
    key = trainer.fit_epoch(x[2 * b :], y[2 * b :], key, batch_size=b)
    key, metrics = trainer.evaluate(x, y, key, batch_size=b)
    return trainer, key, metrics["batch_accuracy"]


def count_collectives(dynamics: str, mesh, out: Path) -> None:
    """Write the operand count of every all-reduce in the compiled data-parallel training step."""
    import equinox as eqx
    import jax
    import optax

    sys.path.insert(0, str(Path(__file__).parent))
    from _nets import dyadic_seed10, pm1_data

    from darnax.trainers.dynamical import DynamicalTrainer

    state, orch = dyadic_seed10(dynamics=dynamics)
    opt = optax.sgd(1.0)
    trainer = DynamicalTrainer(
        orch, state, opt, opt.init(eqx.filter(orch, eqx.is_inexact_array)), 1, 3, 3, 3, mesh=mesh
    )
    x, y = pm1_data(jax.random.key(2), BATCH, 64, 5)
    hlo = trainer._jit_train.lower(x, y, jax.random.key(7), trainer.orchestrator, trainer._template, trainer.ctx)
    text = hlo.compile().compiled.as_text()
    ops = [line for line in text.splitlines() if " all-reduce(" in line or " all-reduce-start(" in line]
    operands = [line.split(" all-reduce", 1)[1].split(")", 1)[0].count("%") for line in ops]
    (out / "collectives.txt").write_text(" ".join(map(str, operands)))  # operands of each all-reduce


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dynamics", default="sync")
    parser.add_argument("--processes", type=int, default=1, help="jax.distributed processes (1: local devices)")
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--collectives", action="store_true", help="write the compiled step's all-reduce count")
    args = parser.parse_args()
    import jax

    configure()
    if args.processes > 1:
        jax.distributed.initialize(f"127.0.0.1:{args.port}", num_processes=args.processes, process_id=args.process_id)
    import equinox as eqx
    import numpy as np

    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    shard = (args.process_id, args.processes) if args.processes > 1 else (0, 1)
    if args.collectives:
        count_collectives(args.dynamics, mesh, args.out)
        return
    trainer, key, accuracy = train(args.dynamics, mesh, shard)
    out = args.out / f"process{args.process_id}"
    eqx.tree_serialise_leaves(out.with_suffix(".eqx"), (trainer.orchestrator, trainer.ctx["optimizer_state"]))
    np.savez(
        out.with_suffix(".npz"),
        key=np.asarray(jax.random.key_data(key)),
        accuracy=np.asarray(accuracy),
        devices=jax.device_count(),
    )


if __name__ == "__main__":
    main()
