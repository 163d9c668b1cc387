"""The contracts of darnax modules: `AbstractModule`, `Layer`, `Adapter`, `SquareModule`,
`RecurrentSignLayer`.

Every module is an Equinox module (a pytree): its couplings are the inexact array leaves;
configuration and hyper-parameters (thresholds, learning rates, self-couplings) are static (see
:mod:`darnax.modules._hyper`). ``backward`` returns a module of the same structure holding
*updates* (pseudo-gradients for Optax) in its leaves, zeros where a leaf is not learned, so
``eqx.filter``/``optax`` can treat updates and parameters alike.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp

from darnax.utils._checks import backend_name
from darnax.utils.typing import PyTree

M = TypeVar("M", bound="AbstractModule")


class AbstractModule(eqx.Module):
    """Base of layers and adapters: a pure forward ``__call__`` and a local ``backward`` rule.

    Subclasses may define static ``in_features``/``out_features`` so that
    :class:`~darnax.layer_maps.sparse.LayerMap` can check layer sizes.
    """

    deterministic: ClassVar[bool] = True
    """Messages depend only on the input and the parameters (never on ``rng``), so an
    orchestrator may compute a message once and reuse it while its sender is unchanged."""

    @property
    @abstractmethod
    def has_state(self) -> bool:
        """Whether the module owns a layer of the network state (layers) or not (adapters)."""

    @abstractmethod
    def __call__(self, x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
        """The message sent from activity ``x`` (``(B, in)``) to the receiver (``(B, out)``).

        Args:
            x: sender activity, with a leading batch axis.
            rng: optional PRNG key (unused by deterministic modules).

        Returns:
            The message, ``(B, out)``.
        """

    @abstractmethod
    def backward(self: M, x: jax.Array, y: jax.Array, y_hat: jax.Array, gate: jax.Array | None = None) -> M:
        """A module-shaped update from the local rule.

        Args:
            x: sender activity ``(B, in)``.
            y: receiver target ``(B, out)``.
            y_hat: receiver field ``(B, out)``.
            gate: optional multiplicative gate.

        Returns:
            A module of identical structure whose leaves hold updates (zeros where fixed).
        """

    def zero_update(self: M) -> M:
        """A module of identical structure with every leaf zero (no learning)."""
        return jax.tree.map(jnp.zeros_like, self)

    def with_backend(self: M, backend: str) -> M:
        """This module computing with ``backend`` (``"compiled"`` or ``"jax"``); modules without
        compiled kernels return themselves."""
        backend_name(backend)
        if "backend" not in {f.name for f in dataclasses.fields(self)}:
            return self
        return replace_static(self, backend=backend)


class Layer(AbstractModule):
    """A module that owns a layer of the state: it reduces messages and applies an activation."""

    @property
    def has_state(self) -> bool:
        """Always ``True``."""
        return True

    @abstractmethod
    def activation(self, h: jax.Array) -> jax.Array:
        """The new state of the layer from its reduced field ``h``."""

    def reduce(self, h: PyTree) -> jax.Array:
        """Aggregate the messages into one field: their sum (:func:`sum_messages`).

        Args:
            h: a pytree of ``(B, out)`` messages: ``{sender: message}`` as the orchestrator
                passes them, a list, a tuple or any nesting of those.
        """
        return sum_messages(h)


class Adapter(AbstractModule):
    """A stateless module that carries one layer's state to another (a projection)."""

    @property
    def has_state(self) -> bool:
        """Always ``False``."""
        return False


class SquareModule(AbstractModule):
    """A module whose sender and receiver have one width, held in ``features``."""

    features: eqx.AbstractVar[int]

    @property
    def in_features(self) -> int:
        """The sender's width (``features``)."""
        return self.features

    @property
    def out_features(self) -> int:
        """The receiver's width (``features``)."""
        return self.features


class RecurrentSignLayer(SquareModule, Layer):
    """A layer of ±1 units with couplings ``J = W + diag(J_D)``: ``s <- sign(h_ext + s @ J)``.

    The self-message is ``s @ J``, reduction is a sum (:meth:`Layer.reduce`) and the activation is
    ``sign`` with ties to +1. Besides the step-by-step maths, such a layer can run whole phases:
    :meth:`async_sweeps` (one unit at a time, given orders) and, when :attr:`fuses_sync` is
    true, :meth:`sync_steps` (several synchronous steps in one compiled call). Subclasses hold
    their width ``N`` in ``features``.
    """

    def activation(self, h: jax.Array) -> jax.Array:
        """``+1`` where ``h >= 0`` (ties to +1), ``-1`` elsewhere, in ``h``'s dtype."""
        return jnp.where(h >= 0, jnp.ones_like(h), -jnp.ones_like(h))

    @property
    def fuses_sync(self) -> bool:
        """Whether :meth:`sync_steps` runs ``n`` steps in one compiled call (else the orchestrator
        steps one at a time)."""
        return False

    def sync_steps(self, h_ext: jax.Array, s0: jax.Array, n_steps: int) -> tuple[jax.Array, jax.Array]:
        """``n_steps`` synchronous steps ``s <- sign(h_ext + s @ J)`` with a fixed ``h_ext``.

        Returns:
            ``(states, fields)``: the ``(B, N)`` final states and their fields ``h_ext + s @ J``.
        """
        s = s0
        for _ in range(n_steps):
            s = self.activation(h_ext + self(s))
        return s, h_ext + self(s)

    @abstractmethod
    def async_sweeps(
        self, h_ext: jax.Array, s0: jax.Array, order: jax.Array, n_sweeps: int
    ) -> tuple[jax.Array, jax.Array]:
        """``n_sweeps`` asynchronous sweeps with a fixed ``h_ext``.

        Args:
            h_ext: ``(B, N)`` field from the other senders.
            s0: ``(B, N)`` initial ±1 states.
            order: int32 ``(B, N)`` per-sample visiting orders (permutations).
            n_sweeps: sweeps to run.

        Returns:
            ``(states, fields)``: the ``(B, N)`` final states and their fields ``h_ext + s @ J``.
        """


def sum_messages(h: PyTree) -> jax.Array:
    """Sum of every array in the pytree ``h``, in its leaf order.

    ``h`` may be a mapping, a list, a tuple or any nesting of them. Its leaves are added left to
    right in ``jax.tree.leaves`` order: a dict's keys sorted, so sender order for the
    orchestrator's ``{sender: message}``.

    Raises:
        ValueError: when ``h`` holds no array.
    """
    if isinstance(h, Mapping) and not isinstance(h, dict):
        h = dict(h)
    leaves = jax.tree.leaves(h)
    if not leaves:
        raise ValueError("cannot reduce an empty set of messages")
    return functools.reduce(operator.add, leaves)


def replace_static(module: M, **changes: object) -> M:
    """A copy of ``module`` with some (static) fields replaced, leaves shared."""
    new = object.__new__(type(module))
    for f in dataclasses.fields(module):
        object.__setattr__(new, f.name, changes.get(f.name, getattr(module, f.name)))
    return new


__all__ = ["AbstractModule", "Adapter", "Layer", "RecurrentSignLayer", "SquareModule", "sum_messages"]
