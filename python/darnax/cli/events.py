"""Start-up timestamps of ``darnax train``, for benchmarks (``bench/startup.py``).

With ``DARNAX_EVENTS=<file>`` in the environment, :func:`mark` appends one JSON line per event
to that file: ``{"event": name, "time": <Unix time, s>, "cpu_s": <CPU seconds of the process so
far, all threads>, "peak_rss_mib": <VmHWM>}``. A caller that noted the Unix time before launching
the command gets each phase's time since the command began; ``cpu_s`` measures the work done,
which other jobs on a shared machine slow down far less than the elapsed time.
Without the variable :func:`mark` does nothing (and costs nothing).

Events of ``darnax train``, in order: ``start`` (the command line parsed), ``data`` (dataset
built), ``network`` (trainer built), ``first_chunk`` (an epoch's first training call returned with its
results computed; in the first epoch: compilation and the first chunk of batches (at most ``CHUNK``), an upper
bound on the time to the first batch), ``done`` (the run finished).
"""

from __future__ import annotations

import json
import os
import time

#: Environment variable naming the file that receives the events.
EVENTS_ENV = "DARNAX_EVENTS"


def enabled() -> bool:
    """Whether events are recorded (``DARNAX_EVENTS`` is set and not empty)."""
    return bool(os.environ.get(EVENTS_ENV))


def peak_rss_mib() -> int | None:
    """This process's peak resident memory (``VmHWM``) in MiB, or None where unknown (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def mark(name: str) -> None:
    """Append event ``name`` to the ``DARNAX_EVENTS`` file (a no-op when it is unset)."""
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    record = {
        "event": name,
        "time": time.time(),
        "cpu_s": round(time.process_time(), 3),
        "peak_rss_mib": peak_rss_mib(),
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
