"""`MessageCache`: messages computed once and reused while their senders cannot change.

Exactness: a message ``lm[i, j](state[j])`` of a deterministic module depends only on the
module's parameters and on ``state[j]``. During the dynamics of a training step the
parameters are fixed, and a layer that is never a receiver of the sweep (the clamped input;
the clamped labels when the output row is skipped) keeps its state. The cached array is then
*the same array* the per-step computation would produce, so reusing it changes no bit of the
result; it only removes the work (e.g. one ``sparse_matmul`` of the input per training step
instead of one per dynamics step).
"""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax


class MessageCache(eqx.Module):
    """Messages ``{(receiver, sender): (B, width)}`` valid while layers ``frozen`` are unchanged.

    Built by :meth:`~darnax.orchestrators.sequential.SequentialOrchestrator.cache_messages`;
    valid for the state it was built from, as long as only ``step``/``run`` with the same
    ``skip_output_state`` modify that state and the orchestrator's parameters do not change.

    Attributes:
        messages: the cached arrays.
        frozen: the layers whose states the messages were computed from (never updated).
    """

    messages: dict[tuple[int, int], jax.Array]
    frozen: frozenset[int] = eqx.field(static=True)

    def __init__(self, messages: Mapping[tuple[int, int], jax.Array], frozen: frozenset[int]):
        """Wrap ``messages`` computed from the layers ``frozen``."""
        self.messages = dict(messages)
        self.frozen = frozenset(frozen)

    def __contains__(self, edge: object) -> bool:
        """Whether the message of ``edge = (i, j)`` is cached."""
        return edge in self.messages

    def __getitem__(self, edge: tuple[int, int]) -> jax.Array:
        """The cached message of ``edge``."""
        return self.messages[edge]

    def check_updates(self, rows: set[int]) -> None:
        """Raise ``ValueError`` if a sweep updating ``rows`` would invalidate cached messages."""
        clash = self.frozen & rows
        if clash:
            raise ValueError(
                f"MessageCache: the sweep updates layer(s) {sorted(clash)} whose messages are cached; "
                "build the cache with the same skip_output_state as the sweep"
            )


__all__ = ["MessageCache"]
