"""`SequentialState`: the activities of every layer of a layered network, one buffer each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def _shape_tuple(size: int | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(size, (int,)) and not isinstance(size, bool):
        size = (size,)
    if (
        not isinstance(size, tuple)
        or not size
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size)
    ):
        raise ValueError(f"sizes: every entry must be a positive int or a tuple of them, got {size!r}")
    return size


class SequentialState(eqx.Module):
    """One ``(B, *size)`` buffer per layer; index 0 is the input, index -1 the output (labels).

    A state is an immutable pytree: :meth:`init`, :meth:`replace` and :meth:`replace_val`
    return new states. It is built with a placeholder batch of 1; :meth:`init` gives the real
    batch size.

    Example:
        >>> s = SequentialState((4, 8, 3)).init(jnp.ones((2, 4)), -jnp.ones((2, 3)))
        >>> [a.shape for a in s.states], len(s)
        ([(2, 4), (2, 8), (2, 3)], 3)
    """

    states: list[jax.Array]
    dtype: jnp.dtype = eqx.field(static=True)

    def __init__(self, sizes: Iterable[int | tuple[int, ...]], dtype: jax.typing.DTypeLike = jnp.float32):
        """Allocate ``(1, *size)`` zero buffers.

        Args:
            sizes: one entry per layer, an int or a tuple of ints (the shape without batch).
            dtype: dtype of every buffer (float32 by default).

        Raises:
            ValueError: on an empty or malformed ``sizes``.
        """
        shapes = [_shape_tuple(s) for s in sizes]
        if len(shapes) < 2:
            raise ValueError(f"sizes: expected at least two layers (input and output), got {len(shapes)}")
        self.dtype = jnp.dtype(dtype)
        self.states = [jax.device_put(np.zeros((1, *shape), self.dtype)) for shape in shapes]  # nothing to compile

    @property
    def sizes(self) -> tuple[tuple[int, ...], ...]:
        """Per-layer shapes without the batch axis."""
        return tuple(tuple(a.shape[1:]) for a in self.states)

    @property
    def batch_size(self) -> int:
        """The current batch size ``B`` (1 before :meth:`init`)."""
        return int(self.states[0].shape[0])

    def __len__(self) -> int:
        """Number of layers."""
        return len(self.states)

    def __getitem__(self, idx: int) -> jax.Array:
        """The ``(B, *size)`` buffer of layer ``idx`` (negative indices count from the end)."""
        return self.states[idx]

    @property
    def readout(self) -> jax.Array:
        """The output buffer, ``self[-1]``."""
        return self.states[-1]

    def replace(self, value: Sequence[jax.Array]) -> SequentialState:
        """A new state holding the buffers ``value`` (one per layer, same shapes)."""
        value = list(value)
        if len(value) != len(self.states):
            raise ValueError(f"replace: expected {len(self.states)} buffers, got {len(value)}")
        return eqx.tree_at(lambda s: s.states, self, value)

    def replace_val(self, idx: int, value: jax.Array) -> SequentialState:
        """A new state whose layer ``idx`` holds ``value``."""
        states = list(self.states)
        states[idx] = value
        return eqx.tree_at(lambda s: s.states, self, states)

    def init(self, x: jax.typing.ArrayLike, y: jax.typing.ArrayLike | None = None) -> SequentialState:
        """A new state for the batch ``x``: ``[0] = x``, ``[-1] = y`` (zeros if None), others zeros.

        ``x`` and ``y`` are cast to the state's dtype.

        Args:
            x: ``(B, *size_0)`` inputs, with a leading batch axis.
            y: optional ``(B, *size_-1)`` targets (e.g. ±1 one-vs-all labels).

        Returns:
            The new state, batch size ``B``.

        Raises:
            ValueError: when ``x`` or ``y`` lack the batch axis, have the wrong trailing shape
                (e.g. labels of the wrong width) or disagree on the batch size.
        """
        x = jnp.asarray(x)
        y = None if y is None else jnp.asarray(y)
        self.check_batch(x.shape, None if y is None else y.shape)
        buffers = [jnp.zeros((x.shape[0], *shape), dtype=self.dtype) for shape in self.sizes]
        buffers[0] = x.astype(self.dtype)
        if y is not None:
            buffers[-1] = y.astype(self.dtype)
        return eqx.tree_at(lambda s: s.states, self, buffers)

    def check_batch(self, x_shape: tuple[int, ...], y_shape: tuple[int, ...] | None = None) -> None:
        """Raise ``ValueError`` unless inputs/targets of these shapes fit :meth:`init`."""
        sizes = self.sizes
        check_batch_shapes(sizes[0], sizes[-1], x_shape, y_shape)


def check_batch_shapes(
    x_size: tuple[int, ...], y_size: tuple[int, ...], x_shape: tuple[int, ...], y_shape: tuple[int, ...] | None
) -> None:
    """:meth:`SequentialState.check_batch` from the input and output layers' sizes alone (for
    callers that check many batches against one state and keep its sizes)."""
    _check_shape("x", tuple(x_shape), x_size, "the input layer (index 0)")
    if y_shape is not None:
        _check_shape("y", tuple(y_shape), y_size, "the output layer (index -1)")
        if y_shape[0] != x_shape[0]:
            raise ValueError(f"x and y must share the batch size, got {x_shape[0]} and {y_shape[0]}")


def _check_shape(name: str, got: tuple[int, ...], shape: tuple[int, ...], what: str) -> None:
    if len(got) != len(shape) + 1 or got[1:] != shape:
        hint = f"; a single sample needs a batch axis: {name}[None]" if got == shape else ""
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, shape))}) for {what}, got {got}{hint}")
    if got[0] < 1:
        raise ValueError(f"{name}: the batch is empty")


__all__ = ["SequentialState", "check_batch_shapes"]
