"""``darnax train --processes N``: local data-parallel runs through jax.distributed on localhost.

Two processes train like one (same metrics, weights equal to float32 rounding), only process 0
writes, a data-parallel run resumes, a killed process stops the run within a bounded time, and
bad combinations are refused before anything starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest

from darnax.cli import checkpoint, main
from darnax.cli.config import resolve
from darnax.cli.network import build_trainer
from darnax.cli.run import fingerprint

SMALL = """
[model]
dim_hidden = 128
[data]
batch_size = 16
"""
TIMEOUT = 600


def _darnax(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "darnax", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _weights(out: Path):
    """The model of ``out``'s checkpoint (refused if incomplete or corrupted), built as ``darnax
    train`` builds it (32-bit mode: the test suite's 64-bit mode draws other patterns)."""
    config = resolve(file=out / "config.toml")
    with jax.enable_x64(False):
        trainer = build_trainer(config, 64, 10)
        model, *_ = checkpoint.load(
            out / "checkpoint.darnax",
            model=trainer.orchestrator,
            optimizer_state=trainer.ctx["optimizer_state"],
            fingerprint=fingerprint(config, trainer.orchestrator),
        )
    return model


@pytest.fixture
def small(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL)
    return tmp_path


def test_two_processes_train_like_one_and_resume(small):
    one = _darnax("train", "--config", "small.toml", "--epochs", "2", "--out", "one", "--quiet", cwd=small)
    assert one.returncode == 0, one.stderr[-2000:]
    two = _darnax(
        "train", "--config", "small.toml", "--epochs", "1", "--out", "two", "--quiet", "--processes", "2", cwd=small
    )
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("epoch   1") == 1  # process 0 alone prints
    more = _darnax("train", "--resume", "two", "--epochs", "2", "--quiet", "--processes", "2", cwd=small)
    assert more.returncode == 0, more.stderr[-2000:]
    assert sorted(p.name for p in (small / "two").iterdir()) == sorted(p.name for p in (small / "one").iterdir())
    for a, b in zip(_records(small / "one"), _records(small / "two"), strict=True):
        assert (a["epoch"], a["train_accuracy"], a["test_accuracy"]) == (
            b["epoch"],
            b["train_accuracy"],
            b["test_accuracy"],
        )
    for a, b in zip(
        jax.tree.leaves(eqx.filter(_weights(small / "one"), eqx.is_inexact_array)),
        jax.tree.leaves(eqx.filter(_weights(small / "two"), eqx.is_inexact_array)),
        strict=True,
    ):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)


def _children(pid: int) -> dict[int, int]:
    """``{process id: pid}`` of the processes a launcher started."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"--process-id" in cmdline:
            found[int(cmdline[cmdline.index(b"--process-id") + 1])] = int(entry.name)
    return found


def test_a_killed_process_stops_the_run(small):
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "darnax",
            "train",
            "--config",
            "small.toml",
            "--epochs",
            "50",
            "--out",
            "run",
            "--quiet",
            "--processes",
            "2",
        ],
        cwd=small,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (small / "run" / "checkpoint.darnax").exists():
            assert launcher.poll() is None and time.monotonic() < deadline, "the run did not reach its first epoch"
            time.sleep(0.5)
        os.kill(_children(launcher.pid)[1], signal.SIGKILL)
        killed = time.monotonic()
        _, err = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    assert time.monotonic() - killed < 90
    assert "process 1 of 2 was stopped by SIGKILL" in err
    _weights(small / "run")  # a whole checkpoint was kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--processes", "2", "--cpus", "1"], "--processes launches the run itself"),
        (["--processes", "2", "--batch-size", "15"], "does not split evenly"),
        (["--coordinator", "127.0.0.1:1"], "go together"),
        (["--processes", "0"], "at least 1"),
    ],
)
def test_bad_combinations_are_refused(small, capsys, args, message):
    code = main(["train", "--out", str(small / "bad"), "--quiet", *args]) if "--batch-size" not in args else None
    if code is None:  # the processes refuse it: the launcher reports their status
        result = _darnax("train", "--out", "bad", "--quiet", *args, cwd=small)
        assert result.returncode != 0 and message in result.stderr
        return
    assert code == 2 and message in capsys.readouterr().err


def test_free_port_can_be_bound_and_cpu_shares_cover_the_cpus():
    import socket

    from darnax.cli.distributed import cpu_shares, free_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))  # raises if the port were taken
    cpus = sorted(os.sched_getaffinity(0))
    for n in (1, 2, len(cpus) + 1):
        shares = cpu_shares(n)
        assert len(shares) == n and [cpu for share in shares for cpu in share] == cpus
