"""Where darnax keeps its caches, and whether it may.

Two caches speed up the start of a run; neither changes a result:

- ``decoded/``: the decompressed, checked IDX files of MNIST and Fashion-MNIST
  (:mod:`darnax.datasets.decoded`), read memory-mapped instead of gunzipped at every start;
- ``xla/``: the compiled programs of ``darnax train`` (jax's persistent compilation cache, see
  :mod:`darnax.utils.compile_cache`).

The root is ``$DARNAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/darnax``, else ``~/.cache/darnax``.
``DARNAX_NO_CACHE=1`` (or ``darnax train --no-cache``) turns both off. Deleting the root (or either
folder) at any time is safe: what is missing is rebuilt.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the cache root.
CACHE_DIR_ENV = "DARNAX_CACHE_DIR"
#: Environment variable that, set to ``1``/``true``/``yes``, turns every cache off.
NO_CACHE_ENV = "DARNAX_NO_CACHE"


def cache_root() -> Path:
    """The root of darnax's caches (see the module doc); not created here."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "darnax"


def caching_enabled() -> bool:
    """False when ``DARNAX_NO_CACHE`` is ``1``, ``true`` or ``yes``."""
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() not in ("1", "true", "yes")


def cache_folder(kind: str) -> Path | None:
    """``cache_root() / kind``, or None when caching is off; not created here."""
    return cache_root() / kind if caching_enabled() else None
