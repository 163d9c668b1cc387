"""Non-finite weights: which weight arrays of a model hold a NaN or inf, and the error naming them.

Every compiled training call also returns whether each weight array of
the model it ends with is all finite (one pass over the arrays per call, read by the host after
the call); a NaN or inf raises :class:`~darnax.utils._checks.NonFiniteWeightsError` naming the
layer, the array and the step, instead of being turned into -1 states by the sign dynamics.
NaN and inf persist through the updates (``w - lr * (g + wd * w)``), so checking once per call
misses none; ``fit_epoch`` then finds the first bad batch by replaying the call one
``train_step`` at a time, or, with ``donate=True`` (the model before the call is gone), names the
call's range of steps. Checking after every batch inside the scan instead cost 15% of the
seeds' epoch time. ``train_step`` does not wait for its flag: later ``train_step`` calls read
the flags that are ready, and ``fit_epoch``, ``evaluate``, ``eval_step`` and
:meth:`Trainer.check_weights` all of them; waiting in every call cost a ``train_step`` loop 30%
(it could no longer dispatch ahead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from darnax import ops
from darnax.orchestrators.sequential import SequentialOrchestrator
from darnax.utils._checks import NonFiniteWeightsError


def raise_if_non_finite(
    model: Callable[[], SequentialOrchestrator], finite: jax.Array, first: int, n_steps: int, where: str
) -> None:
    """Raise :class:`NonFiniteWeightsError` if ``finite`` (:func:`finite_weights` of ``model()``,
    the model after training steps ``first .. first + n_steps - 1``) flags an array.

    ``model`` is called only then, to name the arrays: a trainer holding its model flat need not
    rebuild it to learn that every flag is up.
    """
    ok = np.asarray(finite)
    if ok.all():
        return
    bad = "; ".join(name for name, good in zip(weight_names(model()), ok) if not good)
    steps = f"training step {first}" if n_steps == 1 else f"training steps {first}-{first + n_steps - 1}"
    raise NonFiniteWeightsError(
        f"non-finite weights (NaN or inf) after {steps} ({where}): {bad}. The inputs were finite: "
        "look for a learning rate or strength too large, or non-finite initial weights"
    )


def _weight_modules(orchestrator: SequentialOrchestrator) -> list[tuple[str, Any]]:
    """``(name, module)`` for every module of the model, in a fixed order."""
    return [(f"layer ({i}, {j}) {type(m).__name__}", m) for (i, j), m in orchestrator.lmap.edge_items()]


def finite_weights(orchestrator: SequentialOrchestrator) -> jax.Array:
    """``(n_arrays,)`` bool: whether each weight (inexact array) of every module is all finite.

    In the order of :func:`weight_names`. Where the program is compiled for CPU (chosen when it is
    lowered, :func:`jax.lax.platform_dependent`), one :func:`darnax.ops.all_finite` call for all
    of them (the seeds' per-batch training program spent 45 µs in XLA's reductions for this test,
    ``bench/RESULTS.md``, section 28); elsewhere one float reduction per array: ``sum(a * 0)`` is
    NaN exactly when ``a`` holds a NaN or an infinity (0 otherwise; no overflow, whatever the
    values), faster than the booleans of ``all(isfinite(a))`` (section 27).
    """
    arrays = [
        a
        for _, module in _weight_modules(orchestrator)
        for a in jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_inexact_array))
    ]
    if not arrays:
        return jnp.ones((0,), bool)
    return jax.lax.platform_dependent(arrays, cpu=ops.all_finite, default=_finite_by_reductions)


def _finite_by_reductions(arrays: list[jax.Array]) -> jax.Array:
    """:func:`finite_weights`' flags off CPU, one float reduction per array."""
    return jnp.stack([jnp.isfinite(jnp.sum(a * 0)) for a in arrays])


def weight_names(orchestrator: SequentialOrchestrator) -> list[str]:
    """A readable name per entry of :func:`finite_weights`: ``layer (1, 1) SparseRecurrentDiscrete.J``."""
    names = []
    for name, module in _weight_modules(orchestrator):
        leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(module, eqx.is_inexact_array))
        names += [f"{name}{jax.tree_util.keystr(path)}" for path, _ in leaves]
    return names


__all__ = ["finite_weights", "raise_if_non_finite", "weight_names"]
