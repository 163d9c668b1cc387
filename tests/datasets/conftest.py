"""Dataset tests run offline and isolated: no network, no user or system data folders."""

import socket
import urllib.request

import pytest

from darnax.datasets import locate


def _no_network(*args, **kwargs):
    raise AssertionError(f"a dataset test tried to use the network: {args!r}")


@pytest.fixture(autouse=True)
def offline_and_isolated(monkeypatch, tmp_path_factory):
    """Block downloads and sockets; point HOME and the cache at an empty folder; no system folders."""
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CACHE_HOME", locate.DATA_DIR_ENV, locate.ALLOW_DOWNLOAD_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ())
    return home
