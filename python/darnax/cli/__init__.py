"""The ``darnax`` command line: ``darnax train``, ``darnax tune``, ``darnax probe`` and ``darnax bench`` (also ``python -m darnax``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from darnax.cli.config import DATASETS, PRESETS, ConfigError, merge, method, resolve
from darnax.utils.cache import NO_CACHE_ENV

EPILOG = """examples:
  darnax train                                   # the seeds' network on the bundled digits
  darnax train --preset seed-sparse --dataset fashion-mnist --data-dir ../shared/datasets
  darnax train --preset deep-2 --dataset fashion-mnist --data-dir ../shared/datasets
  darnax train --preset seed-sparse --trainer backprop   # the same network trained by backpropagation
  darnax train --resume runs/digits              # continue a stopped run
  darnax train --seeds 3 --workers 2 --out runs/s3  # 3 seeds, mean ± sd per epoch
  darnax train --cpus 1                          # one CPU: faster when 2 vCPUs share a core
  darnax train --processes 2 --batch-size 256    # data parallel over 2 local processes
  srun darnax train --cluster --config run.toml  # one task per node under SLURM
  darnax probe runs/digits                       # linear probe on the last hidden layer
  darnax tune --space space.toml --trials 40 --workers 2 --epochs 3 --out runs/tune
  darnax bench --quick                           # kernel microbenchmarks (darnax bench --help)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="darnax", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a network, epoch by epoch, with checkpoints")
    train.add_argument("--dataset", choices=DATASETS, help="default: digits (bundled)")
    train.add_argument(
        "--data-dir",
        help="folder with the IDX files (else DARNAX_DATA_DIR, caches); with --resume: where the run's data is now",
    )
    train.add_argument("--config", help="TOML file with [model] [data] [optimizer] [trainer] [run] fields")
    train.add_argument("--preset", choices=tuple(PRESETS), default="default")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--dynamics", choices=("sync", "async"))
    train.add_argument(
        "--trainer",
        choices=("local", "backprop"),
        help="trainer.rule: local (the local learning rule, default) or backprop (the baseline: "
        "the same network's forward couplings trained by Adam on cross-entropy)",
    )
    train.add_argument("--seed", type=int, help="the training key (run.master_seed)")
    train.add_argument("--model-seed", type=int, help="the key of the weights and patterns (model.seed)")
    train.add_argument(
        "--seeds", type=int, help="train under this many seeds into OUT/seed-k; mean ± sd in OUT/seeds.jsonl"
    )
    train.add_argument(
        "--workers", type=int, default=1, help="with --seeds: runs at a time, each on its share of the CPUs"
    )
    train.add_argument("--out", help="run directory (default: runs/<dataset>-<dynamics>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write darnax's caches (decoded datasets, compiled programs; "
        "also DARNAX_NO_CACHE=1; where they are: DARNAX_CACHE_DIR, default ~/.cache/darnax)",
    )
    train.add_argument(
        "--cpus", type=int, help="run on this many of the CPUs the process may use (Linux; default: all)"
    )
    parallel = train.add_argument_group("data parallel (jax.distributed; the global batch is split over the processes)")
    parallel.add_argument(
        "--processes", type=int, help="launch this many local processes, each on its share of the CPUs"
    )
    parallel.add_argument(
        "--cluster", action="store_true", help="join a run started by SLURM or another launcher jax detects"
    )
    parallel.add_argument(
        "--coordinator", metavar="HOST:PORT", help="process 0's address (with --num-processes, --process-id)"
    )
    parallel.add_argument("--num-processes", type=int, help="processes in the run")
    parallel.add_argument("--process-id", type=int, help="this process's rank, 0 .. num-processes - 1")
    tune = commands.add_parser("tune", help="hyper-parameter search on Optuna (objective: validation accuracy)")
    tune.add_argument(
        "--space", required=True, help="TOML search space: [section.field] tables with low/high or choices"
    )
    tune.add_argument("--config", help="base TOML config (the searched fields override it)")
    tune.add_argument("--preset", choices=tuple(PRESETS), default="default")
    tune.add_argument("--dataset", choices=DATASETS)
    tune.add_argument("--data-dir")
    tune.add_argument("--trials", type=int, default=20, help="finished trials wanted in the study, old ones included")
    tune.add_argument("--workers", type=int, default=1, help="local worker processes, each on its share of the CPUs")
    tune.add_argument("--epochs", type=int, default=3, help="epochs per trial")
    tune.add_argument("--storage", help="Optuna storage: a database URL or journal:PATH (default: sqlite in --out)")
    tune.add_argument("--study", default="darnax", help="study name in the storage")
    tune.add_argument("--out", default="runs/tune", help="folder for best.toml, trials.csv/json, plots, trial runs")
    tune.add_argument("--worker-trials", type=int, help=argparse.SUPPRESS)
    probe = commands.add_parser("probe", help="linear probe on a trained run's last hidden layer")
    probe.add_argument("run_dir")
    commands.add_parser("bench", add_help=False, help="microbenchmarks of the kernels (darnax bench --help)")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    pick = lambda **kv: {k: v for k, v in kv.items() if v is not None}  # noqa: E731
    return {
        "data": pick(dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size),
        "trainer": pick(dynamics=args.dynamics, rule=args.trainer),
        "model": pick(seed=args.model_seed),
        "run": pick(epochs=args.epochs, master_seed=args.seed),
    }


def limit_cpus(n: int) -> None:
    """Restrict this process to ``n`` of the CPUs it may use, before JAX and darnax start threads.

    JAX sizes its CPU thread pool from the affinity mask, as darnax does its kernel pool; with
    fewer CPUs than pool threads they hand work across CPUs. On a 2-vCPU machine one CPU
    trains the seeds' network about 20% faster (15,176 vs 12,579 samples/s, bench/RESULTS.md).
    """
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


