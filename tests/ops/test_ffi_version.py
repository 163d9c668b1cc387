"""The import-time checks of the extension: XLA FFI API compatibility and the kernel build picked."""

import pathlib
import platform
import subprocess
import sys

import pytest

from darnax.ops import _ffi
from tests.ops.cpu import AVX512, cpu_flags


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_runtime_ffi_api_version_can_load_this_build():
    """The installed jaxlib's FFI API: same major version as the build's, minor at least as new
    (a wheel built on older headers runs on newer jaxlibs)."""
    runtime, built = _ffi.runtime_ffi_api_version(), tuple(_ffi.direct.ffi_api_version)
    assert runtime[0] == built[0] and runtime[1] >= built[1]


@pytest.mark.parametrize("runtime", [(0, 3), (0, 4), (0, 9)])
def test_check_ffi_api_accepts_same_major_and_newer_minor(runtime):
    _ffi.check_ffi_api((0, 3), runtime, "9.9.9")


@pytest.mark.parametrize("runtime", [(0, 2), (1, 3), (1, 0)])
def test_check_ffi_api_refuses_older_minor_or_other_major(runtime):
    with pytest.raises(ImportError, match=rf"FFI API {runtime[0]}\.{runtime[1]} and would refuse"):
        _ffi.check_ffi_api((0, 3), runtime, "9.9.9")


def test_incompatible_ffi_api_fails_at_import_not_at_first_call(tmp_path: pathlib.Path):
    """A jaxlib whose FFI header has another major version: ImportError from ``import darnax.ops``."""
    header = tmp_path / "xla" / "ffi" / "api" / "c_api.h"
    header.parent.mkdir(parents=True)
    header.write_text("#define XLA_FFI_API_MAJOR 7\n#define XLA_FFI_API_MINOR 0\n")
    code = f"import jax; jax.ffi.include_dir = lambda: {str(tmp_path)!r}; import darnax.ops"
    result = _run(code)
    assert result.returncode != 0
    assert "ImportError: darnax was built against jaxlib" in result.stderr
    assert "has FFI API 7.0 and would refuse darnax's handlers" in result.stderr


def test_missing_ffi_header_fails_at_import(tmp_path: pathlib.Path):
    result = _run(f"import jax; jax.ffi.include_dir = lambda: {str(tmp_path)!r}; import darnax.ops")
    assert result.returncode != 0 and "XLA FFI header" in result.stderr


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or "avx2" not in cpu_flags(),
    reason="needs an x86-64 CPU with AVX2 (per /proc/cpuinfo)",
)
def test_the_widest_kernels_are_picked_where_the_cpu_has_them():
    """AVX-512 (F, DQ, BW, VL) else AVX2, detected from CPUID and XGETBV whatever compiler built the
    wheel (zig's clang included); DARNAX_KERNELS picks a narrower build."""
    best = "avx512" if cpu_flags() >= AVX512 else "avx2"
    result = _run(
        "import os; os.environ.pop('DARNAX_KERNELS', None); from darnax import _ext; print(_ext.kernel_isa())"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == best
    result = _run("import os; os.environ['DARNAX_KERNELS'] = 'avx2'; from darnax import _ext; print(_ext.kernel_isa())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "avx2"
