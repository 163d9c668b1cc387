#!/usr/bin/env bash
# Builds darnax's extension with sanitizers into a venv and build directory of its own and runs
# the op tests under it (development only; the normal install is untouched).
#
#   tools/sanitize.sh                 AddressSanitizer + UndefinedBehaviorSanitizer, tests/ops
#   tools/sanitize.sh thread          ThreadSanitizer, the pool stress and lifecycle tests
#   tools/sanitize.sh KIND [ARGS...]  pytest ARGS instead of the default selection
#
# The venv (build/sanitize-KIND/venv) reuses the calling Python's packages (jax, pytest, ...)
# through a .pth line, so nothing is downloaded; its own darnax comes first. A Python host was
# not built with the sanitizer, so its runtime is preloaded (LD_PRELOAD), and subprocesses that
# the tests start inherit it. ASan's leak check is off (CPython and jaxlib keep memory to exit);
# allocator_may_return_null lets the test-only failed allocations throw std::bad_alloc.
set -euo pipefail

kind=${1:-address,undefined}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
work="$root/build/sanitize-${kind//,/-}"
venv="$work/venv"

if [ ! -x "$venv/bin/python" ]; then
  base=$("$python" -c "import sys; print(sys._base_executable)")
  "$base" -m venv "$venv"
  "$python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
    > "$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_host_packages.pth"
fi
"$venv/bin/python" -m pip install -q --no-deps --no-build-isolation --force-reinstall \
  -C cmake.define.DARNAX_SANITIZE="$kind" -C cmake.build-type=RelWithDebInfo \
  -C build-dir="$work/cmake" "$root"

case "$kind" in
  *thread*)
    runtime=$(gcc -print-file-name=libtsan.so)
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tools/tsan.supp}
    # TSan cannot start threads in the child of a multi-threaded fork: that test is left out.
    default=(tests/ops/test_threads.py::test_thread_pool_survives_back_to_back_and_concurrent_jobs
             tests/ops/test_pool_lifecycle.py
             --deselect tests/ops/test_pool_lifecycle.py::test_forked_children_compute_with_a_pool_of_their_own) ;;
  *address*)
    runtime=$(gcc -print-file-name=libasan.so)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:allocator_may_return_null=1:halt_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    default=(tests/ops) ;;
  *)
    runtime=$(gcc -print-file-name=libubsan.so)
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    default=(tests/ops) ;;
esac
[ $# -gt 0 ] || set -- "${default[@]}"

cd "$root"
# libstdc++ too: the sanitizer finds the real __cxa_throw only if it is loaded when it starts.
preload="$runtime $(gcc -print-file-name=libstdc++.so)"
echo "darnax sanitize: -fsanitize=$kind, LD_PRELOAD=$preload, pytest $*"
LD_PRELOAD="$preload" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
