#!/usr/bin/env bash
# Times two installs of darnax (e.g. the repaired wheel and the editable build) with the same
# `darnax bench` options, alternately A B A B, and prints the change per row for each pair:
#   tools/compare_builds.sh PYTHON_A PYTHON_B [PAIRS] -- [darnax bench options]
# PYTHON_A/B are interpreters of venvs with darnax installed; PAIRS defaults to 2. Runs from a
# temporary folder so that neither imports darnax from a source tree. JSON files stay in OUT_DIR
# (default: a temporary folder, printed).
set -euo pipefail
a="$1" b="$2"
shift 2
pairs=2
if [ "${1:-}" != "--" ] && [ $# -gt 0 ]; then pairs="$1"; shift; fi
[ "${1:-}" = "--" ] && shift
out="${OUT_DIR:-$(mktemp -d /tmp/darnax-compare.XXXXXX)}"
mkdir -p "$out"
cd "$out"
for i in $(seq 1 "$pairs"); do
  for side in a b; do
    python="$a"; [ "$side" = b ] && python="$b"
    echo "### pair $i, $side: $python"
    "$python" -m darnax bench "$@" --json "$out/$side$i.json"
  done
done
for i in $(seq 1 "$pairs"); do
  echo "### pair $i: B/A"
  "$a" -m darnax bench --compare "$out/a$i.json" "$out/b$i.json"
done
echo "compare_builds.sh: JSON files in $out"
