"""A small, strict reader for gzip'ed IDX files (the format of MNIST and Fashion-MNIST).

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type, ``NN`` the number
of dimensions), then ``NN`` big-endian ``uint32`` sizes, then exactly ``prod(sizes)`` elements,
big-endian, row-major. Labels are ``0x00000801`` (``uint8``, one dimension), images
``0x00000803`` (``uint8``, three dimensions).

Everything is checked: the gzip stream (a truncated or corrupted file is caught by its CRC and
length trailer), the magic number, the type code, the header length and the exact payload length
(neither missing nor trailing bytes). Every failure is an :class:`IdxFormatError` that names the
file and says what is wrong; no input makes this module crash or return garbage.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

#: IDX type code -> element dtype (big-endian, as the format stores it).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Magic number of a ``uint8`` label file (one dimension).
LABELS_MAGIC = 0x00000801
#: Magic number of a ``uint8`` image file (three dimensions, count x rows x columns).
IMAGES_MAGIC = 0x00000803

_GZIP_SIGNATURE = b"\x1f\x8b"


class IdxFormatError(ValueError):
    """An IDX file is malformed, truncated or not what was expected; the message names it."""


def parse_idx(
    data: bytes | memoryview, *, source: str = "<bytes>", expected_magic: int | None = None, copy: bool = True
) -> np.ndarray:
    """Decode the (already decompressed) bytes of one IDX file.

    Args:
        data: the whole file content: magic number, sizes, payload (bytes, or a view of them).
        source: a name for the data (a path), used in error messages.
        expected_magic: if given, the magic number the file must carry (e.g. :data:`LABELS_MAGIC`).
        copy: False returns a read-only view of ``data`` for one-byte element types (whose byte
            order does not matter); wider types are always converted into a fresh array.

    Returns:
        A native-endian array of shape ``sizes`` (``uint8`` files give ``uint8``), writable
        unless a view (``copy=False``).

    Raises:
        IdxFormatError: naming ``source`` for a short header, a bad magic number, an unknown type
            code, or a payload whose length differs from ``prod(sizes) * itemsize``.

    Example:
        >>> raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9])
        >>> parse_idx(raw, expected_magic=LABELS_MAGIC)
        array([7, 2, 9], dtype=uint8)
        >>> parse_idx(raw[:-1])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        darnax.datasets.idx.IdxFormatError: <bytes>: truncated payload: expected 3 bytes of data ...
    """
    if len(data) < 4:
        raise IdxFormatError(f"{source}: too short for an IDX magic number ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise IdxFormatError(
            f"{source}: not an IDX file: magic number 0x{magic:08X} does not start with two zero bytes"
        )
    if expected_magic is not None and magic != expected_magic:
        raise IdxFormatError(f"{source}: magic number 0x{magic:08X}, expected 0x{expected_magic:08X}")
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        raise IdxFormatError(f"{source}: unknown IDX type code 0x{type_code:02X} in magic number 0x{magic:08X}")
    if ndim == 0:
        raise IdxFormatError(f"{source}: magic number 0x{magic:08X} declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(
            f"{source}: truncated header: {ndim} dimensions need {header} bytes, the file has {len(data)}"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    dtype = IDX_DTYPES[type_code]
    count = int(np.prod(shape, dtype=object))
    expected = count * dtype.itemsize
    got = len(data) - header
    if got != expected:
        what = "truncated payload" if got < expected else "trailing bytes after the payload"
        unit = "byte" if dtype.itemsize == 1 else "bytes"
        raise IdxFormatError(
            f"{source}: {what}: expected {expected} bytes of data ({count} elements of {dtype.itemsize} "
            f"{unit}) after the {header}-byte header, got {got}"
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    if not copy and dtype.itemsize == 1:
        return array
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(
    path: str | os.PathLike[str],
    *,
    expected_magic: int | None = None,
    expected_md5: str | None = None,
    max_bytes: int = 1 << 31,
) -> np.ndarray:
    """Read one gzip'ed IDX file (``*.gz``) with every check of :func:`parse_idx`.

    Args:
        path: the ``.gz`` file.
        expected_magic: if given, the magic number the file must carry.
        expected_md5: if given, the MD5 (hex) the *decompressed* content must have.
        max_bytes: refuse to decompress more than this (a guard against a corrupted or hostile file).

    Returns:
        The decoded array (see :func:`parse_idx`).

    Raises:
        FileNotFoundError: the file does not exist.
        IdxFormatError: naming ``path`` when it is not gzip, its gzip stream is truncated or
            corrupted (CRC or length mismatch), it decompresses to more than ``max_bytes``, its
            content has another MD5 than ``expected_md5``, or the IDX content is malformed.
    """
    data = decompress(path, max_bytes=max_bytes)
    array = parse_idx(data, source=str(path), expected_magic=expected_magic)
    check_md5(data, expected_md5, path)
    return array


def decompress(path: str | os.PathLike[str], *, max_bytes: int = 1 << 31) -> bytes:
    """The decompressed content of the gzip file ``path``, its stream checked (CRC and length).

    Raises:
        FileNotFoundError: the file does not exist.
        IdxFormatError: naming ``path`` when it is not gzip, its stream is truncated or corrupted,
            or it decompresses to more than ``max_bytes``.
    """
    path = Path(path)
    with path.open("rb") as raw:
        signature = raw.read(2)
    if signature != _GZIP_SIGNATURE:
        raise IdxFormatError(
            f"{path}: not a gzip file (starts with {signature.hex() or 'nothing'}, expected 1f8b); "
            "darnax reads the standard *-idx?-ubyte.gz files"
        )
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)
    except EOFError as err:
        raise IdxFormatError(f"{path}: truncated gzip stream (the file ends early: {err})") from err
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise IdxFormatError(f"{path}: corrupted gzip stream ({err})") from err
    if len(data) > max_bytes:
        raise IdxFormatError(f"{path}: decompresses to more than max_bytes={max_bytes} bytes")
    return data


def check_md5(data: bytes, expected_md5: str | None, path: str | os.PathLike[str]) -> None:
    """Raise :class:`IdxFormatError` naming ``path`` unless ``data`` has MD5 ``expected_md5`` (if given)."""
    if expected_md5 is None:
        return
    got = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if got != expected_md5:
        raise IdxFormatError(
            f"{path}: decompressed content has MD5 {got}, expected {expected_md5} "
            "(a different or damaged version of the file; replace it with the official one)"
        )
