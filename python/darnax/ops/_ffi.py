"""Load the compiled extension and register its XLA FFI targets with JAX, once."""

from __future__ import annotations

import jax
import jaxlib

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

try:  # picks the kernel build now, so that a bad DARNAX_KERNELS fails here, not inside a jit call
    _ext.kernel_isa()
except RuntimeError as err:
    raise ImportError(f"darnax: {err}") from err

for _name, _capsule in _ext.registrations().items():
    jax.ffi.register_ffi_target(_name, _capsule, platform="cpu")

direct = _ext
"""The nanobind module itself: the same kernels callable on NumPy arrays, without XLA."""
