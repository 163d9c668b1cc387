"""``darnax tune``: hyper-parameter search on Optuna; the objective is validation accuracy.

A search space is a TOML file with one table per config field, ``[section.field]``, holding
either ``low``/``high`` (``log = true`` for a log scale, ``step`` for a grid; ints for int fields)
or ``choices = [...]``. Every bound and choice is checked as a config value before any work.
Each trial trains ``--epochs`` epochs of the base config with the trial's values on the training
split less a held-out validation split (``data.validation_fraction``, 0.1 when the base has
none), reports the validation accuracy after every epoch (Optuna's median pruner stops poor
trials) and returns the last one. The test split is never evaluated. When the space holds the
base config's own values of the searched fields, they are the study's first trial.

Storage: ``sqlite:///DIR/study.db`` by default (one machine); any database URL Optuna supports;
or ``journal:PATH``, an append-only journal file (Optuna's ``JournalFileBackend``, file locks),
the recommended storage for workers on several nodes of a shared filesystem: SQLite serialises
concurrent writers behind one lock. ``--workers N`` runs N local processes, each pinned to its
share of the CPUs, each taking its share of the remaining trials; a study resumes under the
same ``--storage`` and ``--study`` (``--trials`` counts every finished trial, old ones included).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from darnax.cli.config import Config, ConfigError, load_toml, merge, to_toml

SPEC_KEYS = ("low", "high", "log", "step", "choices")
VALIDATION_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched field: ``section.field`` and its range or choices."""

    section: str
    field: str
    kind: str  # "int", "float" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        """``section.field``, the parameter's name in the study."""
        return f"{self.section}.{self.field}"

    def suggest(self, trial: Any) -> Any:
        """The trial's value (Optuna's ``suggest_*``)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether the search could suggest ``value`` (a choice, or in range and on the step's grid)."""
        if self.kind == "choice":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not self.low <= value <= self.high:
            return False
        return self.step is None or math.isclose((value - self.low) / self.step, round((value - self.low) / self.step))


def load_space(path: str | Path, base: Config) -> list[Param]:
    """The search space of a TOML file, every entry checked against ``base`` (``ConfigError``)."""
    params = []
    for section, fields in load_toml(path).items():
        if not isinstance(fields, dict):
            raise ConfigError(f"{path}: [{section}] must hold [{section}.<field>] tables")
        for field, spec in fields.items():
            params.append(_param(section, field, spec, base))
    if not params:
        raise ConfigError(f"{path}: no parameters to search")
    return params


def _param(section: str, field: str, spec: Any, base: Config) -> Param:
    name = f"{section}.{field}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{name}: expected a table with low/high or choices, got {spec!r}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{name}: unknown key {unknown[0]!r} (known: {', '.join(SPEC_KEYS)})")
    merge(base, {section: {field: getattr(getattr(base, section, None), field, None)}})  # the field exists
    kind = str(next(f.type for f in dataclasses.fields(getattr(base, section)) if f.name == field)).split(" ")[0]
    if "choices" in spec:
        choices = spec["choices"]
        if set(spec) != {"choices"} or not isinstance(choices, list) or not choices:
            raise ConfigError(f"{name}: choices must be a non-empty list, alone in its table")
        for value in choices:
            merge(base, {section: {field: value}})
        return Param(section, field, "choice", choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{name}: expected low and high (or choices)")
    if kind not in ("int", "float"):
        raise ConfigError(f"{name}: a {kind} field takes choices, not a range")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for label, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int if kind == "int" else (int, float))
        ):
            raise ConfigError(f"{name}.{label}: expected {'an int' if kind == 'int' else 'a number'}, got {value!r}")
    if not low < high:
        raise ConfigError(f"{name}: empty range (low {low} >= high {high})")
    if not isinstance(log, bool) or (log and low <= 0) or (log and step is not None):
        raise ConfigError(f"{name}: log needs true/false, low > 0 and no step")
    if step is not None and step <= 0:
        raise ConfigError(f"{name}.step: expected > 0, got {step}")
    merge(base, {section: {field: low}})
    merge(base, {section: {field: high}})
    return Param(section, field, kind, float(low), float(high), log, None if step is None else float(step))


def trial_config(base: Config, params: list[Param], values: dict[str, Any], epochs: int) -> Config:
    """``base`` with the trial's ``values`` (``{name: value}``) and ``epochs``."""
    overrides: dict[str, dict[str, Any]] = {"run": {"epochs": epochs}}
    for p in params:
        overrides.setdefault(p.section, {})[p.field] = values[p.name]
    return merge(base, overrides)


