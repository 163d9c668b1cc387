"""A clear darnax error when an op is placed on a platform that has no darnax kernel for it.

Without it, a darnax op compiled for a GPU fails deep inside XLA ("No registered implementation
for FFI custom call ... for platform CUDA"). Each custom call's operands pass through an identity
primitive that raises :class:`NoKernelError`, naming the fix, where the op would run on a platform
without its kernel (``cuda`` when this build has none for it, ``rocm``, ``tpu``). Under ``jit``
the check is the primitive's lowering rule, which knows the platform XLA compiles for (and lowers
to nothing); eagerly it is the placement JAX gives an op on these operands (a committed
operand's device, else ``jax.default_device``, else the default backend), read without compiling
anything. Either way a computation placed on the CPU of a machine whose default backend is a GPU
never sees the error.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

_CPU_FIX = (
    "or run darnax on the CPU: set JAX_PLATFORMS=cpu, or place the computation there with "
    "`with jax.default_device(jax.devices('cpu')[0]):` (or jax.device_put its inputs on a CPU device)"
)


class NoKernelError(RuntimeError):
    """A darnax op was placed on a platform (a GPU) on which this darnax build has no kernel for it."""


def message(target: str, platform: str, cuda_build: bool) -> str:
    """The error for op ``target`` placed on ``platform`` (``cuda_build``: darnax has CUDA kernels)."""
    if platform == "cuda" and not cuda_build:
        return (
            f"darnax: {target} is placed on a CUDA GPU, but this darnax build has no CUDA kernels "
            "(it was built without DARNAX_CUDA). Rebuild it with them: `pip install --no-build-isolation "
            "-e . -Ccmake.define.DARNAX_CUDA=ON` from a source checkout (README, 'CUDA'), " + _CPU_FIX + "."
        )
    if platform == "cuda":
        return f"darnax: {target} has no CUDA kernel yet; " + _CPU_FIX + "."
    return f"darnax: {target} has no kernel for platform {platform!r} (darnax runs on CPU and CUDA); " + _CPU_FIX + "."


_ACCELERATORS = ("cuda", "rocm", "tpu")


def check(platform: str, target: str, cuda_kernel: bool, cuda_build: bool) -> None:
    """Raises :class:`NoKernelError` when op ``target`` has no darnax kernel on ``platform``."""
    if platform in _ACCELERATORS and not (platform == "cuda" and cuda_kernel):
        raise NoKernelError(message(target, platform, cuda_build))


def _default_device() -> Any:
    """The device of an op whose operands are not committed to one (as jax chooses it)."""
    chosen = jax.config.jax_default_device
    if isinstance(chosen, str):
        return jax.local_devices(backend=chosen)[0]
    return chosen if chosen is not None else jax.local_devices()[0]


def _platform_of(device: Any) -> str:
    """The lowering platform of a device (``cuda`` or ``rocm`` for jax's ``gpu``)."""
    if device.platform != "gpu":
        return device.platform
    return "rocm" if "rocm" in str(getattr(device.client, "platform_version", "")).lower() else "cuda"


def eager_platform(operands: tuple[Any, ...]) -> str:
    """The platform an op on concrete ``operands`` runs on: a committed operand's, else the default device's."""
    for x in operands:
        if isinstance(x, jax.Array) and x.committed:
            return _platform_of(next(iter(x.devices())))
    return _platform_of(_default_device())


guard_p = Primitive("darnax_platform_guard")
guard_p.multiple_results = True


def guard(operands: tuple[Any, ...], target: str, cuda_kernel: bool, cuda_build: bool) -> tuple[Any, ...]:
    """``operands``, unchanged, once the op ``target`` has a darnax kernel where it runs.

    Args:
        operands: the custom call's operands (returned as they are).
        target: the op's name, for the message.
        cuda_kernel: whether this build has a CUDA kernel for the op.
        cuda_build: whether this build has CUDA kernels at all (which fix the message names).
    """
    return tuple(guard_p.bind(*operands, target=target, cuda_kernel=cuda_kernel, cuda_build=cuda_build))


def _impl(*operands: Any, **params: Any) -> list[Any]:
    check(eager_platform(operands), **params)
    return list(operands)


guard_p.def_impl(_impl)
guard_p.def_abstract_eval(lambda *avals, **params: list(avals))
batching.primitive_batchers[guard_p] = lambda args, dims, **params: (guard_p.bind(*args, **params), list(dims))
ad.primitive_jvps[guard_p] = lambda primals, tangents, **params: (guard_p.bind(*primals, **params), list(tangents))


def _lower_anywhere(ctx: Any, *operands: Any, **params: Any) -> list[Any]:
    return list(operands)


def _lowering_for(platform: str) -> Any:
    def lower(ctx: Any, *operands: Any, **params: Any) -> list[Any]:
        check(platform, **params)
        return list(operands)

    return lower


mlir.register_lowering(guard_p, _lower_anywhere)
for _platform in _ACCELERATORS:
    mlir.register_lowering(guard_p, _lowering_for(_platform), platform=_platform)
