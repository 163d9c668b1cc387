"""``darnax train --seeds K``: one configuration trained under K seeds, and their mean ± sd.

Seed ``k`` (0 .. K-1) is ``darnax train`` with ``run.master_seed + k`` (data order, projection)
and ``model.seed + k`` (weights and patterns) into ``OUT/seed-k``, ``--workers`` of them at a
time, each on its share of the CPUs. Then ``OUT/seeds.jsonl`` holds, per epoch, the mean and
standard deviation (``ddof = 1``) over seeds of every metric, ``OUT/seeds.svg`` the accuracies
with a band of one standard deviation.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from darnax.cli.checkpoint import atomic_write
from darnax.cli.config import Config, ConfigError
from darnax.cli.distributed import cpu_shares
from darnax.cli.plot import Series, line_chart

METRICS = ("train_accuracy", "test_accuracy", "train_seconds", "samples_per_second")


def launch(argv: list[str], config: Config, out: Path, k: int, workers: int) -> int:
    """Train the K seeds (``argv``: the command's arguments less ``--seeds``/``--workers``/``--out``)."""
    if k < 1 or workers < 1:
        raise ConfigError(f"--seeds {k} --workers {workers}: expected at least 1 of each")
    cpus = sorted(os.sched_getaffinity(0))
    workers = min(workers, k, len(cpus))
    shares = cpu_shares(workers)
    slots: queue.Queue[list[int]] = queue.Queue()
    for share in shares:
        slots.put(share)

    def train(seed: int) -> int:
        command = [
            sys.executable,
            "-m",
            "darnax",
            *argv,
            "--seed",
            str(config.run.master_seed + seed),
            "--model-seed",
            str(config.model.seed + seed),
            "--out",
            str(out / f"seed-{seed}"),
        ]
        share = slots.get()
        try:
            return subprocess.run(command, preexec_fn=lambda: os.sched_setaffinity(0, share)).returncode
        finally:
            slots.put(share)

    with ThreadPoolExecutor(workers) as pool:
        codes = list(pool.map(train, range(k)))
    failed = [(seed, code) for seed, code in enumerate(codes) if code != 0]
    if failed:
        print(f"darnax: error: seed(s) {[s for s, _ in failed]} failed; no summary written", file=sys.stderr)
        return next((c for _, c in failed if c > 0), 1)
    summary = aggregate([out / f"seed-{s}" for s in range(k)])
    atomic_write(out / "seeds.jsonl", "".join(json.dumps(r) + "\n" for r in summary))
    _plot(summary, out / "seeds.svg", k)
    last = summary[-1]
    print(
        f"darnax: {k} seeds, epoch {last['epoch']}: test {100 * last['test_accuracy_mean']:.2f} "
        f"± {100 * last['test_accuracy_sd']:.2f}% -> {out / 'seeds.jsonl'}"
    )
    return 0


def aggregate(run_dirs: list[Path]) -> list[dict]:
    """Per epoch, the mean and sd over runs of every metric (epochs every run reached)."""
    runs = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in run_dirs]
    epochs = min(len(r) for r in runs)
    rows = []
    for e in range(epochs):
        row: dict = {"epoch": runs[0][e]["epoch"], "seeds": len(runs)}
        for metric in METRICS:
            values = np.array([r[e][metric] for r in runs], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def _plot(summary: list[dict], path: Path, k: int) -> None:
    """``seeds.svg``: train and test accuracy (%), mean over the ``k`` seeds with a band of one sd."""
    epochs = [r["epoch"] for r in summary]

    def series(split: str) -> Series:
        mean = [100 * r[f"{split}_accuracy_mean"] for r in summary]
        sd = [100 * r[f"{split}_accuracy_sd"] for r in summary]
        return Series(
            f"{split} (mean of {k})", epochs, mean, [m - d for m, d in zip(mean, sd)], [m + d for m, d in zip(mean, sd)]
        )

    chart = line_chart([series("train"), series("test")], title=f"darnax: {k} seeds", ylabel="accuracy (%)")
    atomic_write(path, chart)


__all__ = ["aggregate", "launch"]
