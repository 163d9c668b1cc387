"""``python -m darnax.bench``: the same as ``darnax bench``."""

import sys

from darnax.bench._cli import main

sys.exit(main())
