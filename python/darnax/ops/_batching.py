"""A vmap rule shared by the ops: fold a vmapped axis into the kernels' own batch axis."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def fold_vmap(
    call: Callable[..., tuple[jax.Array, ...]], n_sample: int, shareable: tuple[int, ...] = ()
) -> Callable[..., tuple[jax.Array, ...]]:
    """Wrap ``call(*sample_args, *shared_args)`` so that ``jax.vmap`` stays one kernel call.

    The first ``n_sample`` arguments carry the kernel's batch axis first and every output
    does too, except that the sample arguments listed in ``shareable`` may have a leading axis
    of 1 (shared by the batch). When only sample arguments are vmapped, the vmapped axis is
    merged into the batch axis (one call on ``V * B`` rows; an unmapped argument with a leading
    axis of 1 stays as it is). When a shared argument (weights, pattern-aligned values) is
    vmapped, each vmapped slice is a separate call through ``lax.map``: correct, sequential.
    """
    fn = jax.custom_batching.custom_vmap(call)

    @fn.def_vmap
    def _rule(axis_size: int, in_batched: list[bool], *args: jax.Array):
        if any(in_batched[n_sample:]):

            def one(sliced: list[jax.Array]) -> tuple[jax.Array, ...]:
                it = iter(sliced)
                return fn(*(next(it) if b else a for a, b in zip(args, in_batched)))

            outs = jax.lax.map(one, [a for a, b in zip(args, in_batched) if b])
        else:
            batch = args[0].shape[int(in_batched[0])]
            folded = []
            for k, (a, b) in enumerate(zip(args[:n_sample], in_batched[:n_sample])):
                if k in shareable and not b and a.shape[0] == 1:
                    folded.append(a)
                    continue
                a = a if b else jnp.broadcast_to(a, (axis_size, *a.shape))
                a = jnp.broadcast_to(a, (axis_size, batch, *a.shape[2:]))
                folded.append(a.reshape(axis_size * batch, *a.shape[2:]))
            flat = fn(*folded, *args[n_sample:])
            outs = tuple(o.reshape(axis_size, batch, *o.shape[1:]) for o in flat)
        return outs, tuple(True for _ in outs)

    return fn
