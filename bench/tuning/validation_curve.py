"""Validation accuracy of a configuration after every epoch, the test split untouched.

Trains ``CONFIG`` (a ``darnax train --config`` file) on the training split less its validation
tenth, as ``darnax tune`` does, and prints one JSON line per epoch. It is how the epoch count of
a tuned preset is chosen without looking at the test split.

Usage::

    python bench/tuning/validation_curve.py bench/tuning/fashion-mnist/tuned.toml --epochs 20
        --data-dir ../shared/datasets --out runs/tuned-valid   (one line)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from darnax.cli.config import merge, resolve
from darnax.cli.run import Run
from darnax.cli.tune import VALIDATION_FRACTION


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="TOML config (as for darnax train --config)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--data-dir", help="folder with the IDX files (else DARNAX_DATA_DIR)")
    parser.add_argument("--out", default="runs/validation-curve", help="run directory")
    args = parser.parse_args()
    data = {"validation_fraction": VALIDATION_FRACTION, **({"data_dir": args.data_dir} if args.data_dir else {})}
    config = merge(resolve(file=args.config), {"data": data, "run": {"epochs": args.epochs}})
    with open(os.devnull, "w") as quiet:
        run = Run(config, Path(args.out), log=quiet, quiet=True)
        for epoch in range(1, args.epochs + 1):
            seconds, _ = run.train_pass(epoch)
            record = {"epoch": epoch, "validation_accuracy": run.accuracy("valid"), "train_seconds": round(seconds, 1)}
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
