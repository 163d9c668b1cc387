"""A cache of decoded IDX files: each ``.gz`` decompressed and checked once, then memory-mapped.

:func:`read_idx_cached` returns what :func:`~darnax.datasets.idx.read_idx` returns, the same
values, but from an uncompressed copy of the file's content in a cache folder (by default
``~/.cache/darnax/decoded``, :mod:`darnax.utils.cache`), mapped read-only into memory: no gunzip,
no MD5 and, for one-byte images, no copy in the process's own memory (the pages are the
operating system's file cache, shared by every run). An entry is ``pad`` bytes (the first holds
``pad``, 1 to 64, the others are zero) then the content, so that the payload starts on a 64-byte
boundary: ``jax.device_put`` then uses the mapped pages as they are, without a copy.

An entry is never served stale or damaged:

- its name digests the source's resolved path, size and modification time (nanoseconds), the
  expected magic number and content MD5: a replaced or edited file, or a darnax expecting
  another file, looks for another entry;
- it is written only after the whole source passed :func:`read_idx`'s checks (gzip CRC and
  length, IDX header and payload length, content MD5), and only when the source is one gzip
  member whose trailer (CRC-32 and length of the content) describes the whole content;
- every read checks the entry against the source's gzip trailer (length and CRC-32 of the whole
  content, about 20 ms for 47 MB) and parses its IDX header again; an entry that fails is
  deleted and rebuilt from the source.

Entries are written atomically (a temporary file, then a rename); a folder that cannot be written
only means no caching. Older entries of a source are deleted when a new one is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from darnax.datasets.idx import IdxFormatError, check_md5, decompress, parse_idx

#: The alignment of an entry's payload, in bytes (what jax's CPU client needs to alias it).
ALIGN = 64


def entry_path(folder: Path, source: Path, expected_magic: int | None, expected_md5: str | None) -> Path:
    """The cache entry of ``source`` as it is now (see the module doc for what its name digests)."""
    stat = source.stat()
    where = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    what = hashlib.sha256(f"{stat.st_size} {stat.st_mtime_ns} {expected_magic} {expected_md5}".encode())
    return folder / f"{where}-{what.hexdigest()[:16]}-{source.name.removesuffix('.gz')}"


def gzip_trailer(source: Path) -> tuple[int, int]:
    """``(CRC-32, length mod 2**32)`` of the content, from the last 8 bytes of a gzip file."""
    with source.open("rb") as f:
        f.seek(-8, os.SEEK_END)
        crc, size = struct.unpack("<II", f.read(8))
    return crc, size


def read_idx_cached(
    path: str | os.PathLike[str],
    folder: Path | None,
    *,
    expected_magic: int | None = None,
    expected_md5: str | None = None,
) -> np.ndarray:
    """:func:`~darnax.datasets.idx.read_idx` through the cache in ``folder`` (None: no cache).

    Returns:
        The decoded array: for one-byte element types a read-only view (of the memory-mapped
        entry, or of the decompressed content when no entry could be written), else a fresh
        native-endian array.

    Raises:
        FileNotFoundError, IdxFormatError: as :func:`~darnax.datasets.idx.read_idx`, for the source.
    """
    source = Path(path)
    if folder is None:
        return _decoded(source, expected_magic, expected_md5)[1]
    entry = entry_path(folder, source, expected_magic, expected_md5)
    trailer = gzip_trailer(source) if source.stat().st_size >= 18 else None
    if entry.exists():
        array = _load(entry, trailer, expected_magic)
        if array is not None:
            return array
        with contextlib.suppress(OSError):
            entry.unlink()
    data, array = _decoded(source, expected_magic, expected_md5)
    if trailer == (zlib.crc32(data), len(data) % 2**32) and _write(entry, data):
        del data, array  # the entry replaces them: mapped, not held
        array = _load(entry, trailer, expected_magic)
        if array is None:  # pragma: no cover - the entry changed under us
            raise IdxFormatError(f"{entry}: the decoded cache entry of {source} changed while it was written")
    return array


def _decoded(source: Path, expected_magic: int | None, expected_md5: str | None) -> tuple[bytes, np.ndarray]:
    """The source's content and its array (a view for one-byte types), every check passed."""
    data = decompress(source)
    array = parse_idx(data, source=str(source), expected_magic=expected_magic, copy=False)
    check_md5(data, expected_md5, source)
    return data, array


def _load(entry: Path, trailer: tuple[int, int] | None, expected_magic: int | None) -> np.ndarray | None:
    """The entry's array, or None when it does not match ``trailer`` or is not a valid IDX file."""
    try:
        with entry.open("rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # unreadable, or empty (mmap refuses length 0)
        return None
    pad = mapped[0]
    content = memoryview(mapped)[pad:]
    if not 1 <= pad <= ALIGN or trailer != (zlib.crc32(content), len(content) % 2**32):
        return None
    try:
        return parse_idx(content, source=str(entry), expected_magic=expected_magic, copy=False)
    except IdxFormatError:
        return None


def _padding(data: bytes) -> bytes:
    """The bytes before ``data`` in its entry: ``pad`` (1 to ``ALIGN``) bytes, the first ``pad``,
    that put the payload after the IDX header (``4 + 4 * ndim`` bytes) on an ``ALIGN`` boundary."""
    header = 4 + 4 * (data[3] if len(data) > 3 else 0)
    pad = (-header) % ALIGN or ALIGN
    return bytes([pad]) + bytes(pad - 1)


def _write(entry: Path, data: bytes) -> bool:
    """Write ``data`` to ``entry`` atomically and delete the source's older entries; False if
    the folder cannot be written."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_padding(data))
                f.write(data)
            os.replace(tmp, entry)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        where, _, name = entry.name.split("-", 2)
        for old in entry.parent.glob(f"{where}-*-{name}"):
            if old != entry:
                old.unlink(missing_ok=True)
    except OSError:
        return False
    return True
