"""Every CLI test runs offline, without darnax's caches (test_compile_cache.py turns them on)."""

from __future__ import annotations

import pytest

from darnax.datasets import locate
from darnax.utils import cache


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No network, no user caches or system folders, no DARNAX_DATA_DIR, no decoded-data or
    compilation caches (an in-process run would point jax's at a folder for the whole session)."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.setenv(cache.NO_CACHE_ENV, "1")
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    for var in ("XDG_CACHE_HOME", locate.DATA_DIR_ENV, locate.ALLOW_DOWNLOAD_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ())
