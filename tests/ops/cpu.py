"""What this machine's CPU offers the kernel builds, read from /proc/cpuinfo (empty elsewhere)."""

import pathlib

AVX512 = frozenset({"avx512f", "avx512dq", "avx512bw", "avx512vl"})


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux), or an empty set."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())