def _without(argv: list[str], *flags: str) -> list[str]:
    """``argv`` less the given flags and their values (launched processes get the rest as is)."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token in flags:
            skip = True
        elif not token.startswith(tuple(f + "=" for f in flags)):
            out.append(token)
    return out


def _train(args: argparse.Namespace, argv: list[str]) -> int:
    from darnax.cli import distributed, events
    from darnax.utils import compile_cache

    events.mark("start")
    return_freed_memory()
    if args.no_cache:  # in the environment: the dataset reads it, and launched processes inherit it
        os.environ[NO_CACHE_ENV] = "1"
    joins = (
        args.cluster or args.coordinator is not None or args.num_processes is not None or args.process_id is not None
    )
    if args.seeds is not None:
        from darnax.cli import seeds

        if args.resume or args.seed is not None or args.model_seed is not None or args.processes is not None:
            raise ConfigError(
                "--seeds sets each run's seeds and directory: drop --resume/--seed/--model-seed/--processes"
            )
        config = resolve(args.preset, args.config, **_flags(args))
        out = Path(args.out or f"runs/{config.data.dataset}-{method(config)}-seeds")
        return seeds.launch(_without(argv, "--seeds", "--workers", "--out"), config, out, args.seeds, args.workers)
    if args.processes is not None and args.processes != 1:
        if joins or args.cpus is not None:
            raise ConfigError(
                "--processes launches the run itself: drop --cpus/--cluster/--coordinator/--num-processes/--process-id"
            )
        return distributed.launch(_without(argv, "--processes"), args.processes)
    if args.cpus is not None:
        limit_cpus(args.cpus)
    place = distributed.join(args.coordinator, args.num_processes, args.process_id, args.cluster) if joins else None
    compile_cache.enable()
    from darnax.cli.run import Run
    from darnax.datasets import DatasetNotFoundError

    if args.resume:
        out = Path(args.resume)
        if (
            args.config
            or args.dataset
            or args.dynamics
            or args.trainer
            or args.batch_size
            or args.seed is not None
            or args.model_seed is not None
        ):
            raise ConfigError("--resume takes the run's own config.toml; only --epochs and --data-dir may change")
        config = merge(
            resolve(file=out / "config.toml"), {"run": {k: v for k, v in {"epochs": args.epochs}.items() if v}}
        )
        if args.data_dir:  # the data moved: the files' content is checksummed, their folder is free
            config = merge(config, {"data": {"data_dir": args.data_dir}})
    else:
        config = resolve(args.preset, args.config, **_flags(args))
        out = Path(args.out or f"runs/{config.data.dataset}-{method(config)}")
        if (out / "metrics.jsonl").exists():
            raise ConfigError(f"--out {out}: already holds a run; pass --resume {out} or another --out")
    try:
        run = Run(config, out, log=sys.stdout, quiet=args.quiet, place=place)
    except DatasetNotFoundError as err:
        if not args.resume:
            raise
        where = f"--data-dir {config.data.data_dir}" if config.data.data_dir else "the default folders"
        raise DatasetNotFoundError(
            f"{err}\nThe run {out} read its data from {where}; if the files moved, resume with "
            f"darnax train --resume {out} --data-dir NEW_FOLDER"
        ) from err
    if args.resume:
        run.resume(allow_restart=True)
    run.train()
    events.mark("done")
    return 0


def _tune(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        import optuna
    except ImportError:
        raise ConfigError("darnax tune needs Optuna: pip install 'darnax[tune]'") from None
    from darnax.cli import tune

    for flag, value in (("--trials", args.trials), ("--workers", args.workers), ("--epochs", args.epochs)):
        if value < 1:
            raise ConfigError(f"{flag}: expected at least 1, got {value}")
    return_freed_memory()
    from darnax.utils import compile_cache

    compile_cache.enable()
    base = resolve(
        args.preset,
        args.config,
        data={k: v for k, v in {"dataset": args.dataset, "data_dir": args.data_dir}.items() if v},
    )
    params = tune.load_space(args.space, base)
    out = Path(args.out)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=args.study,
        storage=tune.storage(args.storage, out),
        direction="maximize",
        load_if_exists=True,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )
    run_trial = tune.objective(base, params, args.epochs, out)
    if args.worker_trials is not None:  # a worker of launch_workers: the study is set up
        study.optimize(run_trial, n_trials=args.worker_trials, callbacks=[tune.print_trial])
        return 0
    start = tune.enqueue_base(study, base, params)
    remaining = args.trials - tune.finished(study)
    workers = min(args.workers, max(remaining, 0))
    print(
        f"darnax tune: {len(params)} parameters, {tune.finished(study)} trials finished, {max(remaining, 0)} to run"
        f" on {workers} worker(s) -> {out}; {start}",
        flush=True,
    )
    if workers == 1:
        study.optimize(run_trial, n_trials=remaining, callbacks=[tune.print_trial])
    elif workers > 1:
        code = tune.launch_workers(argv, [remaining // workers + (i < remaining % workers) for i in range(workers)])
        if code:
            return code
    tune.report(study, base, params, args.epochs, out)
    return 0


def _probe(args: argparse.Namespace) -> int:
    from darnax.utils import compile_cache

    compile_cache.enable()
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
    from darnax.utils._checks import NonFiniteWeightsError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser: darnax.bench is usable without the training CLI
        from darnax.bench import main as bench

        return bench(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "tune":
            return _tune(args, argv)
        return _train(args, argv) if args.command == "train" else _probe(args)
    except (ConfigError, CheckpointError, DatasetNotFoundError, IdxFormatError, NonFiniteWeightsError) as err:
        print(f"darnax: error: {err}", file=sys.stderr)
        return 2
