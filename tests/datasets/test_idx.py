"""The strict IDX reader: exact round trips, and a clear error naming the file for every defect."""

import doctest
import gzip
import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from darnax.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError, parse_idx, read_idx

from ._idx_files import idx_bytes, md5_hex, write_gz

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@given(st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))))
def test_parse_round_trip(array):
    out = parse_idx(idx_bytes(array))
    assert out.dtype == array.dtype.newbyteorder("=") and out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # writable, independent of the input bytes


def test_read_images_and_labels(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    labels = np.array([7, 1], dtype=np.uint8)
    write_gz(tmp_path / "i.gz", idx_bytes(images))
    write_gz(tmp_path / "l.gz", idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(tmp_path / "i.gz", expected_magic=IMAGES_MAGIC), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "l.gz", expected_magic=LABELS_MAGIC), labels)
    assert read_idx(tmp_path / "l.gz", expected_md5=md5_hex(idx_bytes(labels))).shape == (2,)


GOOD = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short for an IDX magic number"),
        (b"\x01\x00\x08\x01" + GOOD[4:], "does not start with two zero bytes"),
        (GOOD[:2] + b"\x07" + GOOD[3:], "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "declares zero dimensions"),
        (GOOD[:10], "truncated header: 2 dimensions need 12 bytes, the file has 10"),
        (
            GOOD[:-1],
            "truncated payload: expected 12 bytes of data (12 elements of 1 byte) after the 12-byte header, got 11",
        ),
        (GOOD + b"\x00", "trailing bytes after the payload: expected 12 bytes"),
        (GOOD[:4] + (4).to_bytes(4, "big") + GOOD[8:], "truncated payload: expected 16 bytes"),
    ],
)
def test_malformed_content_names_the_file(tmp_path, data, message):
    path = write_gz(tmp_path / "bad-idx.gz", data)
    with pytest.raises(IdxFormatError) as err:
        read_idx(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_wrong_magic_for_the_role(tmp_path):
    path = write_gz(tmp_path / "labels.gz", GOOD)
    with pytest.raises(IdxFormatError, match=r"labels\.gz: magic number 0x00000802, expected 0x00000801"):
        read_idx(path, expected_magic=LABELS_MAGIC)


def test_not_a_gzip_file(tmp_path):
    path = tmp_path / "plain-idx1-ubyte.gz"
    path.write_bytes(GOOD)
    with pytest.raises(IdxFormatError, match=r"plain-idx1-ubyte\.gz: not a gzip file \(starts with 0000"):
        read_idx(path)
    empty = tmp_path / "empty.gz"
    empty.write_bytes(b"")
    with pytest.raises(IdxFormatError, match=r"empty\.gz: not a gzip file \(starts with nothing"):
        read_idx(empty)


def test_truncated_gzip(tmp_path):
    data = gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 255, (50, 28, 28), dtype=np.uint8)))
    for cut in (len(data) // 2, len(data) - 4, 12):
        path = tmp_path / f"cut{cut}.gz"
        path.write_bytes(data[:cut])
        with pytest.raises(IdxFormatError, match=rf"cut{cut}\.gz: (truncated|corrupted) gzip stream"):
            read_idx(path)


def test_corrupted_gzip(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(np.zeros((20, 28, 28), np.uint8) + 3)))
    crc = data.copy()
    crc[-6] ^= 0xFF  # the CRC-32 in the trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(crc))
    with pytest.raises(IdxFormatError, match=r"crc\.gz: corrupted gzip stream \(CRC check failed"):
        read_idx(path)
    body = data.copy()
    body[len(body) // 2] ^= 0x55  # inside the deflate stream
    path = tmp_path / "body.gz"
    path.write_bytes(bytes(body))
    with pytest.raises(IdxFormatError, match=r"body\.gz: (corrupted|truncated) gzip stream"):
        read_idx(path)


def test_content_checksum_and_size_limit(tmp_path):
    path = write_gz(tmp_path / "x.gz", GOOD)
    with pytest.raises(IdxFormatError, match=r"x\.gz: decompressed content has MD5 .* expected 0{32}"):
        read_idx(path, expected_md5="0" * 32)
    with pytest.raises(IdxFormatError, match=r"x\.gz: decompresses to more than max_bytes=10 bytes"):
        read_idx(path, max_bytes=10)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


@pytest.mark.parametrize(
    "name",
    ["idx", "classification.transforms", "classification.digits", "classification.prototypes"],
)
def test_docstring_examples(name):
    module = importlib.import_module(f"darnax.datasets.{name}")
    result = doctest.testmod(module, globs={"np": np, "jax": importlib.import_module("jax"), **vars(module)})
    assert result.attempted > 0 and result.failed == 0
