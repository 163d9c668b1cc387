#!/usr/bin/env bash
# Times two installs of darnax (e.g. the repaired wheel and the editable build) with the same
# `darnax bench` options, alternately (A B, B A, A B, ...: drift hits both alike), then prints per
# row the median over pairs of B's median / A's, and its smallest and largest pair. The baseline
# rows (jnp, BCOO, SciPy, NumPy: the same code in both installs) show how far the machine's load
# alone moves a ratio.
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
  order="a b"; [ $((i % 2)) -eq 0 ] && order="b a"
  for side in $order; do
    python="$a"; [ "$side" = b ] && python="$b"
    echo "### pair $i, $side: $python"
    "$python" -m darnax bench "$@" --json "$out/$side$i.json"
  done
done
"$a" - "$out" "$pairs" <<'PY'
import statistics
import sys

from darnax.bench._report import compare

out, pairs = sys.argv[1], int(sys.argv[2])
ratios: dict[tuple, list[float]] = {}
for i in range(1, pairs + 1):
    for r in compare(f"{out}/a{i}.json", f"{out}/b{i}.json"):
        ratios.setdefault((r["op"], r["size"], r["impl"], r["n_iter"]), []).append(r["change"])
print(f"\n{'op':<15}{'size':<21}{'implementation':<38}{'n':>3}{'B/A median':>12}{'min':>8}{'max':>8}  ({pairs} pairs)")
for (op, size, impl, n), rs in ratios.items():
    print(f"{op:<15}{size:<21}{impl:<38}{'' if n is None else n:>3}{statistics.median(rs):>11.2f}x"
          f"{min(rs):>7.2f}x{max(rs):>7.2f}x")
PY
echo "compare_builds.sh: JSON files in $out (darnax bench --compare $out/a1.json $out/b1.json: one pair)"
