#!/usr/bin/env bash
# Installs a darnax wheel into a fresh venv and runs the test suite against the installed package:
#   tools/test_wheel.sh WHEEL [PYTEST ARGS...]      (default pytest args: -q)
#
# The tests run from a copy of tests/ (with tools/, README.md and pyproject.toml, which they read) in a
# temporary folder, so `import darnax` can only find the venv's site-packages (checked before the
# first test), under a PATH that holds no C or C++ compiler (checked too). The shared data folder
# beside the checkout (../shared, or $DARNAX_SHARED_DIR) is linked beside the copy, where the
# tests look for it; without it the tests that need it skip, as they do from the checkout.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
wheel="$(realpath "${1:?usage: tools/test_wheel.sh WHEEL [PYTEST ARGS...]}")"
shift
python="${PYTHON:-python3}"
work="$(mktemp -d /tmp/darnax-wheel-test.XXXXXX)"
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel[test]"

# Every command of the system folders except compilers, linkers and build tools.
mkdir "$work/bin"
for dir in /usr/local/bin /usr/bin /bin; do
  for tool in "$dir"/*; do
    name="$(basename "$tool")"
    case "$name" in
      cc | c++ | cpp | gcc* | g++* | clang* | *-gcc* | *-g++* | *-cc | *-c++ | ld | ld.* | cmake | ninja | make | zig) continue ;;
    esac
    [ -x "$tool" ] && [ ! -e "$work/bin/$name" ] && ln -s "$tool" "$work/bin/$name"
  done
done
export PATH="$work/venv/bin:$work/bin"
for compiler in cc c++ gcc g++ clang zig; do
  if command -v "$compiler" > /dev/null; then
    echo "test_wheel.sh: a compiler is still on PATH: $(command -v "$compiler")" >&2
    exit 1
  fi
done

mkdir "$work/src"
cp -r "$repo/tests" "$repo/tools" "$repo/README.md" "$repo/pyproject.toml" "$work/src/"
shared="${DARNAX_SHARED_DIR:-$repo/../shared}"
[ -d "$shared" ] && ln -s "$(realpath "$shared")" "$work/shared"
cd "$work/src"
python - "$@" <<'EOF'
import sys

import darnax
import darnax.ops
import pytest

if "/site-packages/darnax/" not in darnax.__file__:
    sys.exit(f"test_wheel.sh: darnax imported from {darnax.__file__}, not from the installed wheel")
print(f"test_wheel.sh: darnax from {darnax.__file__}, kernels {darnax.ops.direct.kernel_isa()}", flush=True)
sys.exit(pytest.main(["-p", "no:cacheprovider", *(sys.argv[1:] or ["-q"])]))
EOF
