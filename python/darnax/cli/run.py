"""``darnax train``: train, evaluate, checkpoint and report, epoch by epoch, resumably.

A run directory holds ``config.toml`` (the resolved config), ``metrics.jsonl`` (one record per
epoch), ``summary.json``, ``checkpoint.darnax`` (after every epoch) and ``accuracy.svg`` (the accuracy
curves, :mod:`darnax.cli.plot`). Keys: ``key = PRNGKey(master_seed)``; ``key, k_data = split(key)``
builds the dataset; every epoch then threads ``key`` through ``fit_epoch`` (training batches in
the dataset's per-epoch order) and ``evaluate``. A resumed run restores the model, optimiser
state, key and the dataset's epoch counter, so it ends with exactly the weights and metrics of
an uninterrupted run, wherever it was killed (SIGKILL mid-epoch or mid-checkpoint, tested).

Resuming is refused unless the checkpoint's :func:`fingerprint` is the run's: it digests every
config field but ``run.epochs`` and ``data.data_dir`` (so data moved elsewhere resumes with
``--data-dir``), ``run.master_seed`` included, and every sparsity pattern. Every file is written
atomically (:func:`darnax.cli.checkpoint.atomic_write`); ``metrics.jsonl`` is rewritten whole
after each epoch rather than appended to, so no crash leaves a torn line.

Data parallel (``place`` given, see :mod:`darnax.cli.distributed`): every process builds the same
dataset and key, trains on its rows of each global batch of ``data.batch_size`` and evaluates its
rows of every full batch (a last, partial batch is evaluated whole by each process); the weights
are checked equal across processes after every epoch; process 0 alone prints and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, TextIO

import jax
import numpy as np

from darnax.cli import checkpoint
from darnax.cli.config import Config, ConfigError, layer_values, method, resolve, to_toml, training_sections
from darnax.cli.data import make_dataset
from darnax.cli.distributed import Place, check_agreement, data_mesh
from darnax.cli.events import enabled, mark
from darnax.cli.network import build_trainer
from darnax.cli.plot import plot_accuracy
from darnax.cli.progress import Progress
from darnax.ops import SparsityPattern
from darnax.trainers._sharded import local_rows

CHECKPOINT = "checkpoint.darnax"
#: Training batches per compiled call, at most (:func:`even_chunk`): the progress bar moves
#: between chunks (same results).
CHUNK = 64
#: Evaluation batches per compiled call, at most (:func:`even_chunk` of both splits): bounds the
#: batched copy of a split that ``evaluate`` makes (same results for any chunk).
EVAL_CHUNK = 128


def even_chunk(n: int, limit: int) -> int:
    """Batches per compiled call for a pass of ``n`` batches: the largest divisor of ``n`` in
    ``(limit // 2, limit]``, so that every call has one shape (one program to compile and keep,
    ~20 MB each at the seeds' size, instead of one more for a remainder), else ``limit``.

    Example:
        >>> even_chunk(3750, 64), even_chunk(625, 128), even_chunk(97, 64)
        (50, 125, 64)
    """
    return next((d for d in range(limit, limit // 2, -1) if n % d == 0), limit)


def identity(config: Config, model: Any) -> dict[str, Any]:
    """Everything that makes the run what it is, as JSON: every config section but ``run``
    (:func:`~darnax.cli.config.training_sections`) less ``data.data_dir`` (where the files are;
    their content is checksummed), plus ``run.master_seed`` (data shuffle, projection, training
    key) and a digest of every sparsity pattern of ``model`` (:func:`pattern_digests`). Only
    ``run.epochs`` and the data's location may change on resume."""
    sections = training_sections(config)
    sections["data"].pop("data_dir", None)
    sections["run"] = {"master_seed": config.run.master_seed}
    return {"config": sections, "patterns": pattern_digests(model)}


def fingerprint(config: Config, model: Any) -> str:
    """The run's resume fingerprint: a hash of :func:`identity`."""
    return hashlib.sha256(json.dumps(identity(config, model), sort_keys=True).encode()).hexdigest()[:16]


def legacy_fingerprint(config: Config) -> str:
    """The fingerprint of checkpoints written before it covered the seed, the patterns and moved
    data: a hash of :func:`~darnax.cli.config.training_sections` alone (``data_dir`` included)."""
    return hashlib.sha256(json.dumps(training_sections(config), sort_keys=True).encode()).hexdigest()[:16]


def pattern_digests(model: Any) -> dict[str, str]:
    """``{"(receiver, sender).field": SHA-256 of the shape and index arrays}`` for every
    :class:`~darnax.ops.SparsityPattern` of the orchestrator's modules. Patterns are rebuilt from
    ``model.seed`` on resume (they are static, not in the checkpoint), so this catches a PRNG
    stream that changed between jax versions."""
    out = {}
    for (i, j), module in model.lmap.edge_items():
        for f in dataclasses.fields(module) if dataclasses.is_dataclass(module) else ():
            pattern = getattr(module, f.name, None)
            if isinstance(pattern, SparsityPattern):
                digest = hashlib.sha256(repr(pattern.shape).encode())
                digest.update(np.ascontiguousarray(pattern.col_ptr, "<i4").tobytes())
                digest.update(np.ascontiguousarray(pattern.row_idx, "<i4").tobytes())
                out[f"({i}, {j}).{f.name}"] = digest.hexdigest()[:16]
    return out


class Run:
    """A training run bound to its directory."""

    def __init__(self, config: Config, out: Path, *, log: TextIO, quiet: bool = False, place: Place | None = None):
        self.place, self.lead = place, place is None or place.lead
        self.config, self.out, self.log, self.quiet = config, out, log, quiet or not self.lead
        self.dataset = make_dataset(config.data)
        key = jax.random.key(config.run.master_seed)
        self.key, data_key = jax.random.split(key)
        self.dataset.build(data_key)
        mark("data")
        spec = self.dataset.spec()
        mesh = data_mesh() if place is not None else None
        self.trainer = build_trainer(config, spec["input_dim"], spec["num_classes"], mesh=mesh)
        mark("network")
        self._local = self.trainer.without_mesh() if mesh is not None else self.trainer
        self.batch = config.data.batch_size
        self.rows = slice(0, self.batch)  # this process's rows of every global batch
        if mesh is not None:
            try:
                self.rows = local_rows(mesh, self.batch)
            except ValueError as err:
                raise ConfigError(f"data.batch_size: {err}; pick a multiple of {mesh.size}") from None
        self.identity = identity(config, self.trainer.orchestrator)
        self.fingerprint = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()[:16]
        self.epoch = 0
        widths = (spec["input_dim"], *layer_values(config)["dim_hidden"], spec["num_classes"])
        learning = f"{config.trainer.dynamics} dynamics"
        if method(config) == "backprop":
            learning = f"backprop (Adam, learning rate {config.optimizer.learning_rate_backprop:g})"
        self.say(
            f"darnax: {spec['name']}, {spec['num_train']} train / {spec['num_test']} test, "
            f"network {'-'.join(map(str, widths))} "
            f"(sparsity {config.model.sparsity_win} / {config.model.sparsity}), {learning}, "
            f"batch {config.data.batch_size}, {config.run.epochs} epochs -> {out}"
        )

    def say(self, line: str) -> None:
        """Print one log line (process 0 only)."""
        if self.lead:
            print(line, file=self.log, flush=True)

    def resume(self, *, allow_restart: bool = False) -> None:
        """Restore the last checkpoint of ``out`` and drop metrics recorded after it.

        Half-written files of an interrupted write are deleted first. With ``allow_restart``
        (``darnax train --resume``), a run killed before its first checkpoint (no checkpoint, at
        most epoch 1's record) starts again from the beginning.

        Raises:
            CheckpointError: naming the file: missing while metrics exist, truncated, corrupted,
                or written for another run (its fingerprint; what differs is named).
        """
        for path in checkpoint.remove_leftovers(self.out) if self.lead and self.out.is_dir() else ():
            self.say(f"darnax: removed {path.name}, left by an interrupted write")
        trainer, path = self.trainer, self.out / CHECKPOINT
        if allow_restart and not path.exists() and {r["epoch"] for r in self.records()} <= {1}:
            # killed before its first checkpoint was renamed into place (epoch 1's record, if
            # any, is written just before it): nothing to resume, nothing lost by starting over
            self._write_records([])
            self.say("darnax: no finished epoch to resume from; starting from the beginning")
            return
        meta, _ = checkpoint.read_meta(path)
        saved = meta.get("versions") or {}
        if saved and saved != checkpoint.versions():
            self.say(
                f"darnax: note: the checkpoint was written with {saved}, this is {checkpoint.versions()}; "
                "the continuation is bitwise equal only on the same versions"
            )
        model, opt_state, key, epoch = checkpoint.load(
            path,
            model=trainer.orchestrator,
            optimizer_state=trainer.ctx["optimizer_state"],
            fingerprint=self.fingerprint,
            identity=self.identity,
            accept=self._legacy_fingerprints(),
        )
        if "identity" not in meta:
            self.say(
                "darnax: note: an older darnax wrote this checkpoint: its master seed and sparsity "
                "patterns are not recorded in it and could not be checked"
            )
        trainer.orchestrator = model
        trainer.ctx = {**trainer.ctx, "optimizer_state": opt_state}
        self.key, self.epoch, self.dataset.epoch = key, epoch, epoch
        self._write_records([r for r in self.records() if r["epoch"] <= epoch])
        self.say(f"darnax: resuming after epoch {epoch}")

    def _legacy_fingerprints(self) -> tuple[str, ...]:
        """Fingerprints of older checkpoints of this run, with the data folder now configured or
        the one in the run's ``config.toml`` (before a ``--data-dir`` that moved it)."""
        configs = [self.config]
        on_disk = self.out / "config.toml"
        if on_disk.exists():
            with contextlib.suppress(ConfigError):
                configs.append(resolve(file=on_disk))
        return tuple(legacy_fingerprint(dataclasses.replace(self.config, data=c.data)) for c in configs)

    def records(self) -> list[dict[str, Any]]:
        """The metrics recorded so far.

        ``metrics.jsonl`` is rewritten atomically after every epoch, so every line is whole; an
        unterminated last line that does not parse (a torn append by an older darnax, which appended) is
        dropped, as resuming would drop and redo that epoch anyway. Any other bad line is an error.

        Raises:
            CheckpointError: naming the file and line that is not a metrics record.
        """
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return []
        text = path.read_text()
        lines = text.splitlines()
        records = []
        for n, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
                    raise ValueError("expected a JSON object with an integer epoch")
            except ValueError as err:
                if n == len(lines) and not text.endswith("\n"):
                    break  # a torn last line
                raise checkpoint.CheckpointError(f"{path}:{n}: not a metrics record ({err})") from err
            records.append(record)
        return records

    def _write_records(self, records: list[dict[str, Any]]) -> None:
        if self.lead:  # process 0 alone writes
            checkpoint.atomic_write(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in records))

    def train(self) -> dict[str, Any]:
        """Train the remaining epochs; returns the summary (empty on processes other than 0)."""
        if self.lead:
            self.out.mkdir(parents=True, exist_ok=True)
            checkpoint.atomic_write(self.out / "config.toml", to_toml(self.config))
        for epoch in range(self.epoch + 1, self.config.run.epochs + 1):
            self._epoch(epoch)
        return self._summary() if self.lead else {}

    def _mine(self, rows: np.ndarray) -> np.ndarray:
        """This process's share of ``rows`` (whole global batches, in order)."""
        return rows if self.place is None else rows.reshape(-1, self.batch)[:, self.rows].reshape(-1)

    def accuracy(self, split: str) -> float:
        """Sample-weighted accuracy over every row of ``split``, up to ``EVAL_CHUNK`` batches per
        compiled call, a chunk that divides the full batches of both the training and the test
        split where one exists (:func:`even_chunk`; the same key sequence as one call whatever
        the chunk); a last, partial batch separately."""
        ds, batch, trainer, key = self.dataset, self.batch, self.trainer, self.key
        spec = ds.spec()
        n = spec[f"num_{split}"]
        n_full, correct = n - n % batch, 0
        step = even_chunk(math.gcd(spec["num_train"] // batch, spec["num_test"] // batch), EVAL_CHUNK) * batch
        for lo in range(0, n_full, step):
            rows = self._mine(np.arange(lo, min(lo + step, n_full), dtype=np.int32))
            key, metrics = trainer.evaluate(*ds.rows(split, rows), key, batch_size=self.rows.stop - self.rows.start)
            correct += round(float(np.sum(metrics["batch_accuracy"])) * batch)  # counts are integers
        if n_full < n:
            self._local.orchestrator = trainer.orchestrator
            key, metrics = self._local.evaluate(*ds.rows(split, slice(n_full, n)), key, batch_size=batch)
            correct += round(float(metrics["batch_accuracy"][0]) * (n - n_full))
        self.key = key
        return correct / n

    def train_pass(self, epoch: int) -> tuple[float, int]:
        """One pass over the training split; returns its seconds and global samples."""
        ds, trainer, batch = self.dataset, self.trainer, self.batch
        # each chunk gathers its rows: no shuffled copy of the split. Row indices stay on the host
        # (NumPy): slicing a jax array would be one more small program per shape to load at start.
        order = np.asarray(ds.epoch_order())
        n_batches = -(-order.shape[0] // batch)
        mine, local = self._mine(order), self.rows.stop - self.rows.start
        bar = Progress(f"epoch {epoch}/{self.config.run.epochs}", n_batches, batch, quiet=self.quiet)
        key, chunk = self.key, even_chunk(n_batches, CHUNK)
        for lo in range(0, n_batches, chunk):
            rows = mine[lo * local : (lo + chunk) * local]
            key = trainer.fit_epoch(*ds.rows("train", rows), key, batch_size=local, donate=self.place is None)
            if lo == 0 and enabled():  # darnax.cli.events: once the chunk's batches are computed
                jax.block_until_ready(key)
                mark("first_chunk")
            bar.update(min(chunk, n_batches - lo))
            checkpoint.test_kill(epoch, "mid-epoch")  # the crash tests' hook (a no-op otherwise)
        self.key = key
        return bar.close(), order.shape[0]

    def _epoch(self, epoch: int) -> None:
        trainer = self.trainer
        train_time, samples = self.train_pass(epoch)
        train_acc, test_acc = self.accuracy("train"), self.accuracy("test")
        key = self.key
        if self.place is not None:
            check_agreement((trainer.orchestrator, trainer.ctx["optimizer_state"], key), f"after epoch {epoch}")
        self.epoch = epoch
        if not self.lead:
            return
        record = {
            "epoch": epoch,
            "train_accuracy": train_acc,
            "test_accuracy": test_acc,
            "train_seconds": round(train_time, 3),
            "samples_per_second": round(samples / train_time, 1),
        }
        # Whole file, atomically (no torn line); a crash between it and the checkpoint leaves a
        # record that resume() drops and redoes.
        self._write_records([*self.records(), record])
        checkpoint.save(
            self.out / CHECKPOINT,
            model=trainer.orchestrator,
            optimizer_state=trainer.ctx["optimizer_state"],
            key=key,
            epoch=epoch,
            fingerprint=self.fingerprint,
            identity=self.identity,
        )
        self.say(
            f"epoch {epoch:3d}  train {100 * train_acc:6.2f}%  test {100 * test_acc:6.2f}%  "
            f"{train_time:7.2f} s  {record['samples_per_second']:,.0f} samples/s"
        )

    def _summary(self) -> dict[str, Any]:
        records = self.records()
        best = max(records, key=lambda r: r["test_accuracy"]) if records else None
        summary = {
            "epochs": len(records),
            "final_test_accuracy": records[-1]["test_accuracy"] if records else None,
            "best_test_accuracy": best["test_accuracy"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "median_samples_per_second": sorted(r["samples_per_second"] for r in records)[len(records) // 2]
            if records
            else None,
            "dataset": self.config.data.dataset,
            "dynamics": self.config.trainer.dynamics,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        checkpoint.atomic_write(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        plot_accuracy(records, self.out / "accuracy.svg")
        return summary
