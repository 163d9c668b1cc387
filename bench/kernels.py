"""The kernel benchmark: ``darnax bench`` (``python/darnax/bench``), installed with the package.

``python bench/kernels.py`` with no options runs the seed sizes and the scale size
(784x2000 at sparsity 0.9, 2000x2000 at 0.99, 20000x20000 at 0.999; B = 16, float32) and
writes ``bench/kernels.json``; any options are passed on to ``darnax bench`` (see
``darnax bench --help``), e.g. ``python bench/kernels.py --quick``.
"""

import sys

from darnax.bench import main

DEFAULT = ["--sizes", "784x2000:0.9", "2000x2000:0.99", "20000x20000:0.999", "--json", "bench/kernels.json"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or DEFAULT))
