"""Every CLI test runs offline."""

from __future__ import annotations

import pytest

from darnax.datasets import locate


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path_factory):
    """No network, no user caches or system folders, no DARNAX_DATA_DIR."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    for var in ("XDG_CACHE_HOME", locate.DATA_DIR_ENV, locate.ALLOW_DOWNLOAD_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ())
