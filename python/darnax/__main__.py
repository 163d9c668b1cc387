"""``python -m darnax``: the command line (see :mod:`darnax.cli`)."""

import sys

from darnax.cli import main

sys.exit(main())
