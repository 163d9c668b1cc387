"""Atomic, checked checkpoints: model, optimiser state, PRNG key and epoch in one file.

Layout: a header line ``darnax-checkpoint 2 <json length>``, the JSON metadata (epoch, the
run's fingerprint and, since fingerprints cover the patterns, the identity they digest; the
versions that wrote it; the SHA-256 of the payload), then the payload: the leaves of
``{"model", "optimizer_state", "key", "epoch"}`` serialised by ``equinox.tree_serialise_leaves``.
Format 2 holds the couplings alone (hyper-parameters are static fields, rebuilt from the
config); format 1, written before, also held every module's hyper-parameters as arrays and is
refused with a message saying so.

Every file of a run directory is written by :func:`atomic_write`: a temporary file in the same
folder, flushed and fsynced, renamed over the old one, then the folder itself fsynced (so the
rename survives a power cut). A crash at any point leaves either the old file whole or the new
one whole, never a mix; the only debris is a ``<name>.<random>.tmp`` file, which
:func:`remove_leftovers` deletes.

Test hook: with ``DARNAX_TEST_KILL=<epoch>:<stage>`` in the environment, the process kills itself
with SIGKILL in epoch ``<epoch>`` at ``<stage>``: ``mid-epoch`` (after the epoch's first compiled
training call, :mod:`darnax.cli.run`), or while saving its checkpoint: ``mid-write`` (half the
bytes written), ``before-rename`` (file complete and fsynced) or ``after-rename`` (before the
folder's fsync). The crash tests use it; nothing else should.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

MAGIC = "darnax-checkpoint 2"
_FORMAT_1 = "darnax-checkpoint 1"
KILL_HOOK = "DARNAX_TEST_KILL"
_STAGES = ("mid-epoch", "mid-write", "before-rename", "after-rename")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupted, or belongs to another run."""


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (a rename in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes | str, *, _hook_epoch: int | None = None) -> None:
    """Replace ``path`` by ``data`` atomically: temporary file, fsync, ``os.replace``, folder fsync."""
    raw = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            if _hook_epoch is not None and _kill_at(_hook_epoch, "mid-write"):
                stream.write(raw[: len(raw) // 2])
                stream.flush()
                os.fsync(stream.fileno())
                test_kill(_hook_epoch, "mid-write")
            stream.write(raw)
            stream.flush()
            os.fsync(stream.fileno())
        if _hook_epoch is not None:
            test_kill(_hook_epoch, "before-rename")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if _hook_epoch is not None:
        test_kill(_hook_epoch, "after-rename")
    fsync_dir(path.parent)


def leftovers(folder: Path) -> list[Path]:
    """The temporary files an interrupted :func:`atomic_write` left in ``folder``."""
    return sorted(p for p in folder.glob("*.*.tmp") if p.is_file())


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete :func:`leftovers` (only ever half-written copies); returns what was deleted."""
    found = leftovers(folder)
    for p in found:
        p.unlink(missing_ok=True)
    return found


def save(
    path: Path,
    *,
    model: Any,
    optimizer_state: Any,
    key: jax.Array,
    epoch: int,
    fingerprint: str,
    identity: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (:func:`atomic_write`); the previous one stays whole until
    the new one is complete and renamed over it.

    Args:
        fingerprint: the run's fingerprint; :func:`load` refuses any other.
        identity: what the fingerprint digests (JSON), stored so that a refusal can name what differs.
    """
    payload = io.BytesIO()
    tree = {
        "model": model,
        "optimizer_state": optimizer_state,
        "key": jax.random.key_data(key),
        "epoch": jnp.asarray(epoch, jnp.int32),
    }
    eqx.tree_serialise_leaves(payload, tree)
    data = payload.getvalue()
    meta: dict[str, Any] = {"epoch": epoch, "fingerprint": fingerprint, "sha256": hashlib.sha256(data).hexdigest()}
    if identity is not None:
        meta["identity"] = identity
    meta["versions"] = versions()
    head = json.dumps(meta, sort_keys=True).encode()
    atomic_write(path, f"{MAGIC} {len(head)}\n".encode() + head + data, _hook_epoch=epoch)


def versions() -> dict[str, str]:
    """The versions whose PRNG streams and kernels a bitwise continuation relies on."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        mine = version("darnax")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        mine = "?"
    return {"darnax": mine, "jax": jax.__version__}


def read_meta(path: Path) -> tuple[dict[str, Any], bytes]:
    """``(metadata, payload)`` of a checkpoint whose payload matches its checksum.

    Raises:
        CheckpointError: naming ``path`` when it is missing, not a checkpoint, truncated or corrupted.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no checkpoint (the run has not finished an epoch)") from err
    head, newline, rest = raw.partition(b"\n")
    words = head.decode("ascii", "replace").rsplit(" ", 1)
    if words[0] == _FORMAT_1:
        raise CheckpointError(
            f"{path}: written by an older darnax (checkpoint format 1, whose models held their "
            "hyper-parameters as arrays); this version reads format 2: resume it with the darnax "
            "that wrote it, or start the run again"
        )
    if not newline or len(words) != 2 or words[0] != MAGIC or not words[1].isdigit():
        raise CheckpointError(f"{path}: not a darnax checkpoint, or truncated in its header (header {head[:40]!r})")
    size = int(words[1])
    if len(rest) < size:
        raise CheckpointError(
            f"{path}: truncated ({len(raw)} bytes, its metadata alone should take {size}); delete it or restore a copy"
        )
    try:
        meta = json.loads(rest[:size])
    except ValueError as err:
        raise CheckpointError(f"{path}: corrupted metadata ({err}); delete it or restore a copy") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupted metadata (expected a JSON object, got {type(meta).__name__})")
    data = rest[size:]
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise CheckpointError(f"{path}: corrupted or truncated (checksum mismatch); delete it or restore a copy")
    return meta, data


def load(
    path: Path,
    *,
    model: Any,
    optimizer_state: Any,
    fingerprint: str,
    identity: dict[str, Any] | None = None,
    accept: tuple[str, ...] = (),
) -> tuple[Any, Any, jax.Array, int]:
    """Read a checkpoint into the structure of ``model`` and ``optimizer_state``.

    Args:
        fingerprint: the run's fingerprint; the checkpoint must carry it (or one of ``accept``,
            e.g. the fingerprints of checkpoints written by older versions).
        identity: what ``fingerprint`` digests: on a mismatch, the error names the entries that
            differ from the checkpoint's.

    Returns:
        ``(model, optimizer_state, key, epoch)``.

    Raises:
        CheckpointError: naming the file: missing, truncated or corrupted (checksum), written for
            another run (fingerprint; the differing fields or patterns named when known), or its
            arrays do not fit the model.
    """
    meta, data = read_meta(path)
    if meta.get("fingerprint") != fingerprint and meta.get("fingerprint") not in accept:
        raise CheckpointError(
            f"{path}: written for another configuration ({_differences(meta.get('identity'), identity)}); "
            "resume with the run's own config.toml and the darnax/jax versions that started it"
        )
    like = {
        "model": model,
        "optimizer_state": optimizer_state,
        "key": jax.random.key_data(jax.random.key(0)),
        "epoch": jnp.asarray(0, jnp.int32),
    }
    try:
        tree = eqx.tree_deserialise_leaves(io.BytesIO(data), like)
    except Exception as err:
        raise CheckpointError(f"{path}: its arrays do not fit this model ({err})") from err
    return tree["model"], tree["optimizer_state"], jax.random.wrap_key_data(tree["key"]), int(tree["epoch"])


def _differences(saved: Any, now: dict[str, Any] | None) -> str:
    """What differs between a checkpoint's identity and the run's, in words."""
    if not isinstance(saved, dict) or now is None:
        return "model/data/optimizer/trainer/run.master_seed or the sparsity patterns differ"
    diffs: list[str] = []
    for section in sorted(set(saved.get("config", {})) | set(now.get("config", {}))):
        old, new = saved.get("config", {}).get(section, {}), now.get("config", {}).get(section, {})
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                diffs.append(f"{section}.{name}: checkpoint {old.get(name)!r}, now {new.get(name)!r}")
    old_p, new_p = saved.get("patterns", {}), now.get("patterns", {})
    edges = [e for e in sorted(set(old_p) | set(new_p)) if old_p.get(e) != new_p.get(e)]
    diffs += [f"sparsity pattern {e}: checkpoint {old_p.get(e)}, now {new_p.get(e)}" for e in edges]
    if edges:
        diffs.append("patterns are drawn from model.seed: another jax version may draw them differently")
    return "; ".join(diffs) if diffs else "fingerprints differ"


def _kill_at(epoch: int, stage: str) -> bool:
    """Whether the test hook asks to die at ``stage`` of saving ``epoch``'s checkpoint."""
    hook = os.environ.get(KILL_HOOK)
    if not hook:
        return False
    want_epoch, _, want_stage = hook.partition(":")
    if want_stage not in _STAGES or not want_epoch.isdigit():
        raise ValueError(f"{KILL_HOOK}: expected <epoch>:<stage> with stage one of {_STAGES}, got {hook!r}")
    return int(want_epoch) == epoch and want_stage == stage


def test_kill(epoch: int, stage: str) -> None:
    """SIGKILL this process if the test hook (module doc) names ``epoch`` and ``stage``."""
    if _kill_at(epoch, stage):
        os.kill(os.getpid(), signal.SIGKILL)
