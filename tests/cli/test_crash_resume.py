"""``darnax train`` killed with SIGKILL anywhere resumes to exactly the uninterrupted run.

Each run is a real ``python -m darnax train`` process on the bundled digits (64-32-10, 3
epochs). It is killed from outside at a random moment of its life, and from inside
(``DARNAX_TEST_KILL``, see :mod:`darnax.cli.checkpoint`) in the middle of an epoch, in the
middle of writing a checkpoint, between writing and renaming it, and between renaming it and
syncing its folder. The random choices come from a seed printed on failure
(``DARNAX_CRASH_SEED`` replays one).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from darnax.cli import checkpoint

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

TINY = """
[model]
dim_hidden = 32
sparsity = 0.8
[run]
epochs = 3
"""


def start(*args: object, cwd: Path, kill_at: str | None = None) -> subprocess.Popen:
    """``python -m darnax train --quiet ARGS``, stdout piped line by line, stderr to a file."""
    env = dict(os.environ)
    env.pop(checkpoint.KILL_HOOK, None)
    if kill_at:
        env[checkpoint.KILL_HOOK] = kill_at
    with (cwd / f"stderr-{time.monotonic_ns()}.txt").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "darnax", "train", "--quiet", *map(str, args)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def saved_epoch(run: Path) -> int | None:
    """The epoch of ``run``'s checkpoint (checksum verified), None when there is none."""
    path = run / "checkpoint.darnax"
    return checkpoint.read_meta(path)[0]["epoch"] if path.exists() else None


def records(run: Path) -> list[dict]:
    """metrics.jsonl without the timings (which differ from run to run)."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if "second" not in k} for line in lines]


def kill_check(run: Path, stage: str, before: int | None) -> None:
    """What a kill at ``stage`` of saving epoch ``before + 1`` (or mid-epoch) leaves behind."""
    if stage == "after-rename":
        assert saved_epoch(run) == (before or 0) + 1
    else:  # the previous checkpoint stays whole until the new one is renamed over it
        assert saved_epoch(run) == before
        assert bool(checkpoint.leftovers(run)) == (stage in ("mid-write", "before-rename"))


def test_sigkill_at_random_points_resumes_bitwise(tmp_path):
    seed = int(os.environ.get("DARNAX_CRASH_SEED", random.randrange(2**32)))
    rnd = random.Random(seed)
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    ref, run = tmp_path / "ref", tmp_path / "run"
    reference = start("--config", config, "--out", ref, cwd=tmp_path)
    resume = ("--resume", run, "--epochs", 3)
    plan = ["1:before-rename", f"2:{rnd.choice(['mid-epoch', 'mid-write'])}"]
    where = f"(DARNAX_CRASH_SEED={seed}, kills {plan})"

    # 1. killed between epoch 1's record and its checkpoint's rename: nothing to resume yet
    code, _ = finish(start("--config", config, "--out", run, cwd=tmp_path, kill_at=plan[0]))
    assert code == -signal.SIGKILL, where
    assert [r["epoch"] for r in records(run)] == [1], where
    kill_check(run, "before-rename", None)

    # 2. restarted from the beginning (the leftover removed), killed in epoch 2
    began = time.monotonic()
    code, out = finish(start(*resume, cwd=tmp_path, kill_at=plan[1]))
    lifetime = time.monotonic() - began
    assert code == -signal.SIGKILL and "starting from the beginning" in out, where
    kill_check(run, plan[1].split(":")[1], 1)

    # 3. killed from outside at a random moment of a resumed process's life
    proc = start(*resume, cwd=tmp_path)
    time.sleep(rnd.uniform(0.0, 1.3 * lifetime))
    proc.send_signal(signal.SIGKILL)
    code, out = finish(proc)
    done = saved_epoch(run)
    plan.append(f"outside after {lifetime:.1f} s: {code}, epoch {done}")
    assert done in (1, 2, 3) and code in (0, -signal.SIGKILL), where
    assert [r["epoch"] for r in records(run)][:done] == list(range(1, done + 1)), where

    # 4. killed while writing the next checkpoint
    if done < 3:
        stage = rnd.choice(["mid-write", "before-rename", "after-rename"])
        plan.append(f"{done + 1}:{stage}")
        code, _ = finish(start(*resume, cwd=tmp_path, kill_at=plan[-1]))
        assert code == -signal.SIGKILL, where
        kill_check(run, stage, done)

    # 5. resumed to the end: exactly the uninterrupted run
    code, out = finish(start(*resume, cwd=tmp_path))
    assert code == 0 and "resuming after epoch" in out, where
    assert finish(reference)[0] == 0
    assert records(run) == records(ref) and len(records(ref)) == 3, where
    mine, theirs = checkpoint.read_meta(run / "checkpoint.darnax"), checkpoint.read_meta(ref / "checkpoint.darnax")
    assert mine[1] == theirs[1] and mine[0] == theirs[0], where  # payload and metadata, bit for bit
    assert not checkpoint.leftovers(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["final_test_accuracy"] == records(ref)[-1]["test_accuracy"]
