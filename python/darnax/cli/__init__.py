"""The ``darnax`` command line: ``darnax train``, ``darnax probe`` and ``darnax bench`` (also ``python -m darnax``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from darnax.cli.config import DATASETS, PRESETS, ConfigError, load_toml, merge, resolve

EPILOG = """examples:
  darnax train                                   # the seeds' network on the bundled digits
  darnax train --preset seed-sparse --dataset fashion-mnist --data-dir ../shared/datasets
  darnax train --preset deep-2 --dataset fashion-mnist --data-dir ../shared/datasets
  darnax train --resume runs/digits              # continue a stopped run
  darnax train --cpus 1                          # one CPU: faster on small (2-vCPU) machines
  darnax probe runs/digits                       # linear probe on the last hidden layer
  darnax bench --quick                           # kernel microbenchmarks (darnax bench --help)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darnax", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a network, epoch by epoch, with checkpoints")
    train.add_argument("--dataset", choices=DATASETS, help="default: digits (bundled)")
    train.add_argument("--data-dir", help="folder with the IDX files (else DARNAX_DATA_DIR, caches)")
    train.add_argument("--config", help="TOML file with [model] [data] [optimizer] [trainer] [run] fields")
    train.add_argument("--preset", choices=tuple(PRESETS), default="default")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--dynamics", choices=("sync", "async"))
    train.add_argument("--seed", type=int, help="the training key (run.master_seed)")
    train.add_argument("--out", help="run directory (default: runs/<dataset>-<dynamics>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--cpus", type=int, help="run on this many of the CPUs the process may use (Linux; default: all)")
    probe = commands.add_parser("probe", help="linear probe on a trained run's last hidden layer")
    probe.add_argument("run_dir")
    commands.add_parser("bench", add_help=False, help="microbenchmarks of the kernels (darnax bench --help)")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    pick = lambda **kv: {k: v for k, v in kv.items() if v is not None}  # noqa: E731
    return {
        "data": pick(dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size),
        "trainer": pick(dynamics=args.dynamics),
        "run": pick(epochs=args.epochs, master_seed=args.seed),
    }


def limit_cpus(n: int) -> None:
    """Restrict this process to ``n`` of the CPUs it may use, before JAX and darnax start threads.

    JAX sizes its CPU thread pool from the affinity mask, as darnax does its kernel pool; with
    fewer CPUs than pool threads they hand work across CPUs. On a 2-vCPU machine one CPU
    trains the seeds' network about 20% faster (15,176 vs 12,579 samples/s, bench/RESULTS.md).
    """
    import os

    if n < 1:
        raise ConfigError(f"--cpus: expected at least 1, got {n}")
    if not hasattr(os, "sched_setaffinity"):
        raise ConfigError("--cpus needs os.sched_setaffinity (Linux)")
    allowed = sorted(os.sched_getaffinity(0))
    if n > len(allowed):
        raise ConfigError(f"--cpus {n}: this process may use only {len(allowed)} CPUs ({allowed})")
    os.sched_setaffinity(0, allowed[:n])


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Have glibc serve allocations of ``threshold`` bytes or more with their own pages, which go
    back to the system when freed; returns False where that cannot be set (not glibc).

    glibc otherwise raises its threshold as large blocks are freed and keeps them in its heap,
    where the fragments of a wide network's build and of each training step's buffers add up:
    at 100,000 hidden units this held ~200 MB of the process's peak (bench/RESULTS.md). Every
    process of ``darnax train`` calls it before any work.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3
    return bool(mallopt(m_mmap_threshold, threshold))


def _train(args: argparse.Namespace) -> int:
    return_freed_memory()
    if args.cpus is not None:
        limit_cpus(args.cpus)
    from darnax.cli.run import Run

    if args.resume:
        out = Path(args.resume)
        if args.config or args.dataset or args.dynamics or args.batch_size or args.seed is not None:
            raise ConfigError("--resume takes the run's own config.toml; only --epochs may change")
        config = merge(resolve(file=out / "config.toml"), {"run": {k: v for k, v in {"epochs": args.epochs}.items() if v}})
    else:
        config = resolve(args.preset, args.config, **_flags(args))
        out = Path(args.out or f"runs/{config.data.dataset}-{config.trainer.dynamics}")
        if (out / "metrics.jsonl").exists():
            raise ConfigError(f"--out {out}: already holds a run; pass --resume {out} or another --out")
    run = Run(config, out, log=sys.stdout, quiet=args.quiet)
    if args.resume:
        run.resume()
    run.train()
    return 0


def _probe(args: argparse.Namespace) -> int:
    from darnax.cli.probe import probe_run
    from darnax.cli.run import Run

    out = Path(args.run_dir)
    config = resolve(file=out / "config.toml")
    run = Run(config, out, log=sys.stdout, quiet=True)
    run.resume()
    result = probe_run(run, out)
    print(f"probe: train {100 * result['probe_train_accuracy']:.2f}%  test {100 * result['probe_test_accuracy']:.2f}%")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``darnax`` console script; returns the exit status."""
    from darnax.cli.checkpoint import CheckpointError
    from darnax.datasets import DatasetNotFoundError, IdxFormatError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser: darnax.bench is usable without the training CLI
        from darnax.bench import main as bench

        return bench(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return _train(args) if args.command == "train" else _probe(args)
    except (ConfigError, CheckpointError, DatasetNotFoundError, IdxFormatError) as err:
        print(f"darnax: error: {err}", file=sys.stderr)
        return 2
