"""Load the compiled extension, register its XLA FFI targets with JAX, and call them.

A custom call names its sparsity pattern by one attribute, ``pattern``: the content key of a
pattern in darnax's process-wide store (validated there once, when the ``SparsityPattern`` was
built). When XLA instantiates the call, the C++ side looks the key up and keeps a reference as
an FFI state (type ``darnax_checked_pattern``), so the pattern lives as long as the compiled
program; each execution then checks only sizes (O(1)).
"""

from __future__ import annotations

import re
import threading
import warnings
from pathlib import Path
from typing import Any

import jax
import jaxlib
import numpy as np

from darnax.ops import _placement

_REBUILD = (
    "Rebuild darnax against the installed jaxlib: `pip install --force-reinstall --no-deps .` "
    "from a source checkout (or `pip install -e '.[test]'` for development)."
)

try:
    from darnax import _ext
except ImportError as err:  # pragma: no cover - exercised only on broken installs
    raise ImportError(f"darnax's compiled extension `darnax._ext` could not be imported ({err}). {_REBUILD}") from err


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def runtime_ffi_api_version() -> tuple[int, int]:
    """The XLA FFI API version ``(major, minor)`` of the installed jaxlib.

    Read from the C header that jaxlib ships (``xla/ffi/api/c_api.h`` under
    ``jax.ffi.include_dir()``), which is how it can be known at import without starting XLA's CPU
    client (``jax.distributed.initialize`` must still be able to run after ``import darnax.ops``).

    Raises:
        ImportError: the header is missing or names no version.
    """
    header = Path(jax.ffi.include_dir()) / "xla" / "ffi" / "api" / "c_api.h"
    try:
        text = header.read_text()
    except OSError as err:
        raise ImportError(
            f"darnax: cannot read jaxlib {jaxlib.__version__}'s XLA FFI header {header} "
            f"to check that it can load darnax's handlers ({err}). {_REBUILD}"
        ) from err
    found = {m[0]: int(m[1]) for m in re.findall(r"#define XLA_FFI_API_(MAJOR|MINOR) (\d+)", text)}
    if set(found) != {"MAJOR", "MINOR"}:
        raise ImportError(
            f"darnax: {header} defines no XLA_FFI_API_MAJOR/MINOR; cannot check that "
            f"jaxlib {jaxlib.__version__} can load darnax's handlers. {_REBUILD}"
        )
    return found["MAJOR"], found["MINOR"]


def check_ffi_api(built: tuple[int, int], runtime: tuple[int, int], runtime_jaxlib: str) -> None:
    """Raises ``ImportError`` unless XLA at FFI API ``runtime`` loads handlers built at ``built``.

    XLA accepts a handler whose API has the same major version and a minor version no newer than
    its own; it refuses any other when the handler is registered, and the op then fails only at
    its first call ("No FFI handler registered"). This turns that into an import error.
    """
    if built[0] != runtime[0] or built[1] > runtime[1]:
        raise ImportError(
            f"darnax was built against jaxlib {_ext.built_with_jaxlib} (XLA FFI API {built[0]}.{built[1]}); "
            f"the installed jaxlib {runtime_jaxlib} has FFI API {runtime[0]}.{runtime[1]} and would "
            f"refuse darnax's handlers. Install a jax/jaxlib in darnax's supported range (README, "
            f"'Install') or {_REBUILD[0].lower()}{_REBUILD[1:]}"
        )


if _version_tuple(jaxlib.__version__) < _version_tuple(_ext.built_with_jaxlib):
    raise ImportError(
        f"darnax was built against jaxlib {_ext.built_with_jaxlib} (XLA FFI API "
        f"{_ext.ffi_api_version}) but jaxlib {jaxlib.__version__} is installed; XLA would refuse "
        f"its handlers. Upgrade jaxlib or {_REBUILD[0].lower()}{_REBUILD[1:]}"
    )
check_ffi_api(tuple(_ext.ffi_api_version), runtime_ffi_api_version(), jaxlib.__version__)

try:  # reads DARNAX_KERNELS and DARNAX_NUM_THREADS now: a bad value fails here, not in a jit call
    _ext.kernel_isa()
    _threads = _ext.thread_info()
except (RuntimeError, ValueError) as err:
    raise ImportError(f"darnax: {err}") from err
if _threads["requested"] > _threads["threads"]:
    warnings.warn(
        f"DARNAX_NUM_THREADS={_threads['requested']} is more than the {_threads['cpus']} CPUs this "
        f"process may use; darnax's kernels use {_threads['threads']} threads",
        RuntimeWarning,
        stacklevel=2,
    )

built_with_cuda = bool(getattr(_ext, "built_with_cuda", False))
"""Whether this build has CUDA kernels (CMake option ``DARNAX_CUDA``; README, 'CUDA')."""

cuda_targets = frozenset(_ext.cuda_registrations()) if built_with_cuda else frozenset()
"""The targets with a CUDA kernel in this build (``darnax_<op>``); the others run on CPU only."""

_registered = False
_lock = threading.Lock()


def _register() -> None:
    """Registers darnax's FFI state types, then its targets, with XLA's CPU client (and CUDA's, in
    a CUDA build), once.

    Called on the first custom call, not at import: XLA wants a state type registered before
    the targets that use it, but jaxlib replays registrations made before its CPU client exists
    in the other order. So darnax first makes sure the client exists (``jax.devices("cpu")``),
    which an import must not do (``jax.distributed.initialize`` has to run before it).
    """
    global _registered
    with _lock:
        if _registered:
            return
        jax.devices("cpu")
        for name, registration in _ext.ffi_types().items():
            jax.ffi.register_ffi_type(name, registration, platform="cpu")
        for name, handler in _ext.registrations().items():
            jax.ffi.register_ffi_target(name, handler, platform="cpu")
        if built_with_cuda:  # queued by jaxlib when it has no CUDA client: harmless
            for name, registration in _ext.cuda_ffi_types().items():
                jax.ffi.register_ffi_type(name, registration, platform="CUDA")
            for name, handler in _ext.cuda_registrations().items():
                jax.ffi.register_ffi_target(name, handler, platform="CUDA")
        _registered = True


def ffi_call(target: str, outs: Any, **kwargs: Any) -> Any:
    """``jax.ffi.ffi_call`` of the darnax target ``darnax_<target>``, registering the targets first.

    The call's operands pass through :func:`darnax.ops._placement.guard`, which raises a darnax
    error naming the fix when the call would run on a platform without its kernel.
    """
    if not _registered:
        _register()
    call = jax.ffi.ffi_call(f"darnax_{target}", outs, **kwargs)
    cuda_kernel, cuda_build = f"darnax_{target}" in cuda_targets, built_with_cuda

    def guarded(*args: Any, **attrs: Any) -> Any:
        return call(*_placement.guard(args, target, cuda_kernel, cuda_build), **attrs)

    return guarded


def pattern_attrs(pattern: Any) -> dict[str, np.int64]:
    """The attribute naming a stored pattern in a custom call: its content key."""
    return {"pattern": np.int64(pattern.key)}


direct = _ext
"""The nanobind module itself: the same kernels callable on NumPy arrays, without XLA."""
