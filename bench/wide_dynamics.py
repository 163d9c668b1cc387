"""Benchmark: the sign dynamics of one wide layer at batch 16, by kernel thread count.

B = 16 is one lane block: ``sync_sign_steps`` splits a block's units across darnax's threads
on a wide layer (from 50,000 units at fan-in 20), ``async_sign_sweeps`` does not (a unit must
see every earlier flip). Layers: ``SparsityPattern.fixed_fan_in`` with zero diagonal, N =
100,000 / fan-in 100 (10 M couplings), 50,000 / 20, 20,000 / 20 and the seed size 2,000 / 20;
Gaussian couplings ``N(0, 1) / sqrt(fan-in)``, diagonal 0.5, Gaussian ``h_ext``, float32. Cases:
5 synchronous steps from ``sign(h_ext)`` (the first phase: many flips) and from the states those
5 steps reach (settling: fewer flips), B = 17 (a block and a lone sample) at 100,000 units, and
one asynchronous sweep (order shared by the batch); the flips per step are printed.

The thread count is read once per process (``DARNAX_NUM_THREADS``), so every variant (build x
threads) is a worker process holding the same cases; the parent times them in interleaved
rounds (medians; each turn starts with an untimed call) and checks that all variants return
the same bits. ``--before PATH`` adds the variants of another build of the extension module
(a copy of ``_ext*.so`` built from an earlier commit; the Python side must be the same). The
"2 x 1 thread at once" row runs two one-thread workers of this build on the same case at the
same moment (the slower of each pair): this project's 2-vCPU VM shares its throughput with
other jobs, and ``2 x t(1 thread) / t(2 x 1 at once)``, printed per case, is the most that two
threads could gain there at that time.

Usage: ``python bench/wide_dynamics.py [--quick] [--threads 1 2] [--before PATH] [--sizes N:FAN_IN ...]
[--rounds R] [--no-pair] [--out bench/wide_dynamics.json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

B, N_STEPS = 16, 5
PAIR = "2 x 1 thread at once"
SIZES = [(100_000, 100), (50_000, 20), (20_000, 20), (2_000, 20)]


def load_extension(path: str | None) -> str:
    """Imports darnax's extension from ``path`` (before darnax itself) when given; returns its file."""
    if path:
        import importlib.util

        spec = importlib.util.spec_from_file_location("darnax._ext", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["darnax._ext"] = module
    import darnax.ops  # noqa: F401 (imports the extension)

    return sys.modules["darnax._ext"].__file__


def size_cases(n: int, fan_in: int) -> list[tuple[str, dict, object]]:
    """(name, meta, fn) for every case of one layer, identical in every worker (fixed seeds)."""
    import jax
    import jax.numpy as jnp

    from darnax.ops import SparsityPattern, async_sign_sweeps, sync_sign_steps

    p = SparsityPattern.fixed_fan_in(jax.random.key(0), (n, n), fan_in, zero_diagonal=True)
    rng = np.random.default_rng(n)
    h = jnp.asarray(rng.standard_normal((B + 1, n)), jnp.float32)
    v = jnp.asarray(rng.standard_normal(p.nnz) / np.sqrt(fan_in), jnp.float32)
    d = jnp.full(n, 0.5, jnp.float32)
    order = jnp.asarray(rng.permutation(n)[None], jnp.int32)
    sync = jax.jit(lambda h, s, m: sync_sign_steps(h, v, p, d, s, m), static_argnums=2)
    asyn = jax.jit(lambda h, s: async_sign_sweeps(h, v, p, d, s, order, 1))
    first = jnp.where(h >= 0, 1.0, -1.0).astype(jnp.float32)
    settled = sync(h, first, N_STEPS)[0]
    meta = {"size": f"N={n} fan-in {fan_in}", "N": n, "fan_in": fan_in, "nnz": int(p.nnz)}
    cases = []
    for batch, phase, s0 in ((B, "from sign(h)", first), (B, "settling", settled), (B + 1, "from sign(h)", first)):
        if batch == B or n >= 100_000:
            cases.append(
                (
                    f"sync x{N_STEPS} {phase}",
                    meta | {"B": batch, "n_iter": N_STEPS},
                    lambda hb=h[:batch], sb=s0[:batch]: sync(hb, sb, N_STEPS),
                )
            )
    cases.append(("async x1 from sign(h)", meta | {"B": B, "n_iter": 1}, lambda: asyn(h[:B], first[:B])))
    return cases


def worker(sizes: list[tuple[int, int]], extension: str | None) -> None:
    """Builds the cases, reports their flips and digests, then times what the parent asks for."""
    ext_file = load_extension(extension)
    import jax

    cases = [c for n, fan_in in sizes for c in size_cases(n, fan_in)]
    info = []
    for name, meta, fn in cases:
        out = jax.block_until_ready(fn())
        digest = hashlib.sha1(b"".join(np.asarray(a).tobytes() for a in out)).hexdigest()
        flips = np.asarray(out[1])
        info.append({"name": name, **meta, "digest": digest, "flips_by_iter": flips.mean(0).tolist()})
    print(json.dumps({"extension": ext_file, "cases": info}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        fn = cases[request["case"]][2]
        jax.block_until_ready(fn())  # untimed: the previous turn ran another case or process
        times = []
        for _ in range(request["repeats"]):
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times": times}), flush=True)


class Worker:
    def __init__(self, label: str, threads: int, extension: str | None, sizes: list[str]) -> None:
        self.label, self.threads = label, threads
        cmd = [sys.executable, __file__, "--worker", "--sizes", *sizes]
        cmd += ["--extension", extension] if extension else []
        env = {**os.environ, "DARNAX_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = None

    def ready(self) -> dict:
        if self.info is None:
            self.info = json.loads(self.proc.stdout.readline())
        return self.info

    def ask(self, case: int, repeats: int) -> None:
        self.proc.stdin.write(json.dumps({"case": case, "repeats": repeats}) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> list[float]:
        return json.loads(self.proc.stdout.readline())["times"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def measure(workers: list[Worker], pair: list[Worker], cases: list[dict], rounds: int) -> dict:
    """Times of every case by every variant (the pair: the slower of its two), in interleaved rounds."""
    times = {(i, w.label): [] for i in range(len(cases)) for w in workers + pair[:1]}
    for _ in range(rounds):
        for i, case in enumerate(cases):
            repeats = 2 if case["N"] >= 100_000 else 10
            for w in workers:
                w.ask(i, repeats)
                times[(i, w.label)] += w.answer()
            for w in pair:  # both start the same case together
                w.ask(i, repeats)
            if pair:
                times[(i, pair[0].label)] += [max(a, b) for a, b in zip(pair[0].answer(), pair[1].answer())]
    return times


def report(variants: list[Worker], single: Worker | None, cases: list[dict], times: dict) -> list[dict]:
    """Prints the table (ratios to each case's first variant) and returns its rows."""
    head = f"{'case':<24}{'size':<22}{'B':>3}  {'variant':<26}{'median':>10}{'p25':>10}{'p75':>10}{'vs first':>9}"
    print(head + "\n" + "-" * len(head))
    rows = []
    for i, case in enumerate(cases):
        first = None
        for w in variants:
            a = np.asarray(times[(i, w.label)])
            med = float(np.median(a))
            first = first or med
            rows.append(
                {
                    **case,
                    "variant": w.label,
                    "threads": w.threads,
                    "median_s": med,
                    "p25_s": float(np.percentile(a, 25)),
                    "p75_s": float(np.percentile(a, 75)),
                    "repeats": a.size,
                }
            )
            print(
                f"{case['name']:<24}{case['size']:<22}{case['B']:>3}  {w.label:<26}{fmt(med):>10}"
                f"{fmt(rows[-1]['p25_s']):>10}{fmt(rows[-1]['p75_s']):>10}{first / med:>8.2f}x"
            )
        ceiling = ""
        if single and (i, PAIR) in times:  # the best speed-up two threads could reach on this machine, now
            one, both = (np.median(times[(i, label)]) for label in (single.label, PAIR))
            ceiling = f"; ceiling for 2 threads 2 x t(1) / t(2 x 1 at once) = {2 * one / both:.2f}x"
            rows[-1]["ceiling_2_threads"] = float(2 * one / both)
        print(f"{'':<24}flips per step: {', '.join(f'{f:.0f}' for f in case['flips_by_iter'])}{ceiling}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--extension", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="no 100,000-unit layer, few rounds")
    parser.add_argument(
        "--sizes",
        nargs="+",
        metavar="N:FAN_IN",
        help="layers (default: " + " ".join(f"{n}:{f}" for n, f in SIZES) + ")",
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--before", help="another build's extension module (.so), timed beside this one")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--no-pair", action="store_true", help=f"without the '{PAIR}' row")
    parser.add_argument("--out", default="bench/wide_dynamics.json", help="JSON file for the records ('' for none)")
    args = parser.parse_args()
    sizes = args.sizes or [f"{n}:{f}" for n, f in (SIZES[1:] if args.quick else SIZES)]
    if args.worker:
        return worker([tuple(int(x) for x in size.split(":")) for size in sizes], args.extension)

    builds = [("this build", None)] + ([("before", os.path.abspath(args.before))] if args.before else [])
    workers = [
        Worker(f"{label}, {t} thread{'s' * (t > 1)}", t, ext, sizes) for label, ext in builds for t in args.threads
    ]
    pair = [] if args.no_pair else [Worker(PAIR, 1, None, sizes) for _ in range(2)]
    infos = [w.ready() for w in workers + pair]
    cases = infos[0]["cases"]
    for w, info in zip(workers + pair, infos):
        for c, mine in zip(cases, info["cases"]):
            assert mine["digest"] == c["digest"], f"{w.label}: {c['name']} {c['size']} B={c['B']} differs"
    print(f"# {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}; every variant returned the same bits")
    for w, info in zip(workers, infos):
        print(f"# {w.label}: {info['extension']}")
    rounds = args.rounds or (3 if args.quick else 6)
    times = measure(workers, pair, cases, rounds)
    for w in workers + pair:
        w.close()
    single = next((w for w in workers[: len(args.threads)] if w.threads == 1), None)
    rows = report(workers + pair[:1], single, cases, times)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "cpu_count": os.cpu_count(),
                    "loadavg_end": os.getloadavg(),
                    "rounds": rounds,
                    "extensions": {w.label: info["extension"] for w, info in zip(workers, infos)},
                    "rows": rows,
                },
                f,
                indent=1,
            )
        print(f"# wrote {args.out}")


if __name__ == "__main__":
    main()
