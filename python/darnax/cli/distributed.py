"""Data-parallel ``darnax train``: launching local processes, joining a run, checking agreement.

``darnax train --processes N`` starts N copies of the same command on this machine, each pinned to
its own share of the CPUs, which meet through ``jax.distributed`` at a coordinator on localhost.
On a cluster, each task runs ``darnax train --cluster`` (jax detects SLURM, Open MPI and the
other launchers it knows) or names the run itself with ``--coordinator HOST:PORT
--num-processes P --process-id I``. Every process then trains on its rows of each global batch
(:class:`~darnax.trainers._base.Trainer` with a mesh); process 0 alone writes the run directory.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from darnax.cli.config import ConfigError

HEARTBEAT_S = 30  # a process that stops answering for this long stops the run
GRACE_S = 10  # after one local process fails, how long the others get to stop by themselves


@dataclass(frozen=True)
class Place:
    """This process's place in a data-parallel run."""

    process_id: int
    num_processes: int

    @property
    def lead(self) -> bool:
        """Process 0: the one that prints and writes the run directory."""
        return self.process_id == 0


def join(coordinator: str | None, num_processes: int | None, process_id: int | None, cluster: bool) -> Place:
    """``jax.distributed.initialize`` for this process (before any JAX computation).

    Either ``cluster`` (jax's detection of SLURM and other launchers) or all three of
    ``coordinator``, ``num_processes`` and ``process_id``.
    """
    import jax

    given = (coordinator, num_processes, process_id)
    if cluster and any(v is not None for v in given):
        raise ConfigError(
            "--cluster detects the run from the launcher: drop --coordinator/--num-processes/--process-id"
        )
    if not cluster:
        if any(v is None for v in given):
            raise ConfigError("--coordinator, --num-processes and --process-id go together (or use --cluster)")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise ConfigError(f"--process-id {process_id}: expected 0 <= id < --num-processes {num_processes}")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        heartbeat_timeout_seconds=HEARTBEAT_S,
    )
    return Place(jax.process_index(), jax.process_count())


def data_mesh():
    """The one-axis mesh ``("data",)`` over every device of the run."""
    import jax

    return jax.make_mesh((jax.device_count(),), ("data",))


def check_agreement(tree: object, what: str) -> None:
    """Raise unless every process holds bitwise the same arrays in ``tree`` (a digest is compared)."""
    import jax
    from jax.experimental import multihost_utils

    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if hasattr(leaf, "dtype"):
            digest.update(
                np.asarray(
                    jax.random.key_data(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else leaf
                ).tobytes()
            )
    mine = np.frombuffer(digest.digest(), np.uint8)
    everyone = np.asarray(multihost_utils.process_allgather(mine))
    differ = [i for i in range(everyone.shape[0]) if not np.array_equal(everyone[i], everyone[0])]
    if differ:
        raise RuntimeError(f"{what}: process(es) {differ} hold different values from process 0")


def cpu_shares(n: int) -> list[list[int]]:
    """This process's CPUs cut into ``n`` contiguous shares (empty ones when ``n`` exceeds them)."""
    cpus = sorted(os.sched_getaffinity(0))
    return [cpus[i * len(cpus) // n : (i + 1) * len(cpus) // n] for i in range(n)]


def free_port() -> int:
    """A TCP port free on localhost now (the OS's pick), for a local run's coordinator."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], n: int) -> int:
    """Run ``darnax <argv>`` as ``n`` local processes, each pinned to its share of this process's
    CPUs, meeting at a coordinator on a free localhost port. Returns 0, or the exit status of the
    first process that failed (the others are stopped within ``GRACE_S`` seconds)."""
    if n < 1:
        raise ConfigError(f"--processes: expected at least 1, got {n}")
    cpus = sorted(os.sched_getaffinity(0))
    if n > len(cpus):
        raise ConfigError(f"--processes {n}: this process may use only {len(cpus)} CPUs ({cpus})")
    shares = cpu_shares(n)
    port = free_port()
    procs = []
    for i, share in enumerate(shares):
        command = [
            sys.executable,
            "-m",
            "darnax",
            *argv,
            "--coordinator",
            f"127.0.0.1:{port}",
            "--num-processes",
            str(n),
            "--process-id",
            str(i),
        ]
        procs.append(subprocess.Popen(command, preexec_fn=lambda share=share: os.sched_setaffinity(0, share)))
    return _wait(procs)


def _wait(procs: list[subprocess.Popen]) -> int:
    deadline = None
    try:
        while any(p.poll() is None for p in procs):
            if deadline is None and any(p.returncode not in (None, 0) for p in procs):
                deadline = time.monotonic() + GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.1)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    if not failed:
        return 0
    causes = "; ".join(f"process {i} of {len(procs)} {_status(code)}" for i, code in failed)
    print(f"darnax: error: {causes}; the run stopped", file=sys.stderr)
    return next((code for _, code in failed if code > 0), 1)


def _status(code: int) -> str:
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was stopped by {signal.Signals(-code).name}"
    except ValueError:
        return f"was stopped by signal {-code}"


__all__ = ["Place", "check_agreement", "cpu_shares", "data_mesh", "free_port", "join", "launch"]
