"""``darnax train`` with several hidden layers: per-layer config fields, checks, resume, and the
one-layer network left exactly as it was."""

from __future__ import annotations

import json

import pytest

from darnax.cli.config import PRESETS, Config, layer_values, merge, resolve, to_toml
from darnax.cli.network import build_trainer
from darnax.cli.run import legacy_fingerprint as fingerprint

from ..model._nets import assert_trees_equal, seed10_network
from .test_cli import train

DEEP = """
[model]
dim_hidden = [48, 32]
sparsity = [0.8, 0.7]
sparsity_back = 0.8
threshold_back = [1.0, 0.0]
[optimizer]
learning_rate_j = [0.058, 0.03]
[run]
epochs = 2
"""


def test_per_layer_fields_take_a_list_or_a_scalar_and_round_trip(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text(DEEP)
    config = resolve(file=path)
    assert config.model.depth == 2 and config.model.dim_hidden == (48, 32)
    values = layer_values(config)
    assert values["sparsity"] == (0.8, 0.7) and values["sparsity_win"] == (0.9, 0.9)
    assert values["sparsity_back"] == (0.8,) and values["learning_rate_back"] == (0.159,)
    assert values["learning_rate_j"] == (0.058, 0.03) and values["threshold_back"] == (1.0, 0.0)
    (tmp_path / "again.toml").write_text(to_toml(config))
    assert resolve(file=tmp_path / "again.toml") == config
    one = layer_values(Config())
    assert one["dim_hidden"] == (2000,) and one["sparsity"] == (0.99,) and one["sparsity_back"] == ()


@pytest.mark.parametrize("dim_hidden", [96, [96]])
def test_one_hidden_layer_builds_the_seeds_network_bit_for_bit(dim_hidden):
    config = merge(Config(), {"model": {"dim_hidden": dim_hidden, "sparsity": 0.8, "sparsity_win": 0.7}})
    _, seeds = seed10_network(dim_data=40, dim_hidden=96, num_labels=10, sparsity=0.8, sparsity_win=0.7)
    assert_trees_equal(build_trainer(config, 40, 10).orchestrator, seeds)


def test_one_layer_fingerprints_are_those_of_checkpoints_written_before_deep_networks():
    # values of darnax.cli.run.fingerprint at commit f10342d, before per-layer fields existed
    assert fingerprint(resolve()) == fingerprint(resolve("seed-sparse")) == "309b9745ed403259"
    assert fingerprint(merge(Config(), {"model": {"dim_hidden": 96, "sparsity": 0.8}})) == "a5cf9f5b71064e75"
    deep = merge(Config(), {"model": {"dim_hidden": [96, 48]}})
    assert fingerprint(deep) != fingerprint(merge(deep, {"optimizer": {"learning_rate_back": 0.0}}))


def test_deep_resume_ends_exactly_like_an_uninterrupted_run(tmp_path, capsys):
    path = tmp_path / "deep.toml"
    path.write_text(DEEP)
    full, part = tmp_path / "full", tmp_path / "part"
    assert train("--config", path, "--out", full) == 0
    log = capsys.readouterr().out
    assert "network 64-48-32-10" in log and "epoch   2" in log
    assert train("--config", path, "--out", part, "--epochs", 1) == 0
    assert train("--resume", part, "--epochs", 2) == 0

    def strip(p):
        return [{k: v for k, v in json.loads(line).items() if "second" not in k} for line in p.read_text().splitlines()]

    records = strip(full / "metrics.jsonl")
    assert records == strip(part / "metrics.jsonl") and len(records) == 2
    assert records[-1]["test_accuracy"] > 0.3  # 10 classes: chance is 0.1
    payload = lambda p: p.read_bytes().split(b"\n", 1)[1].split(b"}", 1)[1]  # noqa: E731
    assert payload(full / "checkpoint.darnax") == payload(part / "checkpoint.darnax")
    assert resolve(file=part / "config.toml") == resolve(file=path)


def test_deep_preset_has_two_hidden_layers():
    config = resolve("deep-2")
    assert config.model.depth == 2 and "deep-2" in PRESETS
    assert all(
        len(v) == (2 if k not in ("sparsity_back", "learning_rate_back", "weight_decay_back") else 1)
        for k, v in layer_values(config).items()
    )
