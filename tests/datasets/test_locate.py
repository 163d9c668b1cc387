"""Where dataset files are looked for, the offline error, and downloads (faked: tests never download)."""

import io
import urllib.error
import urllib.request

import pytest

from darnax.datasets import locate
from darnax.datasets.locate import DatasetNotFoundError, DatasetSource, RemoteFile

from ._idx_files import md5_hex

FILES = (RemoteFile("a.gz", md5_hex(b"alpha")), RemoteFile("b.gz", md5_hex(b"beta")))
SOURCE = DatasetSource("toy", FILES, mirrors=("https://one.invalid/", "https://two.invalid/"))


def put(folder, names=("a.gz", "b.gz")):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"x")
    return folder


def test_candidate_order(tmp_path, monkeypatch, offline_and_isolated):
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(tmp_path / "env"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", (tmp_path / "sys",))
    assert locate.candidate_dirs("toy", tmp_path / "arg") == [
        tmp_path / "arg" / "toy",
        tmp_path / "arg",
        tmp_path / "env" / "toy",
        tmp_path / "env",
        offline_and_isolated / ".cache" / "darnax" / "toy",
        tmp_path / "sys" / "toy",
    ]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert locate.cache_dir("toy") == tmp_path / "xdg" / "darnax" / "toy"


def test_resolution_order(tmp_path, monkeypatch, offline_and_isolated):
    monkeypatch.setattr(locate, "SYSTEM_DIRS", (tmp_path / "sys",))
    system = put(tmp_path / "sys" / "toy")
    assert locate.locate(SOURCE) == system
    cache = put(offline_and_isolated / ".cache" / "darnax" / "toy")
    assert locate.locate(SOURCE) == cache
    env_flat = put(tmp_path / "env")  # DARNAX_DATA_DIR pointing straight at the files
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(env_flat))
    assert locate.locate(SOURCE) == env_flat
    env_sub = put(tmp_path / "env" / "toy")  # <DARNAX_DATA_DIR>/<name>/ comes first
    assert locate.locate(SOURCE) == env_sub
    explicit = put(tmp_path / "arg")
    assert locate.locate(SOURCE, explicit) == explicit
    assert locate.locate(SOURCE, str(tmp_path / "arg")) == explicit


def test_a_folder_needs_every_file(tmp_path, monkeypatch, offline_and_isolated):
    put(tmp_path / "env" / "toy", names=("a.gz",))
    complete = put(offline_and_isolated / ".cache" / "darnax" / "toy")
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(tmp_path / "env"))
    assert locate.locate(SOURCE) == complete


def test_offline_error_lists_every_place_and_the_fixes(tmp_path, monkeypatch, offline_and_isolated):
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(tmp_path / "env"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", (tmp_path / "sys",))
    put(tmp_path / "env" / "toy", names=("b.gz",))
    with pytest.raises(DatasetNotFoundError) as err:
        locate.locate(SOURCE, tmp_path / "arg")
    message = str(err.value)
    for folder in locate.candidate_dirs("toy", tmp_path / "arg"):
        assert f"  {folder}" in message
    assert f"{tmp_path / 'env' / 'toy'} (has 1 of 2; missing a.gz)" in message
    for hint in ("data_dir=", "DARNAX_DATA_DIR", "download=True", "DARNAX_ALLOW_DOWNLOAD=1", "https://one.invalid/"):
        assert hint in message
    assert isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize(("value", "allowed"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_download_permission(monkeypatch, value, allowed):
    monkeypatch.setenv(locate.ALLOW_DOWNLOAD_ENV, value)
    assert locate.download_allowed(None) is allowed
    assert locate.download_allowed(False) is False and locate.download_allowed(True) is True


class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def fake_urlopen(contents, calls):
    """An ``urlopen`` serving ``contents[url]`` (bytes, or an exception to raise)."""

    def urlopen(url, timeout=None):
        calls.append(url)
        item = contents.get(url, urllib.error.URLError("no route"))
        if isinstance(item, Exception):
            raise item
        return FakeResponse(item)

    return urlopen


def test_download_verifies_md5_falls_back_and_writes_atomically(tmp_path, monkeypatch, capsys):
    calls = []
    contents = {
        "https://one.invalid/a.gz": b"tampered",  # wrong MD5: rejected, next mirror
        "https://two.invalid/a.gz": b"alpha",
        "https://one.invalid/b.gz": b"beta",
    }
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen(contents, calls))
    folder = locate.locate(SOURCE, tmp_path, download=True)
    assert folder == tmp_path / "toy"
    assert (folder / "a.gz").read_bytes() == b"alpha" and (folder / "b.gz").read_bytes() == b"beta"
    assert calls == ["https://one.invalid/a.gz", "https://two.invalid/a.gz", "https://one.invalid/b.gz"]
    assert sorted(p.name for p in folder.iterdir()) == ["a.gz", "b.gz"]  # no temporary file left
    assert "downloading toy/a.gz [" in capsys.readouterr().err
    calls.clear()
    assert locate.locate(SOURCE, tmp_path, download=True) == folder and calls == []  # found, not fetched


def test_download_enabled_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(locate.ALLOW_DOWNLOAD_ENV, "1")
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(tmp_path))
    contents = {"https://one.invalid/a.gz": b"alpha", "https://one.invalid/b.gz": b"beta"}
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen(contents, []))
    assert locate.locate(SOURCE, progress=False) == tmp_path / "toy"


def test_failed_download_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    contents = {
        "https://one.invalid/a.gz": b"bad",
        "https://two.invalid/a.gz": urllib.error.HTTPError("https://two.invalid/a.gz", 404, "Not Found", {}, None),
    }
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen(contents, []))
    with pytest.raises(DatasetNotFoundError) as err:
        locate.locate(SOURCE, tmp_path, download=True, progress=False)
    message = str(err.value)
    assert f"could not download a.gz into {tmp_path / 'toy'}" in message
    assert f"https://one.invalid/a.gz: MD5 {md5_hex(b'bad')}, expected {md5_hex(b'alpha')}" in message
    assert "https://two.invalid/a.gz: HTTP Error 404: Not Found" in message
    assert list((tmp_path / "toy").iterdir()) == []


def test_no_download_unless_allowed(tmp_path):
    # The autouse fixture makes any network use fail loudly; without permission none is attempted.
    with pytest.raises(DatasetNotFoundError, match=r"not found\. Looked in"):
        locate.locate(SOURCE, tmp_path)
    assert not (tmp_path / "toy").exists()
