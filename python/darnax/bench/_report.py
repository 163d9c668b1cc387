"""What a ``darnax bench`` run records about its machine, and the comparison of two runs' JSON files."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata

import jax
import jaxlib
import numpy as np

from darnax.bench._harness import fmt_time

# Fields that identify a row: two runs' rows with equal keys measured the same thing.
ROW_KEY = ("op", "size", "B", "dtype", "threads", "impl", "n_iter")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """CPU, kernel build, threads and versions: the context a JSON file of timings needs."""
    from darnax.ops import direct

    return {
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "darnax_kernel_isa": direct.kernel_isa(),
        "darnax_extension": direct.__file__,
        "darnax_built_with_jaxlib": direct.built_with_jaxlib,
        "darnax_ffi_api_version": list(direct.ffi_api_version),
        "DARNAX_NUM_THREADS": os.environ.get("DARNAX_NUM_THREADS"),
        "versions": {
            "python": platform.python_version(),
            "darnax": _version("darnax"),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "numpy": np.__version__,
            "scipy": _version("scipy"),
        },
        "loadavg_start": os.getloadavg(),
    }


def banner(info: dict) -> str:
    """One comment line naming the machine and the builds, printed above the table."""
    v = info["versions"]
    return (
        f"# {info['cpu_model']}, {info['cpus_allowed']} cpus, kernels {info['darnax_kernel_isa']}, darnax "
        f"{v['darnax']}, jax {v['jax']}, numpy {v['numpy']}, scipy {v['scipy']}, load {info['loadavg_start'][0]:.2f}"
    )


def write_json(path: str, info: dict, config: dict, rows: list[dict]) -> None:
    """Writes ``{"machine", "config", "rows"}`` to ``path`` (folders created as needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"machine": info, "config": config, "rows": rows}, f, indent=1)


def load_rows(path: str) -> tuple[dict, list[dict]]:
    """The machine record and the rows of a ``darnax bench --json`` file.

    Raises:
        ValueError: the file is not such a file.
    """
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or "rows" not in data or "machine" not in data:
        raise ValueError(f"{path}: not a `darnax bench --json` file (expected 'machine' and 'rows' keys)")
    return data["machine"], data["rows"]


def compare(path_a: str, path_b: str) -> list[dict]:
    """The rows timed in both runs, with B's median over A's (``change`` > 1: B is slower).

    Rows match on op, size, batch, dtype, threads, implementation and sweep/step count; rows in
    one file only are left out (and counted by :func:`print_compare`).
    """
    _, rows_a = load_rows(path_a)
    _, rows_b = load_rows(path_b)
    timed_b = {tuple(r.get(k) for k in ROW_KEY): r for r in rows_b if "median_s" in r}
    out = []
    for r in rows_a:
        other = timed_b.get(tuple(r.get(k) for k in ROW_KEY))
        if "median_s" in r and other is not None:
            out.append(
                {
                    **{k: r.get(k) for k in ROW_KEY},
                    "a_s": r["median_s"],
                    "b_s": other["median_s"],
                    "change": other["median_s"] / r["median_s"],
                }
            )
    return out


def print_compare(path_a: str, path_b: str) -> int:
    """Prints the change between two runs as a table; returns the number of rows matched."""
    info_a, rows_a = load_rows(path_a)
    info_b, rows_b = load_rows(path_b)
    for name, info in (("A", info_a), ("B", info_b)):
        v = info.get("versions", {})
        print(
            f"# {name}: {info.get('cpu_model')}, kernels {info.get('darnax_kernel_isa')}, darnax {v.get('darnax')}, "
            f"jax {v.get('jax')}, extension {info.get('darnax_extension')}"
        )
    rows = compare(path_a, path_b)
    print(
        f"{'op':<15}{'size':<21}{'B':>4}{'dtype':>9}{'thr':>4}  {'implementation':<38}{'n':>3}"
        f"{'A':>12}{'B':>12}{'B/A':>8}"
    )
    for r in rows:
        n = "" if r["n_iter"] is None else str(r["n_iter"])
        print(
            f"{r['op']:<15}{r['size']:<21}{r['B'] or '':>4}{r['dtype'] or '':>9}{r['threads'] or '':>4}  "
            f"{r['impl']:<38}{n:>3}{fmt_time(r['a_s']):>12}{fmt_time(r['b_s']):>12}{r['change']:>7.2f}x"
        )
    unmatched = sum("median_s" in r for r in rows_a) + sum("median_s" in r for r in rows_b) - 2 * len(rows)
    print(f"# {len(rows)} rows in both runs; {unmatched} timed in one run only")
    return len(rows)
