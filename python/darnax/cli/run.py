"""``darnax train``: train, evaluate, checkpoint and report, epoch by epoch, resumably.

A run directory holds ``config.toml`` (the resolved config), ``metrics.jsonl`` (one record per
epoch), ``summary.json``, ``checkpoint.darnax`` (after every epoch) and ``accuracy.png`` (when
matplotlib is installed). Keys: ``key = PRNGKey(master_seed)``; ``key, k_data = split(key)``
builds the dataset; every epoch then threads ``key`` through ``fit_epoch`` (training batches in
the dataset's per-epoch order) and ``evaluate``. A resumed run restores the model, optimiser
state, key and the dataset's epoch counter, so it ends with exactly the weights and metrics of
an uninterrupted run.

Data parallel (``place`` given, see :mod:`darnax.cli.distributed`): every process builds the same
dataset and key, trains on its rows of each global batch of ``data.batch_size`` and evaluates its
rows of every full batch (a last, partial batch is evaluated whole by each process); the weights
are checked equal across processes after every epoch; process 0 alone prints and writes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, TextIO

import jax
import jax.numpy as jnp

from darnax.cli import checkpoint
from darnax.cli.config import Config, ConfigError, layer_values, to_toml, training_sections
from darnax.cli.data import make_dataset
from darnax.cli.network import build_trainer
from darnax.cli.plot import plot_accuracy
from darnax.cli.distributed import Place, check_agreement, data_mesh
from darnax.cli.progress import Progress
from darnax.trainers._sharded import local_rows

CHECKPOINT = "checkpoint.darnax"
#: Training batches per compiled call: the progress bar moves between chunks (same results).
CHUNK = 64
#: Evaluation batches per compiled call: bounds the batched copy of a split that ``evaluate`` makes.
EVAL_CHUNK = 256


def fingerprint(config: Config) -> str:
    """Hash of :func:`~darnax.cli.config.training_sections` (not ``run``: a resumed run may ask for more epochs)."""
    return hashlib.sha256(json.dumps(training_sections(config), sort_keys=True).encode()).hexdigest()[:16]


class Run:
    """A training run bound to its directory."""

    def __init__(self, config: Config, out: Path, *, log: TextIO, quiet: bool = False, place: Place | None = None):
        self.place, self.lead = place, place is None or place.lead
        self.config, self.out, self.log, self.quiet = config, out, log, quiet or not self.lead
        self.dataset = make_dataset(config.data)
        key = jax.random.key(config.run.master_seed)
        self.key, data_key = jax.random.split(key)
        self.dataset.build(data_key)
        spec = self.dataset.spec()
        mesh = data_mesh() if place is not None else None
        self.trainer = build_trainer(config, spec["input_dim"], spec["num_classes"], mesh=mesh)
        self._local = self.trainer.without_mesh() if mesh is not None else self.trainer
        self.batch = config.data.batch_size
        self.rows = slice(0, self.batch)  # this process's rows of every global batch
        if mesh is not None:
            try:
                self.rows = local_rows(mesh, self.batch)
            except ValueError as err:
                raise ConfigError(f"data.batch_size: {err}; pick a multiple of {mesh.size}") from None
        self.epoch = 0
        widths = (spec["input_dim"], *layer_values(config)["dim_hidden"], spec["num_classes"])
        self.say(
            f"darnax: {spec['name']}, {spec['num_train']} train / {spec['num_test']} test, "
            f"network {'-'.join(map(str, widths))} "
            f"(sparsity {config.model.sparsity_win} / {config.model.sparsity}), {config.trainer.dynamics} dynamics, "
            f"batch {config.data.batch_size}, {config.run.epochs} epochs -> {out}"
        )

    def say(self, line: str) -> None:
        """Print one log line (process 0 only)."""
        if self.lead:
            print(line, file=self.log, flush=True)

    def resume(self) -> None:
        """Restore the last checkpoint of ``out`` and drop metrics recorded after it."""
        trainer = self.trainer
        model, opt_state, key, epoch = checkpoint.load(
            self.out / CHECKPOINT,
            model=trainer.orchestrator,
            optimizer_state=trainer.ctx["optimizer_state"],
            fingerprint=fingerprint(self.config),
        )
        trainer.orchestrator = model
        trainer.ctx = {**trainer.ctx, "optimizer_state": opt_state}
        self.key, self.epoch, self.dataset.epoch = key, epoch, epoch
        records = [r for r in self.records() if r["epoch"] <= epoch]
        if self.lead:
            (self.out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        self.say(f"darnax: resuming after epoch {epoch}")

    def records(self) -> list[dict[str, Any]]:
        """The metrics recorded so far."""
        path = self.out / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def train(self) -> dict[str, Any]:
        """Train the remaining epochs; returns the summary (empty on processes other than 0)."""
        if self.lead:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.toml").write_text(to_toml(self.config))
        for epoch in range(self.epoch + 1, self.config.run.epochs + 1):
            self._epoch(epoch)
        return self._summary() if self.lead else {}

    def _mine(self, rows: jax.Array) -> jax.Array:
        """This process's share of ``rows`` (whole global batches, in order)."""
        return rows if self.place is None else rows.reshape(-1, self.batch)[:, self.rows].reshape(-1)

    def accuracy(self, split: str) -> float:
        """Sample-weighted accuracy over every row of ``split``, ``EVAL_CHUNK`` batches per
        compiled call (the same key sequence as one call); a last, partial batch separately."""
        ds, batch, trainer, key = self.dataset, self.batch, self.trainer, self.key
        n = ds.spec()[f"num_{split}"]
        n_full, correct = n - n % batch, 0
        for lo in range(0, n_full, EVAL_CHUNK * batch):
            rows = self._mine(jnp.arange(lo, min(lo + EVAL_CHUNK * batch, n_full)))
            key, metrics = trainer.evaluate(*ds.rows(split, rows), key, batch_size=self.rows.stop - self.rows.start)
            correct += round(float(jnp.sum(metrics["batch_accuracy"])) * batch)  # counts are integers
        if n_full < n:
            self._local.orchestrator = trainer.orchestrator
            key, metrics = self._local.evaluate(*ds.rows(split, slice(n_full, n)), key, batch_size=batch)
            correct += round(float(metrics["batch_accuracy"][0]) * (n - n_full))
        self.key = key
        return correct / n

    def train_pass(self, epoch: int) -> tuple[float, int]:
        """One pass over the training split; returns its seconds and global samples."""
        ds, trainer, batch = self.dataset, self.trainer, self.batch
        order = ds.epoch_order()  # each chunk gathers its rows: no shuffled copy of the split
        n_batches = -(-order.shape[0] // batch)
        mine, local = self._mine(order), self.rows.stop - self.rows.start
        bar = Progress(f"epoch {epoch}/{self.config.run.epochs}", n_batches, batch, quiet=self.quiet)
        key = self.key
        for lo in range(0, n_batches, CHUNK):
            rows = mine[lo * local : (lo + CHUNK) * local]
            key = trainer.fit_epoch(*ds.rows("train", rows), key, batch_size=local, donate=self.place is None)
            bar.update(min(CHUNK, n_batches - lo))
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
        with (self.out / "metrics.jsonl").open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        # After the record: a crash in between leaves a record that resume() drops and redoes.
        checkpoint.save(
            self.out / CHECKPOINT,
            model=trainer.orchestrator,
            optimizer_state=trainer.ctx["optimizer_state"],
            key=key,
            epoch=epoch,
            fingerprint=fingerprint(self.config),
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
            "median_samples_per_second": sorted(r["samples_per_second"] for r in records)[len(records) // 2] if records else None,
            "dataset": self.config.data.dataset,
            "dynamics": self.config.trainer.dynamics,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        note = plot_accuracy(records, self.out / "accuracy.png")
        if note:
            self.say(note)
        return summary
