"""Timing, checking and reporting machinery of ``darnax bench`` (and of the scripts in ``bench/``)."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

SKIP_MEMORY = "skipped (memory)"
JIT = "darnax jit (XLA FFI)"


@dataclass(frozen=True)
class Plan:
    """How one group is timed: warm-up calls, repeats (split over rounds), a seconds cap per case."""

    warmup: int
    repeats: int
    rounds: int
    budget_s: float


@dataclass
class Case:
    """One implementation in a group: ``fn()`` is timed; ``check(first output)`` adds JSON fields."""

    label: str
    fn: Callable[[], object] | None
    n: int | None = None  # sweeps/steps per call
    ref: str = JIT  # the row (same n) that the ratio column divides by
    status: str = "ok"
    check: Callable[[object], dict] | None = None


def size_label(d: int, k: int, sparsity: float) -> str:
    """``"DxK s=S"``: how a size shows in tables and JSON rows."""
    return f"{d}x{k} s={sparsity:g}"


def dense_fits(nbytes: int, limit_gb: float) -> bool:
    """Whether a dense temporary of ``nbytes`` is under the limit and half the memory available now."""
    try:
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        available = None
    return nbytes <= limit_gb * 2**30 and (available is None or 2 * nbytes < available)


def failure_status(err: BaseException) -> str:
    """The status of a case that raised: ``skipped (memory)`` for allocation failures, else the error type."""
    text = str(err).lower()
    if isinstance(err, MemoryError) or any(s in text for s in ("resource_exhausted", "out of memory", "allocat")):
        return SKIP_MEMORY
    return f"failed ({type(err).__name__})"


def measure(cases: list[Case], plan: Plan) -> dict[int, tuple[list[float], dict]]:
    """Warm up every runnable case (checking its first output), then time them in interleaved rounds.

    Each case's turn in a round starts with one untimed call: the case before it has just evicted
    the caches and let idle threads (XLA's, darnax's) fall asleep, and a median of a handful of
    repeats would otherwise mix that recovery into every implementation's steady-state time.
    """
    live: dict[int, tuple[list[float], dict]] = {}
    for i, case in enumerate(cases):
        if case.fn is None:
            continue
        try:
            out = jax.block_until_ready(case.fn())
            extra = case.check(out) if case.check else {}
            for _ in range(plan.warmup - 1):
                jax.block_until_ready(case.fn())
        except Exception as err:  # a baseline that cannot run becomes a row saying why
            case.status = failure_status(err)
            continue
        live[i] = ([], extra)
    per_round = max(1, plan.repeats // plan.rounds)
    for _ in range(plan.rounds):
        for i, (samples, _) in live.items():
            start = time.perf_counter()
            jax.block_until_ready(cases[i].fn())
            for _ in range(per_round):
                t0 = time.perf_counter()
                jax.block_until_ready(cases[i].fn())
                samples.append(time.perf_counter() - t0)
                if time.perf_counter() - start > plan.budget_s / plan.rounds and len(samples) >= 3:
                    break
    return live


def fmt_time(seconds: float) -> str:
    """Seconds in µs, ms or s, whichever reads best."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


class Results:
    """Rows as they are measured: printed at once, kept for the JSON file."""

    HEADER = (
        f"{'op':<15}{'size':<21}{'implementation':<38}{'n':>3}{'time/call':>12}{'time/iter':>12}"
        f"{'flips/iter':>11}{'vs darnax':>10}"
    )

    def __init__(self) -> None:
        self.rows: list[dict] = []
        print(self.HEADER + "\n" + "-" * len(self.HEADER))

    def run(self, op: str, size: str, meta: dict, cases: list[Case], plan: Plan) -> None:
        """Times ``cases`` together (:func:`measure`), then prints and keeps one row per case."""
        live = measure(cases, plan)
        rows = []
        for i, c in enumerate(cases):
            row = {"op": op, "size": size, **meta, "impl": c.label, "n_iter": c.n, "status": c.status}
            if i in live:
                samples, extra = live[i]
                a = np.asarray(samples)
                row |= {
                    "median_s": float(np.median(a)),
                    "p25_s": float(np.percentile(a, 25)),
                    "p75_s": float(np.percentile(a, 75)),
                    "min_s": float(a.min()),
                    "repeats": int(a.size),
                    "per_iter_s": float(np.median(a)) / (c.n or 1),
                    **extra,
                }
            rows.append(row)
        for row, c in zip(rows, cases):
            ref = next((r for r in rows if (r["impl"], r["n_iter"]) == (c.ref, c.n) and "median_s" in r), None)
            if "median_s" in row:
                row["ratio_vs_darnax_jit"] = row["median_s"] / ref["median_s"] if ref else None
            self.rows.append(row)
            self.print_row(row)
        sys.stdout.flush()
        gc.collect()

    @staticmethod
    def print_row(row: dict) -> None:
        """One row of the table: time per call and per sweep/step, flips, ratio to the reference."""
        n = "" if row["n_iter"] is None else str(row["n_iter"])
        head = f"{row['op']:<15}{row['size']:<21}{row['impl']:<38}{n:>3}"
        if row["status"] != "ok":
            print(f"{head}  {row['status']}")
            return
        per = fmt_time(row["per_iter_s"]) if row["n_iter"] else ""
        flips = f"{row['flips_per_iter']:.1f}" if "flips_per_iter" in row else ""
        ratio = "" if row["ratio_vs_darnax_jit"] is None else f"{row['ratio_vs_darnax_jit']:.2f}x"
        print(f"{head}{fmt_time(row['median_s']):>12}{per:>12}{flips:>11}{ratio:>10}")


def rel_err(want: np.ndarray, reorder: np.ndarray | None = None) -> Callable[[object], dict]:
    """A check: max |got - want| / max |want| (``got`` first permuted by ``reorder``)."""

    def check(got: object) -> dict:
        got = np.asarray(got, np.float64)
        got = got if reorder is None else got[reorder]
        return {"rel_err_vs_darnax": float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-30))}

    return check
