"""Benchmark: where the main job's memory goes, phase by phase.

``darnax train``'s own steps in one process: ``Run`` (dataset, network, trainer), one training
chunk as the command runs it (``CHUNK`` batches in one donated ``fit_epoch`` call), twice, then
one evaluation chunk (``EVAL_CHUNK`` batches in one ``evaluate`` call). After each phase: the
process's peak and current resident memory (``VmHWM``, ``VmRSS``), the bytes of live jax arrays,
and the resident memory once glibc has handed back what it can (``malloc_trim``: what remains is
held, not just cached by the allocator). Also the compiled programs' own buffers as XLA plans
them (``memory_analysis``: arguments, outputs, temporaries).

Usage::

    python bench/job_memory.py --data-dir ../shared/datasets          # wide-100k, Fashion-MNIST
    python bench/job_memory.py --preset seed-sparse --dataset digits

Prints a table and writes ``bench/job_memory.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _status() -> dict[str, int]:
    """VmHWM and VmRSS of this process, MiB."""
    with open("/proc/self/status") as f:
        return {line.split(":")[0]: int(line.split()[1]) // 1024 for line in f if line.startswith(("VmHWM", "VmRSS"))}


def _trimmed_rss() -> int:
    """VmRSS after glibc's malloc_trim(0), MiB."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return _status()["VmRSS"]


def _xla_mib(compiled) -> dict[str, int]:
    """Arguments, outputs and temporaries of a compiled program, MiB."""
    m = compiled.memory_analysis()
    return {k: getattr(m, f"{k}_size_in_bytes") >> 20 for k in ("argument", "output", "temp")}


def measure(preset: str, dataset: str, data_dir: str | None) -> dict:
    import jax
    import numpy as np

    from darnax.cli import return_freed_memory
    from darnax.cli.config import resolve
    from darnax.cli.run import CHUNK, EVAL_CHUNK, Run
    from darnax.ops import direct
    from darnax.trainers._flat import Flat

    return_freed_memory()
    config = resolve(preset, data={"dataset": dataset, "data_dir": data_dir})
    rows, t0 = [], time.perf_counter()

    def phase(name: str) -> None:
        live = sum(a.nbytes for a in jax.live_arrays()) >> 20
        status = _status()
        rows.append(
            {
                "phase": name,
                "seconds": round(time.perf_counter() - t0, 1),
                "peak_mib": status["VmHWM"],
                "rss_mib": status["VmRSS"],
                "live_arrays_mib": live,
                "rss_trimmed_mib": _trimmed_rss(),
                "scratch_kept_main_thread_mib": round(direct.scratch_info()["bytes"] / 2**20, 1),
            }
        )

    phase("imports")
    with open(os.devnull, "w") as log:
        run = Run(config, Path("/tmp/darnax-job-memory"), log=log, quiet=True)
    trainer, ds, batch = run.trainer, run.dataset, config.data.batch_size
    phase("built")
    x, y = ds.rows("train", ds.epoch_order()[: CHUNK * batch])
    (xs, ys), _ = trainer._epoch_batches(x, y, batch)
    kept = Flat.of({k: v for k, v in trainer.ctx.items() if k != "optimizer_state"})
    fit = trainer._flat_fit_in_place.lower(
        xs,
        ys,
        run.key,
        trainer._flat_orchestrator,
        trainer._flat_template,
        kept,
        Flat.of(trainer.ctx["optimizer_state"]),
        Flat.of(None),
    ).compile()
    for name in ("fit chunk 1", "fit chunk 2"):
        run.key = trainer.fit_epoch(x, y, run.key, batch_size=batch, donate=True)
        jax.block_until_ready(run.key)
        phase(name)
    xt, yt = ds.rows("test", np.arange(min(EVAL_CHUNK * batch, ds.spec()["num_test"] // batch * batch)))
    (xts, yts), _ = trainer._epoch_batches(xt, yt, batch)
    evaluate = trainer._flat_evaluate.lower(
        xts, yts, run.key, trainer._flat_orchestrator, trainer._flat_template, trainer._flat_ctx, Flat.of(False)
    ).compile()
    run.key, _ = trainer.evaluate(xt, yt, run.key, batch_size=batch)
    jax.block_until_ready(run.key)
    phase("eval chunk")
    return {
        "preset": preset,
        "dataset": dataset,
        "fit_batches": CHUNK,
        "eval_batches": int(xts.shape[0]),
        "batch": batch,
        "xla_fit_mib": _xla_mib(fit),
        "xla_eval_mib": _xla_mib(evaluate),
        "phases": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="wide-100k")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", help="folder with the dataset's IDX files (else DARNAX_DATA_DIR)")
    parser.add_argument("--out", default=str(HERE / "job_memory.json"))
    args = parser.parse_args(argv)
    result = measure(args.preset, args.dataset, args.data_dir)
    result.update(machine=platform.node(), cpus=len(os.sched_getaffinity(0)), load=os.getloadavg()[0])
    print(
        f"{args.preset} on {args.dataset}: fit chunks of {result['fit_batches']} batches, eval chunk of "
        f"{result['eval_batches']} (batch {result['batch']}); XLA's own buffers, MiB: fit {result['xla_fit_mib']}, "
        f"eval {result['xla_eval_mib']}"
    )
    print("| phase | s | peak MiB | RSS MiB | live arrays MiB | RSS after trim MiB | scratch kept (this thread) MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in result["phases"]:
        print(
            f"| {r['phase']} | {r['seconds']} | {r['peak_mib']} | {r['rss_mib']} | {r['live_arrays_mib']} | "
            f"{r['rss_trimmed_mib']} | {r['scratch_kept_main_thread_mib']} |"
        )
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
