"""``darnax tune``: search spaces checked before any work, pruning, and small studies on the
bundled digits with concurrent workers on the default SQLite storage and on a journal file,
resumed with more trials (nothing lost or duplicated)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="darnax tune needs Optuna (pip install 'darnax[tune]')")

from darnax.cli import tune  # noqa: E402
from darnax.cli.config import Config, ConfigError, merge, resolve  # noqa: E402

SPACE = """
[model.threshold_j]
low = 1.0
high = 2.5

[optimizer.learning_rate_j]
low = 0.01
high = 0.2
log = true

[model.dim_hidden]
choices = [32, 48]
"""
TIMEOUT = 900


def _space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


def test_a_space_loads_with_the_kinds_of_its_fields(tmp_path):
    params = {p.name: p for p in tune.load_space(_space(tmp_path, SPACE), Config())}
    assert params["model.threshold_j"].kind == "float"
    assert params["optimizer.learning_rate_j"].log
    assert params["model.dim_hidden"].choices == (32, 48)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model.no_such_field]\nlow = 1\nhigh = 2\n", "model.no_such_field: unknown field"),
        ("[nowhere.field]\nlow = 1\nhigh = 2\n", "nowhere: unknown section"),
        ("[model.threshold_j]\nlow = 2.0\nhigh = 1.0\n", "model.threshold_j: empty range"),
        ("[model.dim_hidden]\nlow = 10.5\nhigh = 20\n", "model.dim_hidden.low: expected an int"),
        ("[model.threshold_j]\nlow = 1.0\nhigh = 2.0\nlog = true\nstep = 0.1\n", "log needs"),
        ("[model.threshold_j]\nlow = -1.0\nhigh = 2.0\n", "model.threshold_j"),
        ("[model.threshold_j]\nlow = 1.0\nhigh = 2.0\nbest = 1\n", "unknown key 'best'"),
        ("[trainer.dynamics]\nchoices = []\n", "non-empty list"),
        ('[trainer.dynamics]\nchoices = ["sync", "fast"]\n', "trainer.dynamics"),
        ("[trainer.dynamics]\nlow = 1\nhigh = 2\n", "takes choices"),
        ("", "no parameters"),
    ],
)
def test_a_bad_space_is_refused_naming_the_entry(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        tune.load_space(_space(tmp_path, text), Config())


def test_poor_trials_are_pruned_after_their_first_report(tmp_path):
    base = merge(resolve(), {"model": {"dim_hidden": 32}})
    params = tune.load_space(_space(tmp_path, SPACE), base)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    study.optimize(tune.objective(base, params, epochs=3, out=tmp_path), n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # stopped after epoch 1 of 3


def test_the_base_config_is_the_first_trial_when_the_space_holds_it(tmp_path):
    base = merge(resolve(), {"model": {"dim_hidden": 48, "threshold_j": 1.5}, "optimizer": {"learning_rate_j": 0.05}})
    params = tune.load_space(_space(tmp_path, SPACE), base)
    study = optuna.create_study(direction="maximize")
    assert "are a trial" in tune.enqueue_base(study, base, params)
    tune.enqueue_base(study, base, params)  # a second launcher (resumed study, other node): skipped
    study.optimize(tune.objective(base, params, epochs=1, out=tmp_path), n_trials=2)
    first, second = study.trials
    assert first.params == {"model.threshold_j": 1.5, "optimizer.learning_rate_j": 0.05, "model.dim_hidden": 48}
    assert second.params != first.params
    outside = merge(base, {"model": {"dim_hidden": 2000}})
    message = tune.enqueue_base(optuna.create_study(), outside, params)
    assert message.endswith("outside the space: model.dim_hidden = 2000")


def test_validation_epochs_hold_out_a_split_and_report_every_epoch(tmp_path):
    config = merge(resolve(), {"model": {"dim_hidden": 32}, "run": {"epochs": 2}})
    assert config.data.validation_fraction == 0.0
    held = tune.with_validation(config)
    assert held.data.validation_fraction == tune.VALIDATION_FRACTION
    own = merge(config, {"data": {"validation_fraction": 0.2}})
    assert tune.with_validation(own) is own  # a split already held out is kept
    records = list(tune.validation_epochs(held, tmp_path / "run"))
    assert [epoch for epoch, _, _ in records] == [1, 2]
    assert all(seconds > 0 and 0.0 <= accuracy <= 1.0 for _, seconds, accuracy in records)


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ({"low": 1.0, "high": 2.0}, [1.0, 1.5, 2.0], [0.99, 2.01, True, "1.5", (1.5,)]),
        ({"low": 0, "high": 10, "step": 5}, [0, 5, 10], [2, 15]),
        ({"choices": ["sync", "async"]}, ["async"], ["fast"]),
    ],
)
def test_a_param_contains_what_it_could_suggest(spec, inside, outside):
    kind = "choice" if "choices" in spec else "float"
    param = tune.Param(
        "model",
        "x",
        kind,
        spec.get("low"),
        spec.get("high"),
        step=spec.get("step"),
        choices=tuple(spec.get("choices", ())),
    )
    assert all(param.contains(v) for v in inside)
    assert not any(param.contains(v) for v in outside)


def _tune(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "darnax", "tune", "--space", "space.toml", "--epochs", "1", "--out", "out", *args]
    return subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


@pytest.mark.parametrize("storage", [None, "journal:study.log"])
def test_two_workers_share_a_study_that_resumes(tmp_path, storage):
    _space(tmp_path, SPACE)
    extra = ["--storage", storage] if storage else []
    first = _tune(tmp_path, "--trials", "3", "--workers", "2", *extra)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("trial ") >= 3
    more = _tune(tmp_path, "--trials", "4", "--workers", "2", *extra)
    assert more.returncode == 0, more.stderr[-3000:]
    assert "3 trials finished, 1 to run on 1 worker(s)" in more.stdout
    store = (
        tune.storage(storage, tmp_path / "out")
        if storage is None
        else tune.storage(f"journal:{tmp_path / 'study.log'}", tmp_path)
    )
    trials = optuna.load_study(study_name="darnax", storage=store).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    rows = json.loads((tmp_path / "out" / "trials.json").read_text())
    assert rows == sorted(rows, key=lambda r: -r["validation_accuracy"])
    best = resolve(file=tmp_path / "out" / "best.toml")  # darnax train --config runs it as is
    assert best.model.dim_hidden in (32, 48) and best.run.epochs == 1
    assert best.data.validation_fraction == 0.0  # the tuned config trains on the whole training split


def test_the_tuned_preset_keeps_to_the_limits_it_was_tuned_under():
    config = resolve("fashion-mnist-tuned")
    widths = config.model.dim_hidden if isinstance(config.model.dim_hidden, tuple) else (config.model.dim_hidden,)
    assert max(widths) <= 6000 and config.run.epochs <= 20
    assert config.data.dataset == "fashion-mnist" and config.data.validation_fraction == 0.0
    assert config.model.seed == Config().model.seed and config.run.master_seed == 0  # the study's seeds
