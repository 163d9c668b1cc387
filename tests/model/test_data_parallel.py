"""Data-parallel training (``mesh=`` on a trainer): 2 processes on localhost, and 2 CPU devices
in one process, train exactly like one process at the same global batch (bitwise, on the dyadic
network whose sums are exact in any order), and every process ends with the same weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from darnax.cli.distributed import free_port

from . import _data_parallel_run as run
from ._nets import assert_trees_equal

SCRIPT = Path(run.__file__)
TIMEOUT = 300  # seconds; a hung collective fails the test instead of the suite


def _launch(out: Path, dynamics: str, processes: int, env: dict[str, str], *extra: str) -> None:
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--dynamics",
                dynamics,
                "--processes",
                str(processes),
                "--process-id",
                str(i),
                "--port",
                str(port),
                "--out",
                str(out),
                *extra,
            ],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(processes)
    ]
    try:
        logs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]


def _check_against_one_process(out: Path, dynamics: str, n_results: int, devices: int) -> None:
    reference, key, accuracy = run.train(dynamics)
    expected = (reference.orchestrator, reference.ctx["optimizer_state"])
    for i in range(n_results):
        got = eqx.tree_deserialise_leaves(out / f"process{i}.eqx", expected)
        assert_trees_equal(got, expected)
        saved = np.load(out / f"process{i}.npz")
        np.testing.assert_array_equal(saved["key"], jax.random.key_data(key))
        np.testing.assert_array_equal(saved["accuracy"], accuracy)
        assert int(saved["devices"]) == devices


@pytest.mark.parametrize("dynamics", ["sync", "async"])
def test_two_processes_train_like_one(tmp_path, dynamics):
    _launch(tmp_path, dynamics, 2, {"JAX_PLATFORMS": "cpu"})
    _check_against_one_process(tmp_path, dynamics, 2, devices=2)


def test_two_devices_of_one_process_train_like_one(tmp_path):
    _launch(tmp_path, "sync", 1, {"JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "2"})
    _check_against_one_process(tmp_path, "sync", 1, devices=2)


def test_one_collective_per_training_step(tmp_path):
    """The update's batch sums (W_in, J, W_out) travel in one all-reduce of one buffer (XLA alone
    would combine the three psums into one all-reduce of three operands)."""
    _launch(tmp_path, "sync", 1, {"JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "2"}, "--collectives")
    assert (tmp_path / "collectives.txt").read_text() == "1"
