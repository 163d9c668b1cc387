"""A trainer's compiled calls, data parallel: ``shard_map`` over a mesh axis that splits the batch.

Each process (or each local device) holds its rows of the global batch; the model, the optimiser
state and the PRNG key are replicated. :func:`sharded` wraps one of a trainer's pure cores so that
it takes and returns process-local arrays, as the single-process core does: inputs are assembled
into global arrays (``jax.make_array_from_process_local_data``), the core runs per shard inside
``jax.shard_map`` with :func:`darnax.utils.data_parallel.data_axis` set (the plasticity rules then
sum their batch terms over the shards, see that module), and the replicated results come back as
this process's copy. Every process applies the same update to the same weights: they stay equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from darnax.utils.data_parallel import data_axis


def mesh_axis(mesh: Mesh) -> str:
    """The one axis of a data-parallel mesh (``TypeError``/``ValueError`` for anything else)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a jax.sharding.Mesh, got {type(mesh).__name__}")
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh: expected one axis (the batch split), got axes {mesh.axis_names}")
    return mesh.axis_names[0]


def local_rows(mesh: Mesh, batch: int) -> slice:
    """The rows of every global batch of ``batch`` samples that this process holds on ``mesh``.

    Raises:
        ValueError: when ``batch`` does not split evenly over the mesh's devices.
    """
    axis = mesh_axis(mesh)
    if batch % mesh.size:
        raise ValueError(f"batch size {batch} does not split evenly over the {mesh.size} devices of the mesh")
    spans = sorted(
        (s[0].start or 0, s[0].stop or batch)
        for s in NamedSharding(mesh, P(axis)).addressable_devices_indices_map((batch,)).values()
    )
    if any(a[1] != b[0] for a, b in itertools.pairwise(spans)):
        raise ValueError(f"this process's devices hold rows {spans} of a batch: not one contiguous block")
    return slice(spans[0][0], spans[-1][1])


def sharded(
    core: Callable[..., tuple],
    mesh: Mesh,
    *,
    stacked: bool,
    n_outputs: int,
    batch_outputs: dict[int, int],
    mean_outputs: tuple[int, ...] = (),
) -> Callable[..., tuple]:
    """``core`` as a data-parallel call on ``mesh``, with the core's signature and local arrays.

    Args:
        core: ``core(x, y, *replicated)`` returning an ``n_outputs``-tuple; ``x`` and ``y`` hold
            this process's samples, ``(b, ...)``, or ``(n_batches, b, ...)`` when ``stacked``.
        mesh: a one-axis mesh over every device of the run.
        stacked: the batch is axis 1 of ``x``/``y`` (an epoch of batches) rather than axis 0.
        n_outputs: length of the core's result.
        batch_outputs: ``{position: batch axis}`` of the results laid out per sample; the
            others are replicated.
        mean_outputs: positions of per-shard means (accuracies) to average over the shards.
    """
    axis = mesh_axis(mesh)
    batch = P(None, axis) if stacked else P(axis)
    out_specs = tuple(P(*[None] * batch_outputs[i], axis) if i in batch_outputs else P() for i in range(n_outputs))

    def in_specs(n: int) -> tuple[P, ...]:
        return tuple(batch if i < 2 else P() for i in range(n))

    @eqx.filter_jit
    def run(args: tuple) -> tuple:
        dyn, static = eqx.partition(args, eqx.is_array)
        out_static: list[Any] = []

        def body(dyn: tuple) -> tuple:
            with data_axis(axis):
                out = core(*eqx.combine(dyn, static))
            out = tuple(
                jax.tree.map(lambda a: jax.lax.pmean(a, axis), o) if i in mean_outputs else o for i, o in enumerate(out)
            )
            out_dyn, rest = eqx.partition(out, eqx.is_array)
            out_static.append(rest)
            return out_dyn

        # check_vma=False: custom calls and optimisation barriers hide that the model outputs are
        # replicated; they are (every shard applies the same summed update to the same weights).
        shard = jax.shard_map(body, mesh=mesh, in_specs=(in_specs(len(args)),), out_specs=out_specs, check_vma=False)
        out_dyn = shard(dyn)
        return eqx.combine(out_dyn, out_static[0])

    def global_args(args: tuple) -> tuple:
        dyn, static = eqx.partition(args, eqx.is_array)
        return eqx.combine(_to_global(dyn, mesh, in_specs(len(args))), static)

    def call(*args: Any) -> tuple:
        out = run(global_args(args))
        out_dyn, rest = eqx.partition(out, eqx.is_array)
        return eqx.combine(multihost_utils.global_array_to_host_local_array(out_dyn, mesh, out_specs), rest)

    call.lower = lambda *args: run.lower(global_args(args))  # the compiled program, for inspection
    return call


def _to_global(local: tuple, mesh: Mesh, specs: tuple[P, ...]) -> tuple:
    """Process-local leaves as global arrays: split over the mesh by ``specs`` (one per argument)."""
    return tuple(
        jax.tree.map(lambda a, spec=spec: jax.make_array_from_process_local_data(NamedSharding(mesh, spec), a), arg)
        for arg, spec in zip(local, specs)
    )


__all__ = ["local_rows", "mesh_axis", "sharded"]
