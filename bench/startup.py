"""Benchmark: start-up time and peak memory of ``darnax train``, cold and warm.

Runs the command in a subprocess, twice per round: *cold* with a fresh, empty cache folder
(``DARNAX_CACHE_DIR``: no decoded dataset, no compiled program), then *warm* with the same folder
again. For each run: the seconds from launch to each start-up event of
:mod:`darnax.cli.events` (``data``, ``network``, ``first_chunk``: the first training call
returned with its first chunk of batches computed) in elapsed and in CPU seconds, the total
elapsed and CPU seconds, and the peak resident memory (``ru_maxrss`` of the child). CPU seconds
are the figures to compare on a shared, loaded machine. A darnax without those events (an older
build, ``--python``) is timed from its output instead: its first log line (network built) and
its first progress update (first chunk), with the child's CPU seconds read from ``/proc`` then;
it has no caches, so its two runs are both cold.

Usage::

    python bench/startup.py --data-dir ../shared/datasets                 # this build
    python bench/startup.py --data-dir ../shared/datasets --python /work/venv/bin/python --label main

Prints a table and writes ``bench/startup.json`` (``--json``), appending to the rows already
there with another ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVENTS = ("data", "network", "first_chunk")


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) of a live process, from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _watch(stream, key: str, marks: dict, needle: str, sink: list[str], pid: int) -> None:
    """Record in ``marks[key]`` the time, and in ``marks[key + "_cpu"]`` the child's CPU seconds,
    when ``needle`` first appears in ``stream``."""
    while chunk := stream.read1(4096):
        text = chunk.decode(errors="replace")
        sink.append(text)
        if key not in marks and needle in text:
            marks[key], marks[f"{key}_cpu"] = time.time(), _cpu_seconds(pid)


def run_once(python: str, args: list[str], cache: Path, out: Path) -> dict:
    """One ``darnax train`` in a subprocess; its start-up times (s), total time and peak RSS."""
    events = out / "events.jsonl"
    env = {**os.environ, "DARNAX_CACHE_DIR": str(cache), "DARNAX_EVENTS": str(events)}
    command = [python, "-m", "darnax", "train", *args, "--out", str(out / "run")]
    marks: dict[str, float] = {}
    logs: list[str] = []
    t0 = time.time()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    watchers = [
        threading.Thread(target=_watch, args=(child.stdout, "network", marks, "darnax:", logs, child.pid)),
        threading.Thread(target=_watch, args=(child.stderr, "first_chunk", marks, "batches", logs, child.pid)),
    ]
    for w in watchers:
        w.start()
    _, status, usage = os.wait4(child.pid, 0)
    total = time.time() - t0
    for w in watchers:
        w.join()
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed ({status}):\n{''.join(logs)[-3000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    row = {"total_s": round(total, 2), "total_cpu_s": round(cpu, 2), "peak_rss_mib": usage.ru_maxrss // 1024}
    row["source"] = "output"
    for name in ("network", "first_chunk"):
        cpu = marks.get(f"{name}_cpu")
        row[f"{name}_cpu_s"] = round(cpu, 2) if cpu is not None else None
    if events.exists():
        recorded = [json.loads(line) for line in events.read_text().splitlines()]
        marks = {}
        for e in recorded:
            marks.setdefault(e["event"], e["time"])
            row[f"{e['event']}_cpu_s"] = e.get("cpu_s")
        row["source"] = "events"
    for name in EVENTS:
        row[f"{name}_s"] = round(marks[name] - t0, 2) if name in marks else None
    metrics = out / "run" / "metrics.jsonl"
    if metrics.exists():
        first = json.loads(metrics.read_text().splitlines()[0])
        row["train_accuracy"], row["test_accuracy"] = first["train_accuracy"], first["test_accuracy"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose darnax runs")
    parser.add_argument("--label", default="this build")
    parser.add_argument("--rounds", type=int, default=1, help="cold + warm pairs")
    parser.add_argument("--json", default=str(HERE / "startup.json"))
    parser.add_argument(
        "train_args",
        nargs="*",
        default=["--preset", "seed-sparse", "--dataset", "fashion-mnist", "--epochs", "1", "--cpus", "1"],
        help="darnax train's arguments (after --); --data-dir and --out are added",
    )
    args = parser.parse_args(argv)
    train_args = [*args.train_args, "--data-dir", args.data_dir]
    rows = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="darnax-startup-") as tmp:
            cache = Path(tmp) / "cache"
            for kind in ("cold", "warm"):
                out = Path(tmp) / kind
                out.mkdir()
                load = os.getloadavg()[0]
                row = {"label": args.label, "run": kind, "load": round(load, 2)}
                row.update(run_once(args.python, train_args, cache, out))
                rows.append(row)
                print(json.dumps(row), flush=True)
    cols = ("label", "run", "load", "data_s", "network_s", "first_chunk_s", "first_chunk_cpu_s", "total_s")
    cols += ("total_cpu_s", "peak_rss_mib")
    cols += ("train_accuracy", "test_accuracy")
    print("\n| " + " | ".join(cols) + " |\n|" + " --- |" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    path = Path(args.json)
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    kept = [r for r in old.get("rows", []) if r.get("label") != args.label]
    report = {
        "command": "darnax train " + " ".join(train_args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "rows": kept + rows,
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