def enqueue_base(study: Any, base: Config, params: list[Param]) -> str:
    """Make the base config's own values the study's first trial, when the space holds them all.

    The search then starts from (and never reports worse than) the configuration it was given.
    Enqueued once per study: a resumed study, or another worker, skips it. Returns a line saying
    what was done.
    """
    values = {p.name: getattr(getattr(base, p.section), p.field) for p in params}
    outside = [f"{name} = {value!r}" for (name, value), p in zip(values.items(), params) if not p.contains(value)]
    if outside:
        return f"the base config is not a trial: outside the space: {', '.join(outside)}"
    study.enqueue_trial(values, skip_if_exists=True)
    return "the base config's values are a trial of the study"


def with_validation(config: Config) -> Config:
    """``config`` holding out a validation split (``VALIDATION_FRACTION``) unless it already does."""
    if config.data.validation_fraction > 0.0:
        return config
    return merge(config, {"data": {"validation_fraction": VALIDATION_FRACTION}})


def validation_epochs(config: Config, out: Path) -> Iterator[tuple[int, float, float]]:
    """Train ``config`` quietly into ``out``; yields ``(epoch, training seconds, validation accuracy)``
    after each of its ``run.epochs`` epochs (the test split is never evaluated)."""
    from darnax.cli.run import Run

    with open(os.devnull, "w") as quiet:
        run = Run(config, out, log=quiet, quiet=True)
        for epoch in range(1, config.run.epochs + 1):
            seconds, _ = run.train_pass(epoch)
            yield epoch, seconds, run.accuracy("valid")


def objective(base: Config, params: list[Param], epochs: int, out: Path):
    """The study's objective: train a trial, report validation accuracy per epoch, prune."""
    import optuna

    base = with_validation(base)

    def run_trial(trial: optuna.Trial) -> float:
        config = trial_config(base, params, {p.name: p.suggest(trial) for p in params}, epochs)
        accuracy = 0.0
        for epoch, _, accuracy in validation_epochs(config, out / f"trial-{trial.number}"):
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    return run_trial


def storage(url: str | None, out: Path) -> Any:
    """An Optuna storage: SQLite in ``out`` by default, ``journal:PATH`` or a database URL."""
    if url is None:
        out.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(out / 'study.db').resolve()}"
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return url


def finished(study: Any) -> int:
    """Trials that completed or were pruned."""
    import optuna

    return len(
        study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    )


def print_trial(study: Any, trial: Any) -> None:
    """Optuna callback: one line per finished trial."""
    value = "pruned" if trial.value is None else f"{100 * trial.value:.2f}%"
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    print(f"trial {trial.number:3d}  {trial.state.name.lower():8s} validation {value:>7s}  {params}", flush=True)


def report(study: Any, base: Config, params: list[Param], epochs: int, out: Path, top: int = 10) -> None:
    """Best config (``best.toml``), the top trials (stdout, ``trials.csv``, ``trials.json``), plots."""
    import optuna

    done = sorted((t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE), key=lambda t: -t.value)
    if not done:
        print("darnax tune: no trial completed")
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "best.toml").write_text(to_toml(trial_config(base, params, done[0].params, epochs)))
    rows = [{"trial": t.number, "validation_accuracy": t.value, **t.params} for t in done]
    with (out / "trials.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["trial", "validation_accuracy", *(p.name for p in params)])
        writer.writeheader()
        writer.writerows(rows)
    (out / "trials.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"best of {len(done)} completed trials (validation accuracy):")
    for row in rows[:top]:
        print(
            f"  trial {row['trial']:3d}  {100 * row['validation_accuracy']:6.2f}%  "
            + ", ".join(f"{p.name}={row[p.name]}" for p in params)
        )
    print(f"wrote {out / 'best.toml'} (darnax train --config {out / 'best.toml'}), trials.csv, trials.json")
    _plots(study, out)


def _plots(study: Any, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances
    except ImportError:
        print("darnax tune: no plots (pip install 'darnax[plot]')")
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        plot_optimization_history(study).figure.savefig(out / "history.png", dpi=100)
        try:
            plot_param_importances(study).figure.savefig(out / "importances.png", dpi=100)
        except (ValueError, RuntimeError) as err:  # e.g. too few completed trials
            print(f"darnax tune: no importance plot ({err})")


def launch_workers(argv: list[str], shares: list[int]) -> int:
    """Run ``darnax tune <argv> --worker-trials N_i`` once per share, each on its share of the CPUs."""
    from darnax.cli.distributed import cpu_shares

    cpus = sorted(os.sched_getaffinity(0))
    procs = []
    for n, group in zip(shares, cpu_shares(len(shares))):
        group = group or cpus
        command = [sys.executable, "-m", "darnax", *argv, "--worker-trials", str(n)]
        procs.append(subprocess.Popen(command, preexec_fn=lambda group=group: os.sched_setaffinity(0, group)))
    codes = [p.wait() for p in procs]
    return next((c for c in codes if c != 0), 0)


__all__ = [
    "Param",
    "enqueue_base",
    "load_space",
    "objective",
    "report",
    "storage",
    "trial_config",
    "validation_epochs",
    "with_validation",
]
