"""The timing harness of the scripts in ``bench/``: it lives in the installed package, ``darnax.bench``."""

from darnax.bench._harness import (
    JIT,
    SKIP_MEMORY,
    Case,
    Plan,
    Results,
    dense_fits,
    failure_status,
    fmt_time,
    rel_err,
    size_label,
)

__all__ = [
    "JIT",
    "SKIP_MEMORY",
    "Case",
    "Plan",
    "Results",
    "dense_fits",
    "failure_status",
    "fmt_time",
    "rel_err",
    "size_label",
]
