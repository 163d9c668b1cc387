"""``darnax probe``: the seeds' linear probe on the last hidden representation, in JAX/Optax.

Representations ``state[-2]`` come from the trained model's evaluation dynamics on every train
and test image; a linear classifier (no bias, Adam, cross-entropy; seeds' defaults: lr 1e-3,
batch 256, 20 epochs, no weight decay) is then trained on the train representations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax


def train_linear_probe(
    train: tuple[jax.Array, jax.Array],
    test: tuple[jax.Array, jax.Array],
    key: jax.Array,
    *,
    lr: float = 1e-3,
    batch_size: int = 256,
    epochs: int = 20,
    weight_decay: float = 0.0,
) -> dict[str, float]:
    """Fit ``logits = h @ W`` by Adam on cross-entropy; returns train and test accuracy.

    Args:
        train, test: ``(representations (N, H), targets (N, C))``; the class is ``argmax`` of a target.
        key: PRNG key (initialisation and shuffling).
    """
    (h, y), (h_test, y_test) = train, test
    labels, labels_test = jnp.argmax(y, axis=1), jnp.argmax(y_test, axis=1)
    key, init_key = jax.random.split(key)
    weights = jax.random.normal(init_key, (h.shape[1], y.shape[1]), jnp.float32) / jnp.sqrt(h.shape[1])
    optimizer = optax.adamw(lr, weight_decay=weight_decay) if weight_decay else optax.adam(lr)
    opt_state = optimizer.init(weights)

    def loss(w: jax.Array, hb: jax.Array, lb: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(hb @ w, lb).mean()

    @jax.jit
    def epoch(carry: tuple[jax.Array, Any], perm: jax.Array) -> tuple[jax.Array, Any]:
        def step(c: tuple[jax.Array, Any], idx: jax.Array) -> tuple[tuple[jax.Array, Any], None]:
            w, s = c
            grads = jax.grad(loss)(w, h[idx], labels[idx])
            updates, s = optimizer.update(grads, s, w)
            return (optax.apply_updates(w, updates), s), None

        n = (perm.shape[0] // batch_size) * batch_size
        carry, _ = jax.lax.scan(step, carry, perm[:n].reshape(-1, batch_size))
        return carry

    carry = (weights, opt_state)
    with jax.numpy_dtype_promotion("standard"):  # optax's Adam mixes int counts and floats
        for _ in range(epochs):
            key, sub = jax.random.split(key)
            carry = epoch(carry, jax.random.permutation(sub, h.shape[0]))
    w = carry[0]
    accuracy = lambda hh, ll: float(jnp.mean(jnp.argmax(hh @ w, axis=1) == ll))  # noqa: E731
    return {"probe_train_accuracy": accuracy(h, labels), "probe_test_accuracy": accuracy(h_test, labels_test)}


def representations(run: Any, split: str) -> tuple[jax.Array, jax.Array]:
    """``(state[-2] for every image of split, targets)`` from the run's trained model."""
    x, y = run.dataset.arrays(split)
    run.key, metrics = run.trainer.evaluate(
        x, y, run.key, batch_size=run.config.data.batch_size, return_representations=True
    )
    return metrics["representations"], y


def probe_run(run: Any, out: Path) -> dict[str, float]:
    """Probe the model restored in ``run``; writes ``probe.json`` into ``out``."""
    import json

    from darnax.cli.checkpoint import atomic_write

    train, test = representations(run, "train"), representations(run, "test")
    result = train_linear_probe(train, test, jax.random.key(run.config.run.master_seed))
    atomic_write(out / "probe.json", json.dumps(result, indent=2) + "\n")
    return result
