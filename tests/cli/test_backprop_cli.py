"""``darnax train --trainer backprop`` end to end on tiny, offline IDX files."""

from __future__ import annotations

import json

from darnax.cli import main
from darnax.cli.config import resolve

from ..datasets._idx_files import TinyMnist, write_tiny

TINY = "[model]\ndim_hidden = 24\nsparsity = 0.8\n[run]\nepochs = 2\n"


def train(*args: object) -> int:
    return main(["train", "--quiet", *map(str, args)])


def test_backprop_run_writes_the_same_files_and_resumes_exactly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("darnax.cli.data.Mnist", TinyMnist)  # generated files: no official checksums
    write_tiny(tmp_path / "data" / "mnist")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    common = ("--config", config, "--dataset", "mnist", "--data-dir", tmp_path / "data", "--trainer", "backprop")
    full, part, local = tmp_path / "full", tmp_path / "part", tmp_path / "local"
    assert train(*common, "--out", full) == 0
    assert "backprop (Adam, learning rate 0.001)" in capsys.readouterr().out
    assert train(*common[:-2], "--out", local, "--epochs", 1) == 0
    assert train(*common, "--out", part, "--epochs", 1) == 0
    assert train("--resume", part, "--epochs", 2) == 0
    assert resolve(file=full / "config.toml").trainer.rule == "backprop"
    records = [json.loads(line) for line in (full / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    keys = set(json.loads((local / "metrics.jsonl").read_text().splitlines()[0]))
    assert set(records[0]) == keys  # the local-learning runs' record format

    def untimed(path):
        return [
            {k: v for k, v in json.loads(line).items() if "second" not in k} for line in path.read_text().splitlines()
        ]

    assert untimed(part / "metrics.jsonl") == untimed(full / "metrics.jsonl")
    assert all(0.0 <= r["test_accuracy"] <= 1.0 and r["samples_per_second"] > 0 for r in records)
