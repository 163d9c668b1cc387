"""The decoded-IDX cache: same arrays as read_idx, never stale, damaged entries rebuilt."""

from __future__ import annotations

import gzip
import os

import jax
import numpy as np
import pytest

from darnax.datasets import decoded
from darnax.datasets.classification.idx_dataset import TRAIN_IMAGES
from darnax.datasets.decoded import ALIGN, read_idx_cached
from darnax.datasets.idx import IMAGES_MAGIC, IdxFormatError, read_idx
from darnax.utils import cache

from ._idx_files import TinyMnist, idx_bytes, md5_hex, write_gz, write_tiny


def _images(seed: int = 0, n: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_same_array_as_read_idx_cold_and_warm(tmp_path):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images()))
    folder = tmp_path / "cache"
    want = read_idx(src, expected_magic=IMAGES_MAGIC)
    cold = read_idx_cached(src, folder, expected_magic=IMAGES_MAGIC)
    assert len(_entries(folder)) == 1
    warm = read_idx_cached(src, folder, expected_magic=IMAGES_MAGIC)
    for got in (cold, warm):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.uint8 and not got.flags.writeable
        assert got.ctypes.data % ALIGN == 0  # the payload is aligned in the mapped entry


def test_wide_types_are_native_endian(tmp_path):
    array = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    src = write_gz(tmp_path / "w.gz", idx_bytes(array))
    for _ in range(2):
        got = read_idx_cached(src, tmp_path / "cache")
        np.testing.assert_array_equal(got, array)
        assert got.dtype == np.dtype("=i2")


def test_no_folder_reads_directly(tmp_path):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images()))
    np.testing.assert_array_equal(read_idx_cached(src, None), read_idx(src))


def test_a_changed_source_is_never_served_stale(tmp_path):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images(0)))
    folder = tmp_path / "cache"
    read_idx_cached(src, folder)
    before = os.stat(src)
    write_gz(src, idx_bytes(_images(1)))  # same size, new content
    os.utime(src, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with the old mtime
    np.testing.assert_array_equal(read_idx_cached(src, folder), _images(1))
    assert len(_entries(folder)) == 1  # the old entry was replaced


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "pad"])
def test_a_damaged_entry_is_rebuilt(tmp_path, damage):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images()))
    folder = tmp_path / "cache"
    read_idx_cached(src, folder)
    (entry,) = folder.iterdir()
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[-1] ^= 1
    elif damage == "truncate":
        data = data[:-1]
    elif damage == "empty":
        data = bytearray()
    else:
        data[0] = 0
    entry.write_bytes(bytes(data))
    np.testing.assert_array_equal(read_idx_cached(src, folder), _images())
    assert entry.read_bytes()[0] != 0 and len(entry.read_bytes()) > 0  # rewritten whole


def test_checks_of_the_source_still_apply(tmp_path):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images()))
    folder = tmp_path / "cache"
    with pytest.raises(IdxFormatError, match="MD5"):
        read_idx_cached(src, folder, expected_md5="0" * 32)
    assert _entries(folder) == []  # nothing cached from a file that failed
    good = md5_hex(idx_bytes(_images()))
    read_idx_cached(src, folder, expected_md5=good)
    with pytest.raises(IdxFormatError, match="magic number"):  # another expectation, another entry
        read_idx_cached(src, folder, expected_magic=0x00000801)
    with pytest.raises(FileNotFoundError):
        read_idx_cached(tmp_path / "missing.gz", folder)


def test_multi_member_gzip_is_read_but_not_cached(tmp_path):
    content = idx_bytes(_images())
    src = tmp_path / "m.gz"
    src.write_bytes(gzip.compress(content[:100]) + gzip.compress(content[100:]))
    np.testing.assert_array_equal(read_idx_cached(src, tmp_path / "cache"), _images())
    assert _entries(tmp_path / "cache") == []


def test_unwritable_folder_means_no_cache(tmp_path):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images()))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    np.testing.assert_array_equal(read_idx_cached(src, blocker / "cache"), _images())


def test_device_put_uses_the_mapped_entry(tmp_path):
    src = write_gz(tmp_path / "x.gz", idx_bytes(_images()))
    read_idx_cached(src, tmp_path / "cache")
    array = read_idx_cached(src, tmp_path / "cache")
    on_device = jax.device_put(array)
    np.testing.assert_array_equal(np.asarray(on_device), _images())


def test_dataset_uses_the_cache_and_gives_the_same_data(tmp_path, monkeypatch):
    write_tiny(tmp_path / "data")
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    runs = []
    for no_cache in ("1", "", ""):
        monkeypatch.setenv(cache.NO_CACHE_ENV, no_cache)
        ds = TinyMnist(batch_size=8, data_dir=tmp_path / "data")
        ds.build(jax.random.key(0))
        runs.append([np.asarray(a) for split in ("train", "test") for a in ds.arrays(split)])
        assert len(_entries(tmp_path / "cache" / "decoded")) == (0 if no_cache else 4)
    for run in runs[1:]:
        for got, want in zip(run, runs[0], strict=True):
            np.testing.assert_array_equal(got, want)


def test_cache_root_and_switch(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.CACHE_DIR_ENV, raising=False)
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)  # tests/conftest.py sets it for the session
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "darnax"
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert cache.cache_folder("decoded") == tmp_path / "mine" / "decoded"
    for off in ("1", "true", "YES"):
        monkeypatch.setenv(cache.NO_CACHE_ENV, off)
        assert cache.cache_folder("decoded") is None and not cache.caching_enabled()
    monkeypatch.setenv(cache.NO_CACHE_ENV, "0")
    assert cache.caching_enabled()


def test_entry_names_follow_the_source(tmp_path):
    src = write_gz(tmp_path / TRAIN_IMAGES, idx_bytes(_images()))
    first = decoded.entry_path(tmp_path, src, IMAGES_MAGIC, None)
    assert first.name.endswith("-train-images-idx3-ubyte")
    assert decoded.entry_path(tmp_path, src, IMAGES_MAGIC, "0" * 32) != first
    os.utime(src, ns=(0, 1))
    assert decoded.entry_path(tmp_path, src, IMAGES_MAGIC, None) != first
