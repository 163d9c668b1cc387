"""Atomic, checked checkpoints: model, optimiser state, PRNG key and epoch in one file.

Layout: a header line ``darnax-checkpoint 1 <json length>``, the JSON metadata (epoch, the
run's config fingerprint, the SHA-256 of the payload), then the payload: the leaves of
``{"model", "optimizer_state", "key", "epoch"}`` serialised by
``equinox.tree_serialise_leaves``. Writes go to a temporary file in the same folder, are
flushed to disk, then renamed over the old checkpoint, so a crash leaves the previous one whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

MAGIC = "darnax-checkpoint 1"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupted, or belongs to another configuration."""


def save(path: Path, *, model: Any, optimizer_state: Any, key: jax.Array, epoch: int, fingerprint: str) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename)."""
    payload = io.BytesIO()
    tree = {"model": model, "optimizer_state": optimizer_state, "key": jax.random.key_data(key), "epoch": jnp.asarray(epoch, jnp.int32)}
    eqx.tree_serialise_leaves(payload, tree)
    data = payload.getvalue()
    meta = json.dumps({"epoch": epoch, "fingerprint": fingerprint, "sha256": hashlib.sha256(data).hexdigest()}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(f"{MAGIC} {len(meta)}\n".encode() + meta + data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, *, model: Any, optimizer_state: Any, fingerprint: str) -> tuple[Any, Any, jax.Array, int]:
    """Read a checkpoint into the structure of ``model`` and ``optimizer_state``.

    Returns:
        ``(model, optimizer_state, key, epoch)``.

    Raises:
        CheckpointError: the file is missing, truncated or corrupted (checksum), was written for
            another configuration (fingerprint), or its arrays do not fit the model.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise CheckpointError(f"{path}: no checkpoint (the run has not finished an epoch)") from err
    head, _, rest = raw.partition(b"\n")
    words = head.decode("ascii", "replace").rsplit(" ", 1)
    if len(words) != 2 or words[0] != MAGIC or not words[1].isdigit():
        raise CheckpointError(f"{path}: not a darnax checkpoint (header {head[:40]!r})")
    size = int(words[1])
    try:
        meta = json.loads(rest[:size])
    except ValueError as err:
        raise CheckpointError(f"{path}: corrupted metadata ({err})") from err
    data = rest[size:]
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise CheckpointError(f"{path}: corrupted or truncated (checksum mismatch); delete it or restore a copy")
    if meta.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path}: written for another configuration (model/data/optimizer/trainer differ); "
            "resume with the run's own config.toml"
        )
    like = {"model": model, "optimizer_state": optimizer_state, "key": jax.random.key_data(jax.random.key(0)), "epoch": jnp.asarray(0, jnp.int32)}
    try:
        tree = eqx.tree_deserialise_leaves(io.BytesIO(data), like)
    except Exception as err:  # noqa: BLE001 - any failure here means "does not fit"
        raise CheckpointError(f"{path}: its arrays do not fit this model ({err})") from err
    return tree["model"], tree["optimizer_state"], jax.random.wrap_key_data(tree["key"]), int(tree["epoch"])
