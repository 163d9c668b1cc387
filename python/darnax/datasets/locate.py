"""Where a dataset's files are found, and (only when allowed) how they are downloaded.

Resolution order for a dataset called ``name`` (``"mnist"``, ``"fashion-mnist"``); the first
folder that holds *all* of its files wins:

1. an explicit ``data_dir=`` argument: ``<data_dir>/<name>/``, then ``<data_dir>/`` itself;
2. the environment variable ``DARNAX_DATA_DIR``: ``$DARNAX_DATA_DIR/<name>/``, then
   ``$DARNAX_DATA_DIR/`` itself (so ``DARNAX_DATA_DIR=/path/to/datasets`` with one sub-folder per
   dataset works, and so does pointing it straight at one dataset's folder);
3. the user cache: ``$XDG_CACHE_HOME/darnax/<name>/``, by default ``~/.cache/darnax/<name>/``;
4. system locations: ``/usr/share/datasets/<name>/`` (where Debian's ``dataset-fashion-mnist``
   package installs) and ``/usr/local/share/datasets/<name>/``.

If none holds the files, they are downloaded **only** when ``download=True`` is passed or the
environment sets ``DARNAX_ALLOW_DOWNLOAD=1``: from each mirror in turn, with a progress bar on
stderr, each file checked against its published MD5 and written atomically (a temporary file in
the target folder, then ``os.replace``), into ``<data_dir>/<name>/``, else
``$DARNAX_DATA_DIR/<name>/``, else the cache folder. Otherwise
a :class:`DatasetNotFoundError` lists every folder looked at, what was missing there, and how to
provide the files. Whatever the folder, every load also checks the MD5 of each file's decompressed
content (:attr:`RemoteFile.content_md5`), which re-compressed copies share with the originals.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: Environment variable naming a folder of datasets (or of one dataset).
DATA_DIR_ENV = "DARNAX_DATA_DIR"
#: Environment variable that, set to ``1``, allows downloads without ``download=True``.
ALLOW_DOWNLOAD_ENV = "DARNAX_ALLOW_DOWNLOAD"
#: System-wide folders that may hold ``<name>/`` (checked last).
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Attributes:
        name: the file name.
        md5: MD5 of the published (compressed) file, checked on download.
        content_md5: MD5 of its decompressed content, checked on every load; it also accepts
            re-compressed copies of the files (some redistributions re-gzip them).
    """

    name: str
    md5: str
    content_md5: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """A dataset's folder name, its files and the mirrors (base URLs ending in ``/``) that serve them."""

    name: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    licence: str = ""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are in none of the searched folders (and could not or may not be downloaded)."""


def cache_dir(name: str) -> Path:
    """The user cache folder of dataset ``name``: ``$XDG_CACHE_HOME/darnax/<name>`` or ``~/.cache/darnax/<name>``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "darnax" / name


def candidate_dirs(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order (see the module docstring)."""
    out: list[Path] = []
    for root in (data_dir, os.environ.get(DATA_DIR_ENV) or None):
        if root is not None:
            out += [Path(root).expanduser() / name, Path(root).expanduser()]
    out.append(cache_dir(name))
    out += [d / name for d in SYSTEM_DIRS]
    return out


def download_allowed(download: bool | None) -> bool:
    """``download`` if given, else whether ``DARNAX_ALLOW_DOWNLOAD`` is ``1``/``true``/``yes``."""
    if download is not None:
        return bool(download)
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def md5sum(path: str | os.PathLike[str]) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(
    source: DatasetSource,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
    progress: bool = True,
) -> Path:
    """The folder holding all of ``source``'s files, downloading them first if needed and allowed.

    Args:
        source: the dataset's name, files and mirrors.
        data_dir: an explicit folder, searched first (``<data_dir>/<name>`` then ``<data_dir>``).
        download: allow downloading; ``None`` defers to ``DARNAX_ALLOW_DOWNLOAD``.
        progress: draw a progress bar on stderr while downloading.

    Returns:
        The folder (every file of ``source`` is in it).

    Raises:
        DatasetNotFoundError: the files are nowhere and downloading is not allowed, or every
            mirror failed; the message lists the folders searched and each failure.
    """
    names = [f.name for f in source.files]
    searched: list[str] = []
    for folder in candidate_dirs(source.name, data_dir):
        if all((folder / n).is_file() for n in names):
            return folder
        present = [n for n in names if (folder / n).is_file()]
        note = f" (has {len(present)} of {len(names)}; missing {', '.join(sorted(set(names) - set(present)))})"
        searched.append(f"  {folder}{note if present else ''}")
    looked = "\n".join(searched)
    if not download_allowed(download):
        mirror = source.mirrors[0] if source.mirrors else "no mirror known"
        raise DatasetNotFoundError(
            f"{source.name}: files {', '.join(names)} not found. Looked in:\n{looked}\n"
            f"Provide them by one of: pass data_dir=<folder>; set {DATA_DIR_ENV}=<folder> (holding "
            f"{source.name}/ or the files); copy them to {cache_dir(source.name)}; or allow a download "
            f"with download=True or {ALLOW_DOWNLOAD_ENV}=1 (from {mirror})."
        )
    target = candidate_dirs(source.name, data_dir)[0]
    errors: list[str] = []
    for remote in source.files:
        if (target / remote.name).is_file():
            continue
        errors += fetch(remote, source.mirrors, target, progress=progress)
        if not (target / remote.name).is_file():
            raise DatasetNotFoundError(
                f"{source.name}: could not download {remote.name} into {target}:\n"
                + "\n".join(f"  {e}" for e in errors)
                + f"\nLooked for existing files in:\n{looked}"
            )
    return target


def fetch(remote: RemoteFile, mirrors: Sequence[str], target: Path, *, progress: bool = True) -> list[str]:
    """Download ``remote`` into ``target`` from the first mirror that serves it with the right MD5.

    The file is streamed into a temporary file in ``target``, its MD5 checked, then moved into
    place with ``os.replace`` (atomic); a failed or mismatching download leaves nothing behind.

    Returns:
        One message per failed mirror (empty if the first one worked).
    """
    target.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for mirror in mirrors:
        url = mirror + remote.name
        fd, tmp_name = tempfile.mkstemp(dir=target, prefix=f".{remote.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                got = _stream(url, out, label=f"{target.name}/{remote.name}", progress=progress)
            if got != remote.md5:
                errors.append(f"{url}: MD5 {got}, expected {remote.md5}")
                continue
            os.replace(tmp_name, target / remote.name)
            return errors
        except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError, timeouts, disk errors
            errors.append(f"{url}: {err}")
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
    return errors


def _stream(url: str, out: IO[bytes], *, label: str, progress: bool) -> str:
    """Copy ``url`` into ``out`` and return the MD5 of what was written."""
    digest = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress:
                _draw(label, done, total)
    if progress:
        sys.stderr.write("\n")
    return digest.hexdigest()


def _draw(label: str, done: int, total: int) -> None:
    """One progress line on stderr: a 30-character bar when the size is known, else a byte count."""
    if total:
        filled = min(30, 30 * done // total)
        bar = "#" * filled + "." * (30 - filled)
        size = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
        sys.stderr.write(f"\rdownloading {label} [{bar}] {100 * done // total:3d}% {size}")
    else:
        sys.stderr.write(f"\rdownloading {label} {done / 1e6:.1f} MB")
    sys.stderr.flush()
