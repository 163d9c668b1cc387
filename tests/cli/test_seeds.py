"""``darnax train --seeds K``: K runs under shifted seeds and their per-epoch mean ± sd."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from darnax.cli.config import resolve
from darnax.cli.seeds import aggregate

SMALL = "[model]\ndim_hidden = 48\n"


def test_aggregate_gives_mean_and_sample_sd_per_epoch(tmp_path):
    values = [[0.5, 0.6], [0.7, 0.9], [0.6, 0.6]]
    dirs = []
    for k, accs in enumerate(values):
        d = tmp_path / f"seed-{k}"
        d.mkdir()
        d.joinpath("metrics.jsonl").write_text(
            "".join(
                json.dumps(
                    {
                        "epoch": e + 1,
                        "train_accuracy": a,
                        "test_accuracy": a / 2,
                        "train_seconds": 1.0 + k,
                        "samples_per_second": 10.0,
                    }
                )
                + "\n"
                for e, a in enumerate(accs[: 2 if k else 1])
            )
        )
        dirs.append(d)
    rows = aggregate(dirs)
    assert len(rows) == 1  # the epochs every run reached
    np.testing.assert_allclose(rows[0]["train_accuracy_mean"], 0.6)
    np.testing.assert_allclose(rows[0]["train_accuracy_sd"], np.std([0.5, 0.7, 0.6], ddof=1))
    np.testing.assert_allclose(rows[0]["train_seconds_mean"], 2.0)
    assert rows[0]["seeds"] == 3 and rows[0]["samples_per_second_sd"] == 0.0


def test_two_seeds_on_two_workers(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "darnax",
            "train",
            "--config",
            "small.toml",
            "--epochs",
            "2",
            "--quiet",
            "--seeds",
            "2",
            "--workers",
            "2",
            "--out",
            "s",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 seeds, epoch 2: test" in result.stdout
    configs = [resolve(file=tmp_path / "s" / f"seed-{k}" / "config.toml") for k in range(2)]
    assert [(c.run.master_seed, c.model.seed) for c in configs] == [(0, 44), (1, 45)]
    rows = [json.loads(line) for line in (tmp_path / "s" / "seeds.jsonl").read_text().splitlines()]
    assert (tmp_path / "s" / "seeds.svg").read_text().startswith("<svg")
    tests = [
        [
            json.loads(line)["test_accuracy"]
            for line in (tmp_path / "s" / f"seed-{k}" / "metrics.jsonl").read_text().splitlines()
        ]
        for k in range(2)
    ]
    assert [r["epoch"] for r in rows] == [1, 2]
    np.testing.assert_allclose([r["test_accuracy_mean"] for r in rows], np.mean(tests, axis=0))
    assert tests[0] != tests[1]  # the seeds differ


def test_seeds_refuse_a_fixed_seed(capsys):
    from darnax.cli import main

    assert main(["train", "--seeds", "2", "--seed", "3"]) == 2
    assert "--seeds sets each run's seeds" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--seeds", "0"], ["--seeds", "2", "--workers", "0"]])
def test_seeds_and_workers_are_positive(capsys, args):
    from darnax.cli import main

    assert main(["train", *args]) == 2
    assert "expected at least 1" in capsys.readouterr().err
