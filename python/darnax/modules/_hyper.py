"""Hyper-parameters of modules: fixed arrays held in static fields, out of Optax's reach.

A module's couplings (``W``, ``J``) are its only inexact array leaves, so
``eqx.filter(module, eqx.is_inexact_array)`` (what the trainers and the seeds hand to Optax) is
exactly what learns: ``optax.adamw``'s decoupled decay, ``optax.masked`` or a schedule never see
a threshold, a learning rate or a self-coupling. Those live in static fields as a
:class:`Constant`: an immutable, hashable array (static fields are part of the tree structure,
which ``jax.jit`` hashes and compares). Under ``jit`` they are compile-time constants: changing
one means building a new module, and the next call recompiles.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from darnax.modules.interfaces import AbstractModule


def host_dtype(dtype: jax.typing.DTypeLike) -> np.dtype:
    """``dtype`` as jax holds it (``float64`` is ``float32`` without ``jax_enable_x64``): what
    ``jnp.asarray(x, dtype)`` gives, for building a :class:`Constant` on the host, uncompiled."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


class Constant:
    """An immutable array for a static field: hashable, equal by value (bit for bit), never a leaf.

    A uniform array (every entry the same) is stored as one scalar and its shape, so a per-unit
    threshold given as a scalar costs nothing however wide the layer, and becomes a broadcast
    constant under ``jit``.

    Args:
        value: the array (a scalar, NumPy or concrete JAX array; not a tracer).
        dtype: its dtype (default: ``value``'s).
    """

    __slots__ = ("_hash", "_shape", "_value")

    def __init__(self, value: jax.typing.ArrayLike, dtype: jax.typing.DTypeLike | None = None):
        array = np.array(value, dtype=dtype)
        self._shape = array.shape
        flat = array.reshape(-1)
        if flat.size > 1 and (flat.view(np.uint8).reshape(flat.size, -1) == flat[:1].view(np.uint8)).all():
            array = flat[:1].reshape(()).copy()  # not a view: the full array is not kept
        array.flags.writeable = False
        self._value = array
        self._hash = hash((self._shape, array.dtype.str, array.tobytes()))

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return self._shape

    @property
    def array(self) -> jax.Array:
        """The value as a ``jax.Array`` (a constant when traced)."""
        return jnp.broadcast_to(jnp.asarray(self._value), self._shape)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Constant):
            return NotImplemented
        return self is other or (
            self._hash == other._hash
            and self._shape == other._shape
            and self._value.dtype == other._value.dtype
            and self._value.tobytes() == other._value.tobytes()
        )

    def __repr__(self) -> str:
        if self._value.size > 8:  # as Equinox prints arrays: dtype and shape only
            return f"Constant({self._value.dtype}{list(self._shape)})"
        value = self._value.item() if self._value.ndim == 0 else self._value.tolist()
        return f"Constant({value!r}, shape={self._shape}, dtype={self._value.dtype})"


class PlasticModule(AbstractModule):
    """A module whose couplings learn by a local rule, with its hyper-parameters static.

    Subclasses hold ``_strength``, ``_threshold``, ``_lr`` and ``_weight_decay`` as
    :class:`Constant` in static fields (``eqx.field(static=True)``); this class reads them as
    arrays and applies the update rule of every plastic module, :meth:`local_update`.

    Learning rates: ``backward`` returns ``lr * grad + lr * wd * W`` (:meth:`local_update`), a
    pseudo-gradient; the Optax optimiser then scales it by its own rate. With ``optax.sgd(eta)``
    a step moves ``W`` by ``-eta * lr * (grad + wd * W)``: the module's ``lr`` sets the relative
    rates of the layers, the optimiser's ``eta`` (a scalar or an ``optax`` schedule) the global
    rate over time. Adaptive optimisers (``adam``) normalise the pseudo-gradient, so there the
    module rates matter little. The hyper-parameters are compile-time constants under ``jit``:
    build a new module to change one (the next compiled call retraces).
    """

    _strength: eqx.AbstractVar[Constant]
    _threshold: eqx.AbstractVar[Constant]
    _lr: eqx.AbstractVar[Constant]
    _weight_decay: eqx.AbstractVar[Constant]

    @property
    def strength(self) -> jax.Array:
        """``(out,)`` initialisation scale (fixed)."""
        return self._strength.array

    @property
    def threshold(self) -> jax.Array:
        """``(out,)`` perceptron margins (fixed)."""
        return self._threshold.array

    @property
    def lr(self) -> jax.Array:
        """Scalar learning rate folded into the update (fixed)."""
        return self._lr.array

    @property
    def weight_decay(self) -> jax.Array:
        """Scalar decay coefficient, already rescaled (fixed)."""
        return self._weight_decay.array

    def local_update(self, grad: jax.Array, weights: jax.Array) -> jax.Array:
        """``lr * grad + lr * wd * weights``: what ``backward`` puts in the couplings.

        Args:
            grad: the rule's pseudo-gradient, shaped like ``weights``.
            weights: the couplings that decay (masked where some entries are fixed).
        """
        lr = self.lr
        return lr * grad + lr * self.weight_decay * weights


__all__ = ["Constant", "PlasticModule"]
