"""Load the compiled extension, register its XLA FFI targets with JAX, and call them.

A custom call names its sparsity pattern by one attribute, ``pattern``: the content key of a
pattern in darnax's process-wide store (validated there once, when the ``SparsityPattern`` was
built). When XLA instantiates the call, the C++ side looks the key up and keeps a reference as
an FFI state (type ``darnax_checked_pattern``), so the pattern lives as long as the compiled
program; each execution then checks only sizes (O(1)).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import jax
import jaxlib
import numpy as np

_REBUILD = (
    "Rebuild darnax against the installed jaxlib: `pip install --force-reinstall --no-deps .` "
    "from a source checkout (or `pip install -e '.[test]'` for development)."
)

try:
    from darnax import _ext
except ImportError as err:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        f"darnax's compiled extension `darnax._ext` could not be imported ({err}). {_REBUILD}"
    ) from err


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


if _version_tuple(jaxlib.__version__) < _version_tuple(_ext.built_with_jaxlib):
    raise ImportError(
        f"darnax was built against jaxlib {_ext.built_with_jaxlib} (XLA FFI API "
        f"{_ext.ffi_api_version}) but jaxlib {jaxlib.__version__} is installed; XLA would refuse "
        f"its handlers. Upgrade jaxlib or {_REBUILD[0].lower()}{_REBUILD[1:]}"
    )

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

_registered = False
_lock = threading.Lock()


def _register() -> None:
    """Registers darnax's FFI state type, then its targets, with XLA's CPU client, once.

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
        _registered = True


def ffi_call(target: str, outs: Any, **kwargs: Any) -> Any:
    """``jax.ffi.ffi_call`` of the darnax target ``darnax_<target>``, registering the targets first."""
    if not _registered:
        _register()
    return jax.ffi.ffi_call(f"darnax_{target}", outs, **kwargs)


def pattern_attrs(pattern: Any) -> dict[str, np.int64]:
    """The attribute naming a stored pattern in a custom call: its content key."""
    return {"pattern": np.int64(pattern.key)}


direct = _ext
"""The nanobind module itself: the same kernels callable on NumPy arrays, without XLA."""
