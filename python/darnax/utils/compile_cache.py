"""jax's persistent compilation cache for darnax: compiled programs kept across runs.

A second run of the same configuration loads its programs (the weight draws, the training and
evaluation chunks of ``darnax train``, a trainer's ``train_step`` and ``eval_step``) from disk
instead of compiling them, which is most of a cold start's time. ``darnax train`` turns the cache
on at start (:func:`enable`); a :class:`~darnax.trainers._base.Trainer` turns it on when built,
unless jax already has a cache folder (the user's choice is kept) (:func:`enable_default`).

Why a cached program cannot compute something else than a fresh compilation:

- jax keys every entry by a hash of the program's text, the compile options, the backend and
  the jax/jaxlib versions; a darnax custom call appears in that text as its target's name and
  attributes, its sparsity pattern as the pattern's *content key* (the patterns themselves are
  not in the program: the kernel looks the key up in this process's pattern store when the
  program is loaded, exactly as for a freshly compiled one);
- the folder is further namespaced by :func:`build_id`: a digest of darnax's version, the bytes
  of its compiled extension, the jax/jaxlib versions and the host CPU's model and flags, so a
  rebuilt darnax, another jax or another CPU (a cache on a shared home folder) starts an empty
  folder;
- a damaged entry fails to decompress (jax stores entries zlib-compressed with a checksum, or
  zstd): jax warns ("Error reading persistent compilation cache entry") and compiles afresh.

Where: ``<cache root>/xla/<build id>/`` (:mod:`darnax.utils.cache`); off with
``DARNAX_NO_CACHE=1`` or ``darnax train --no-cache``; jax's own setting
(``jax.config.update("jax_compilation_cache_dir", ...)`` before building a trainer) wins over it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from darnax.utils.cache import cache_folder


def build_id() -> str:
    """16 hex digits naming this darnax build, jax version and CPU (see the module doc)."""
    from importlib.metadata import PackageNotFoundError, version

    import jax
    import jaxlib

    from darnax import _ext

    try:
        mine = version("darnax")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        mine = "?"
    digest = hashlib.sha256(f"darnax {mine} jax {jax.__version__} jaxlib {jaxlib.__version__}\n".encode())
    digest.update(Path(_ext.__file__).read_bytes())
    digest.update(_cpu_description().encode())
    return digest.hexdigest()[:16]


def _cpu_description() -> str:
    """The host CPU's model name and feature flags (Linux), else an empty string."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))]
    except OSError:
        return ""
    return "".join(sorted(set(lines)))


def enable() -> Path | None:
    """Point jax's persistent compilation cache at this build's folder and cache every program
    (none is too small or too quick to compile: a start compiles dozens of small ones). Call
    before anything compiles. Returns the folder, or None when caching is off."""
    root = cache_folder("xla")
    if root is None:
        return None
    import jax

    folder = root / build_id()
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def enable_default() -> Path | None:
    """:func:`enable`, unless jax already has a cache folder (then None: that one stays)."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        return None
    return enable()
