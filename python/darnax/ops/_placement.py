"""A clear darnax error when an op is placed on a platform that has no darnax kernel for it.

Without it, a darnax op compiled for a GPU fails deep inside XLA ("No registered implementation
for FFI custom call ... for platform CUDA"). Each custom call's first operand passes through an
identity primitive whose lowering rule knows the platform XLA is compiling for: on ``cuda`` (when
the op has no CUDA kernel in this build) or ``rocm`` it raises :class:`NoKernelError`, naming the
fix; elsewhere it lowers to nothing. The check happens where JAX lowers the computation, so it
sees the placement JAX chose (committed inputs, ``jax.default_device``, ``JAX_PLATFORMS``), and
never misfires for a computation placed on the CPU of a machine whose default backend is a GPU.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

_CPU_FIX = (
    "or run darnax on the CPU: set JAX_PLATFORMS=cpu, or place the computation there with "
    "`with jax.default_device(jax.devices('cpu')[0]):` (or jax.device_put its inputs on a CPU device)"
)


class NoKernelError(RuntimeError):
    """A darnax op was lowered for a platform on which this darnax build has no kernel for it."""


def message(target: str, platform: str, cuda_build: bool) -> str:
    """The error for op ``target`` lowered for ``platform`` (``cuda_build``: darnax has CUDA kernels)."""
    if platform == "cuda" and not cuda_build:
        return (
            f"darnax: {target} is placed on a CUDA GPU, but this darnax build has no CUDA kernels "
            "(it was built without DARNAX_CUDA). Rebuild it with them: `pip install --no-build-isolation "
            "-e . -Ccmake.define.DARNAX_CUDA=ON` from a source checkout (README, 'CUDA'), " + _CPU_FIX + "."
        )
    if platform == "cuda":
        return f"darnax: {target} has no CUDA kernel yet; " + _CPU_FIX + "."
    return f"darnax: {target} has no kernel for platform {platform!r} (darnax runs on CPU and CUDA); " + _CPU_FIX + "."


guard_p = Primitive("darnax_platform_guard")


def guard(x: jax.Array, target: str, cuda_kernel: bool, cuda_build: bool) -> jax.Array:
    """``x``, unchanged, once XLA has a darnax kernel for ``target`` where the computation runs.

    Args:
        x: an operand of the custom call (returned as is).
        target: the op's name, for the message.
        cuda_kernel: whether this build has a CUDA kernel for the op.
        cuda_build: whether this build has CUDA kernels at all (which fix the message names).
    """
    return guard_p.bind(x, target=target, cuda_kernel=cuda_kernel, cuda_build=cuda_build)


@functools.cache
def _compiled(**params: Any) -> Any:
    return jax.jit(functools.partial(guard_p.bind, **params))


# Eagerly (concrete operands) the primitive is compiled for the operand's device like any op, so
# the same lowering rules decide.
guard_p.def_impl(lambda x, **params: _compiled(**params)(x))
guard_p.def_abstract_eval(lambda x, **params: x)
batching.primitive_batchers[guard_p] = lambda args, dims, **params: (guard_p.bind(args[0], **params), dims[0])
ad.primitive_jvps[guard_p] = lambda primals, tangents, **params: (guard_p.bind(primals[0], **params), tangents[0])


def _lower_anywhere(ctx: Any, x: Any, **params: Any) -> list[Any]:
    return [x]


def _lowering_for(platform: str) -> Any:
    def lower(ctx: Any, x: Any, *, target: str, cuda_kernel: bool, cuda_build: bool) -> list[Any]:
        if platform == "cuda" and cuda_kernel:
            return [x]
        raise NoKernelError(message(target, platform, cuda_build))

    return lower


mlir.register_lowering(guard_p, _lower_anywhere)
for _platform in ("cuda", "rocm"):
    mlir.register_lowering(guard_p, _lowering_for(_platform), platform=_platform)
